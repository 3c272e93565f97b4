//! After-sales in a test: an order delivered (the courier's signed DELIVERED push consumed), the
//! after-sales API called as the customer and staff would, evidence photos uploaded through
//! their presigned URLs, and the refunds that follow paid through the mock provider.

use crate::fixtures::{claims, exchange, json_request};
use crate::parcels::{checkpoint, handed_over, process_tracking_queue, push, Parcel};
use crate::Stack;
use orderflow::handlers::after_sales::routes;
use serde_json::{json, Value};

/// An order of `units` TEA paid, handed over and delivered an hour later; the clock is then at
/// the delivery.
pub async fn delivered(stack: &Stack, clock: &orderflow::clock::ManualClock, units: i64) -> Parcel {
    // Boxed: the whole way to a hand-over is a deep future, and nesting it once more overflows
    // the compiler's layout depth on a fresh build.
    let parcel = Box::pin(handed_over(stack, units)).await;
    let t0 = stack.clock.now();
    clock.set(t0 + time::Duration::hours(1));
    let (status, _) = push(
        stack,
        &parcel,
        &format!("delivered-{}", parcel.shipment),
        vec![checkpoint(t0, 60, "DELIVERED", "SIGNED")],
    )
    .await;
    assert_eq!(status, 200);
    process_tracking_queue(stack).await;
    let order = stack.store().order(parcel.order_id).await.unwrap().unwrap();
    assert_eq!(order.delivered_at, Some(t0 + time::Duration::hours(1)), "delivered");
    parcel
}

/// The after-sales parcel a ticket's QC made (`outbound`) picked, handed over and delivered an
/// hour later, through fulfilment and the courier's signed push as any parcel; the clock is then
/// at its delivery.
pub async fn ship_back(stack: &Stack, clock: &orderflow::clock::ManualClock, checked: &Value) -> Parcel {
    let shipment = checked["outbound"].as_str().unwrap_or_else(|| panic!("a parcel back: {checked}")).to_owned();
    let units = checked["lines"][0]["quantity"].as_u64().and_then(|q| u32::try_from(q).ok()).unwrap();
    Box::pin(crate::warehouse::hand_over(stack, &shipment, &[("TEA", units)])).await;
    let (courier, waybill) = stack.courier.waybill_of(&shipment).expect("booked");
    let parcel = Parcel {
        order_id: orderflow::domain::ShipmentId::parse(&shipment).unwrap().order_id,
        shipment,
        courier,
        waybill,
    };
    let t0 = stack.clock.now();
    clock.set(t0 + time::Duration::hours(1));
    let delivered = vec![checkpoint(t0, 60, "DELIVERED", "SIGNED")];
    assert_eq!(push(stack, &parcel, &format!("delivered-{}", parcel.shipment), delivered).await.0, 200);
    process_tracking_queue(stack).await;
    parcel
}

/// The order's owner, as their own token names them.
pub async fn owner(stack: &Stack, parcel: &Parcel) -> crate::auth::VerifiedClaims {
    let order = stack.store().order(parcel.order_id).await.unwrap().unwrap();
    crate::fixtures::customer(order.customer_id.as_str())
}

pub fn risk_staff() -> crate::auth::VerifiedClaims {
    claims(&[("sub", "risk-rita"), ("groups", "[risk]")])
}

/// `method path` (matched by `route`) on the after-sales API as `who`.
pub async fn call(
    stack: &Stack,
    who: &crate::auth::VerifiedClaims,
    method: &str,
    path: &str,
    route: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let request = json_request(Some(who.clone()), method, path, route, body);
    let deps = stack.after_sales();
    exchange(request, |r| routes::handle(&deps, r)).await
}

/// A photo of `bytes` uploaded as evidence for the parcel's order by `who` through the URL the
/// API hands out; its key.
pub async fn upload_evidence(stack: &Stack, who: &crate::auth::VerifiedClaims, parcel: &Parcel, staff: bool) -> String {
    let (path, route) = if staff {
        (format!("/admin/orders/{}/evidence", parcel.order_id), "/admin/orders/{id}/evidence")
    } else {
        (format!("/orders/{}/evidence", parcel.order_id), "/orders/{id}/evidence")
    };
    let (status, answer) = call(stack, who, "POST", &path, route, Some(json!({"content_type": "image/jpeg"}))).await;
    assert_eq!(status, 200, "{answer}");
    crate::warehouse::put_presigned(&answer["upload"], "P".repeat(4096)).await;
    answer["key"].as_str().unwrap().to_owned()
}

/// `POST /orders/{id}/tickets` as `who`.
pub async fn open(stack: &Stack, who: &crate::auth::VerifiedClaims, parcel: &Parcel, body: Value) -> (u16, Value) {
    let path = format!("/orders/{}/tickets", parcel.order_id);
    call(stack, who, "POST", &path, "/orders/{id}/tickets", Some(body)).await
}

/// A return (or another kind) of `units` TEA from the parcel, for `reason`.
pub fn request(kind: &str, reason: &str, parcel: &Parcel, units: u32, evidence: &[String]) -> Value {
    json!({
        "kind": kind, "reason": reason, "text": "not what I hoped",
        "shipment_id": parcel.shipment, "lines": [{"sku": "TEA", "quantity": units}], "evidence": evidence
    })
}

/// `POST /admin/tickets/{ticket}/{action}` as `who`.
pub async fn staff_post(
    stack: &Stack,
    who: &crate::auth::VerifiedClaims,
    ticket: &str,
    action: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let path = format!("/admin/tickets/{ticket}/{action}");
    call(stack, who, "POST", &path, &format!("/admin/tickets/{{id}}/{action}"), body).await
}

/// Every RefundRequested relayed so far, consumed by the refunds function; how many.
pub async fn pay_requested_refunds(stack: &Stack) -> usize {
    stack.relay().await;
    let deps = stack.refunds();
    let mut paid = 0;
    loop {
        let event = stack.receive("RefundsQueue", 10, 1).await;
        if event.records.is_empty() {
            return paid;
        }
        paid += event.records.len();
        let answer = orderflow::handlers::refunds::handle_batch(&deps, event.clone()).await;
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
        stack.delete("RefundsQueue", &event.records).await;
    }
}
