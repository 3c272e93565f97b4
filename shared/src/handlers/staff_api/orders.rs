//! Orders that wait for a person.
//!
//! - `GET  /admin/review-queue`: orders risk control held or froze, oldest first
//! - `GET  /admin/orders/{id}`: an order as staff see it (with its risk assessment)
//! - `POST /admin/orders/{id}/approve|reject`: a held or frozen order on to reservation, or
//!   rejected; a cash-on-delivery order awaiting review approved for fulfilment (audited), or
//!   cancelled with its stock released (audited), as an approved one still may be

use super::{order_id, unavailable, wrong_status, StaffDeps};
use crate::domain::{Order, OrderStatus};
use crate::http::{json_response, Problem};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use time::format_description::well_known::Rfc3339;
use tracing::info;

/// The order as staff see it: what the customer sees, the risk assessment and the payment under
/// review; the phone masked, no street.
pub(super) fn staff_view(order: &Order) -> serde_json::Value {
    serde_json::json!({
        "order_id": order.order_id,
        "status": order.status,
        "customer_id": order.customer_id,
        "lines": order.lines,
        "total_minor": order.total_minor,
        "currency": order.currency,
        "payment_method": order.payment_method,
        "channel": order.channel,
        "device_id": order.device_id,
        "province": order.shipping_address.province,
        "city": order.shipping_address.city,
        "phone": order.phone_hint,
        "received_at": order.received_at.format(&Rfc3339).unwrap_or_default(),
        "hold_expires_at": order.hold_expires_at.and_then(|t| t.format(&Rfc3339).ok()),
        "payment_id": order.payment_id,
        "paid_minor": order.paid_minor,
        "payment_under_review": order.payment_under_review,
        "risk": order.risk,
    })
}

pub(super) async fn review_queue(deps: &StaffDeps) -> Result<Response<Body>, Problem> {
    let orders = deps.common.store.review_queue(100).await.map_err(unavailable)?;
    let items: Vec<serde_json::Value> = orders.iter().map(staff_view).collect();
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "orders": items })))
}

pub(super) async fn order(deps: &StaffDeps, raw_id: &str) -> Result<Order, Problem> {
    let id = order_id(raw_id)?;
    deps.common.store.order(id).await.map_err(unavailable)?.ok_or_else(|| Problem::not_found("order"))
}

pub(super) async fn staff_order(deps: &StaffDeps, raw_id: &str) -> Result<Response<Body>, Problem> {
    Ok(json_response(StatusCode::OK, &staff_view(&order(deps, raw_id).await?)))
}

/// Approve or reject an order waiting for a person: one risk control held or froze, or a
/// cash-on-delivery order awaiting review.
pub(super) async fn decide(
    deps: &StaffDeps,
    who: &str,
    raw_id: &str,
    approve: bool,
) -> Result<Response<Body>, Problem> {
    let store = &deps.common.store;
    let mut order = order(deps, raw_id).await?;
    let id = order.order_id;
    let now = deps.common.clock.now();
    let (changed, next) = match (order.status, approve) {
        (OrderStatus::PendingReview | OrderStatus::Frozen, true) => {
            (store.approve_after_review(&order, who, now).await, OrderStatus::Received)
        }
        (OrderStatus::PendingReview | OrderStatus::Frozen, false) => {
            (store.reject_after_review(&order, who, now).await, OrderStatus::Rejected)
        }
        (OrderStatus::AwaitingReview, true) => (store.approve_cod(&order, who, now).await, OrderStatus::CodApproved),
        // Rejecting an approved order is the way out before fulfilment picks it up (fraud found
        // later, say): its stock would otherwise stay held until the courier reports.
        (OrderStatus::AwaitingReview | OrderStatus::CodApproved, false) => {
            (store.reject_cod(&order, who, now).await, OrderStatus::Cancelled)
        }
        (status, _) => {
            return Err(wrong_status(
                "not-under-review",
                "Not under review",
                format!("the order is {}", status.as_str()),
            ))
        }
    };
    if !changed.map_err(unavailable)? {
        return Err(wrong_status("not-under-review", "Not under review", "the order was decided meanwhile"));
    }
    // The decision's event (OrderReceived, OrderRejected, CashOnDeliveryApproved,
    // OrderCancelled) comes from the table's stream.
    info!(actor = %who, order_id = %id, from = order.status.as_str(), to = next.as_str(), "order decided by staff");
    order.status = next;
    Ok(json_response(StatusCode::OK, &staff_view(&order)))
}
