//! An order's personal data in the clear: `POST /admin/orders/{id}/personal-data` with
//! `{"reason": "…"}` (customer service, risk, operations, admin: the matrix; the client's IP
//! only to risk and admin). The read is recorded in the audit trail, with its reason and the
//! fields shown, before anything is opened: no record, no data.

use super::{invalid, json_body, unavailable, StaffDeps};
use crate::http::{json_response, Problem};
use crate::personal::order_context;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use tracing::info;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevealRequest {
    reason: String,
}

pub(super) async fn reveal(
    deps: &StaffDeps,
    request: &Request,
    caller: &crate::auth::Caller,
    raw_id: &str,
) -> Result<Response<Body>, Problem> {
    let who = &caller.actor();
    let with_ip = caller.has_any(crate::access::SEE_CLIENT_IP);
    let body: RevealRequest = json_body(request)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(invalid(
            "reason",
            "reason-required",
            "say why the clear values are needed, in at most 500 characters",
        ));
    }
    let order = super::orders::order(deps, raw_id).await?;
    let sealed = order.personal.as_ref().ok_or_else(|| {
        Problem::new(StatusCode::GONE, "personal-data-erased", "Erased", "this order's personal data was erased")
    })?;
    let now = deps.common.clock.now();
    let fields: Vec<&str> = sealed.fields.keys().map(String::as_str).filter(|f| with_ip || *f != "client_ip").collect();
    deps.common.store.record_personal_read(who, order.order_id, reason, &fields, now).await.map_err(unavailable)?;
    let mut personal = deps.personal.sealer.open(sealed, &order_context(order.order_id)).await.map_err(unavailable)?;
    if !with_ip {
        personal.client_ip = None;
    }
    info!(actor = %who, order_id = %order.order_id, "personal data read");
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "order_id": order.order_id, "personal": personal, "ship_to": order.shipping_address }),
    ))
}
