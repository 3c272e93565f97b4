//! The audit trail, read a page at a time: `GET /admin/audit?subject=<entity>` (one entity's
//! changes: `orders/<id>`, `stock/<sku>/<warehouse>`, `shipments/<id>`, `tickets/<id>`,
//! `config/<policy>`, …) or `GET /admin/audit?day=YYYY-MM-DD` (every change of a UTC day), each
//! oldest first, `limit` (1–100, default 50) records after the `after` cursor the previous page
//! named as `next`.

use super::{invalid, unavailable, StaffDeps};
use crate::http::{json_response, Problem};
use crate::store::{AuditCursor, AuditRecord, AuditTrail, AUDIT_PAGE_MAX};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};

const DEFAULT_PAGE: i32 = 50;

pub(super) async fn trail(deps: &StaffDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let query = request.query_string_parameters_ref();
    let param = |name: &str| query.and_then(|q| q.first(name)).filter(|v| !v.is_empty());
    let trail = match (param("subject"), param("day")) {
        (Some(subject), None) => AuditTrail::Subject(subject.to_owned()),
        (None, Some(day)) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let day = time::Date::parse(day, format).map_err(|_| invalid("day", "day-invalid", "YYYY-MM-DD"))?;
            AuditTrail::Day(day)
        }
        _ => return Err(invalid("subject", "trail-unnamed", "name either `subject` or `day`, not both")),
    };
    let limit = match param("limit") {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=AUDIT_PAGE_MAX).contains(n))
            .ok_or_else(|| invalid("limit", "limit-out-of-range", format!("1 to {AUDIT_PAGE_MAX}")))?,
    };
    let cursor = match param("after") {
        None => None,
        Some(token) => Some(
            AuditCursor::parse(token)
                .ok_or_else(|| invalid("after", "cursor-malformed", "pass back the `next` of the previous page"))?,
        ),
    };
    let (records, next) = deps.common.store.audit_trail(&trail, cursor.as_ref(), limit).await.map_err(unavailable)?;
    let records: Vec<Value> = records.iter().map(record_view).collect();
    Ok(json_response(StatusCode::OK, &json!({ "records": records, "next": next.map(|c| c.token()) })))
}

/// A record with its before and after as the JSON they were recorded as.
fn record_view(record: &AuditRecord) -> Value {
    let parsed =
        |text: &Option<String>| text.as_deref().map(|t| serde_json::from_str::<Value>(t).unwrap_or(Value::Null));
    json!({
        "actor": record.actor,
        "action": record.action,
        "subject": record.subject,
        "at": record.at,
        "before": parsed(&record.before),
        "after": parsed(&record.after),
    })
}
