//! Payments, as staff see and settle them.
//!
//! - `GET  /admin/payments/reconciliation?day=YYYY-MM-DD`: the payment outcomes of a day
//! - `POST /admin/orders/{id}/payment/accept`: a mismatched payment accepted as the order's
//!   payment (the order PAID, its units sold; audited)
//! - `POST /admin/orders/{id}/payment/refund`: a mismatched payment to be refunded (the order
//!   CANCELLED, its stock released, RefundRequested announced; audited)

use super::orders::{order, staff_view};
use super::{invalid, unavailable, wrong_status, StaffDeps};
use crate::domain::payment::PaymentUnderReview;
use crate::domain::{Currency, Order, OrderStatus};
use crate::http::{json_response, Problem};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::info;

/// The payment under review, if the order is PAYMENT_MISMATCH.
fn under_review(order: &Order) -> Result<PaymentUnderReview, Problem> {
    order.payment_under_review.clone().filter(|_| order.status == OrderStatus::PaymentMismatch).ok_or_else(|| {
        wrong_status(
            "no-payment-under-review",
            "No payment under review",
            format!("the order is {}", order.status.as_str()),
        )
    })
}

pub(super) async fn accept(deps: &StaffDeps, who: &str, raw_id: &str) -> Result<Response<Body>, Problem> {
    let mut order = order(deps, raw_id).await?;
    let review = under_review(&order)?;
    // An amount in another currency cannot stand for this order's price: refund it instead.
    if Currency::parse(&review.currency).ok() != Some(order.currency) {
        return Err(wrong_status(
            "payment-currency-differs",
            "Payment in another currency",
            "a payment in another currency cannot be accepted; refund it",
        ));
    }
    let now = deps.common.clock.now();
    if !deps.common.store.accept_mismatched_payment(&order, &review, who, now).await.map_err(unavailable)? {
        return Err(wrong_status(
            "no-payment-under-review",
            "No payment under review",
            "the payment was settled meanwhile",
        ));
    }
    info!(actor = %who, order_id = %order.order_id, "mismatched payment accepted");
    order.status = OrderStatus::Paid;
    order.payment_id = Some(review.payment_id.clone());
    order.paid_minor = Some(review.amount_minor);
    order.payment_under_review = None;
    Ok(json_response(StatusCode::OK, &staff_view(&order)))
}

pub(super) async fn refund(deps: &StaffDeps, who: &str, raw_id: &str) -> Result<Response<Body>, Problem> {
    let mut order = order(deps, raw_id).await?;
    let review = under_review(&order)?;
    let now = deps.common.clock.now();
    if !deps.common.store.refund_mismatched_payment(&order, &review, who, now).await.map_err(unavailable)? {
        return Err(wrong_status(
            "no-payment-under-review",
            "No payment under review",
            "the payment was settled meanwhile",
        ));
    }
    info!(actor = %who, order_id = %order.order_id, "mismatched payment to be refunded; order cancelled");
    order.status = OrderStatus::Cancelled;
    order.payment_under_review = None;
    Ok(json_response(StatusCode::OK, &staff_view(&order)))
}

#[derive(Debug, Default, serde::Serialize)]
struct Reconciliation {
    day: String,
    events: usize,
    paid: usize,
    late_paid: usize,
    failed: usize,
    mismatched: usize,
    duplicate_charges: usize,
    refunds_requested: usize,
    unknown_orders: usize,
    repeat_deliveries: usize,
    not_yet_processed: usize,
    /// Paid (on time or late) over paid plus failed.
    success_rate: Option<f64>,
    /// Refunds requested over successful payments received.
    refund_rate: Option<f64>,
    /// Payments we could not match to an order, for staff to chase.
    unmatched: Vec<serde_json::Value>,
}

pub(super) async fn reconciliation(deps: &StaffDeps, request: &Request) -> Result<Response<Body>, Problem> {
    use crate::store::Resolution as R;
    let day = match request.query_string_parameters_ref().and_then(|q| q.first("day").map(str::to_owned)) {
        Some(day) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            // The parsed date, not the text: `[year]` also takes a sign (`+2026-01-01`).
            let date =
                time::Date::parse(&day, &format).map_err(|_| invalid("day", "day-malformed", "day is YYYY-MM-DD"))?;
            date.to_string()
        }
        None => deps.common.clock.now().date().to_string(),
    };
    let records = deps.common.store.payments_of_day(&day).await.map_err(unavailable)?;
    let mut r = Reconciliation { day, events: records.len(), ..Reconciliation::default() };
    for record in &records {
        match &record.resolution {
            None => r.not_yet_processed += 1,
            Some(R::Paid) => r.paid += 1,
            Some(R::LatePaid) => r.late_paid += 1,
            Some(R::Failed) => r.failed += 1,
            Some(R::Mismatched { .. }) => r.mismatched += 1,
            Some(R::DuplicateCharge) => {
                r.duplicate_charges += 1;
                r.refunds_requested += 1;
            }
            Some(R::RefundRequired { .. }) => r.refunds_requested += 1,
            Some(R::AlreadyApplied) => r.repeat_deliveries += 1,
            Some(R::UnknownOrder) => {
                r.unknown_orders += 1;
                r.unmatched.push(serde_json::json!({
                    "event_id": record.event.id,
                    "payment_id": record.event.data.payment_id,
                    "order_id": record.event.data.order_id,
                    "amount_minor": record.event.data.amount_minor,
                    "currency": record.event.data.currency,
                }));
            }
        }
    }
    let paid = r.paid + r.late_paid;
    r.success_rate = (paid + r.failed > 0).then(|| paid as f64 / (paid + r.failed) as f64);
    let succeeded =
        records.iter().filter(|x| x.event.event_type == crate::domain::payment::PaymentEventType::Succeeded).count();
    r.refund_rate = (succeeded > 0).then(|| r.refunds_requested as f64 / succeeded as f64);
    Ok(json_response(StatusCode::OK, &r))
}
