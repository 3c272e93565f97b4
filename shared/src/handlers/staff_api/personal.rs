//! An order's personal data in the clear: `POST /admin/orders/{id}/personal-data` with
//! `{"reason": "…"}`: each role gets the fields the matrix's `PERSONAL_FIELDS` lets it ask for
//! (the client's IP only to risk and admin); no other field is decrypted. The read is recorded in the audit trail, with its reason and the
//! fields shown, before anything is opened: no record, no data.
//!
//! A customer's erasure request: `POST /admin/customers/{id}/erasure` with `{"reason": "…"}`
//! (customer service, admin). Every order of the customer that is done with loses its personal
//! data now; for one not done with (its parcel may still need the address; a late payment may
//! revive a cancelled order within `REVIVAL_GRACE`) the request is kept and the sweeper erases
//! it once it is. Each erasure and request is audited with the reason, and the request as a
//! whole under `customers/<id>`. Asking again is harmless: what is erased or asked is skipped.

use super::{invalid, json_body, unavailable, StaffDeps};
use crate::domain::OrderId;
use crate::http::{json_response, Problem};
use crate::personal::order_context;
use crate::store::Erasure;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use tracing::info;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonGiven {
    reason: String,
}

fn reason_of<'a>(body: &'a ReasonGiven, ask: &str) -> Result<&'a str, Problem> {
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(invalid("reason", "reason-required", ask));
    }
    Ok(reason)
}

pub(super) async fn reveal(
    deps: &StaffDeps,
    request: &Request,
    caller: &crate::auth::Caller,
    raw_id: &str,
) -> Result<Response<Body>, Problem> {
    let who = &caller.actor();
    let allowed = crate::access::fields_on_request(caller);
    let body: ReasonGiven = json_body(request)?;
    let reason = reason_of(&body, "say why the clear values are needed, in at most 500 characters")?;
    let order = super::orders::order(deps, raw_id).await?;
    let sealed = order.personal.as_ref().ok_or_else(|| {
        Problem::new(StatusCode::GONE, "personal-data-erased", "Erased", "this order's personal data was erased")
    })?;
    let now = deps.common.clock.now();
    let fields: Vec<&str> = allowed.into_iter().filter(|f| sealed.fields.contains_key(*f)).collect();
    deps.common.store.record_personal_read(who, order.order_id, reason, &fields, now).await.map_err(unavailable)?;
    let context = order_context(order.order_id);
    let personal = deps.personal.sealer.open_fields(sealed, &context, &fields).await.map_err(unavailable)?;
    info!(actor = %who, order_id = %order.order_id, "personal data read");
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "order_id": order.order_id, "personal": personal, "ship_to": order.shipping_address }),
    ))
}

/// What an erasure request did with each of the customer's orders.
#[derive(Default, serde::Serialize)]
struct ErasureDone {
    erased: Vec<OrderId>,
    /// Erased once done with (the parcel may still need the address, a late payment may
    /// revive a cancelled order): the sweeper looks every hour.
    later: Vec<OrderId>,
    already: Vec<OrderId>,
}

pub(super) async fn erase_customer(
    deps: &StaffDeps,
    request: &Request,
    who: &str,
    raw_id: &str,
) -> Result<Response<Body>, Problem> {
    let customer = super::catalogue::customer_id(raw_id)?;
    let body: ReasonGiven = json_body(request)?;
    let reason = reason_of(&body, "say why (the customer's request, its reference), in at most 500 characters")?;
    let store = &deps.common.store;
    let mut done = ErasureDone::default();
    for id in store.orders_of_customer(&customer).await.map_err(unavailable)? {
        erase_order(deps, id, Erasure { actor: who, reason, now: deps.common.clock.now() }, &mut done).await?;
    }
    let now = deps.common.clock.now();
    store.record_erasure_request(who, &customer, &done, reason, now).await.map_err(unavailable)?;
    info!(actor = %who, erased = done.erased.len(), later = done.later.len(), "customer erasure");
    Ok(json_response(StatusCode::OK, &done))
}

/// Erase one order, or ask for it once it is done with; read again when it moved meanwhile (a
/// few times: then the request is a 409, and asking again finishes it).
async fn erase_order(
    deps: &StaffDeps,
    id: OrderId,
    erasure: Erasure<'_>,
    done: &mut ErasureDone,
) -> Result<(), Problem> {
    let store = &deps.common.store;
    for _ in 0..5 {
        let Some(order) = store.order(id).await.map_err(unavailable)? else { return Ok(()) };
        let (written, list) = if order.personal.is_none() {
            (true, &mut done.already)
        } else if order.done_with(erasure.now) {
            (store.erase_personal(&order, erasure, Some(id)).await.map_err(unavailable)?, &mut done.erased)
        } else if store.erasure_requested(id).await.map_err(unavailable)? {
            (true, &mut done.already)
        } else {
            let look_at = erasure.now + crate::handlers::after_sales::sweeper::ERASURE_RECHECK;
            (store.request_erasure(&order, erasure, look_at).await.map_err(unavailable)?, &mut done.later)
        };
        if written {
            list.push(id);
            return Ok(());
        }
    }
    Err(Problem::new(
        StatusCode::CONFLICT,
        "erasure-busy",
        "Orders kept changing",
        "ask again: what was erased stays erased",
    )
    .with_field("id"))
}
