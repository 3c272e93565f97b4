//! Parcels on their way in a test: an order handed over to the mock courier, the courier's
//! signed pushes delivered to the webhook, the tracking queue consumed, the poller run, and the
//! logistics API called as the customer or staff would.

use crate::fixtures::{claims, exchange, json_request};
use crate::warehouse::{hand_over, paid_with_shipments, shipments};
use crate::Stack;
use orderflow::domain::{CourierId, OrderId, Shipment};
use orderflow::handlers::logistics::{consumer, routes, webhook};
use serde_json::{json, Value};

/// A handed-over parcel: its order, shipment id, courier and waybill number.
#[derive(Debug, Clone)]
pub struct Parcel {
    pub order_id: OrderId,
    pub shipment: String,
    pub courier: CourierId,
    pub waybill: String,
}

/// An order of `units` TEA (warehouse HZ, barcode TEA) paid, picked and handed over.
pub async fn handed_over(stack: &Stack, units: i64) -> Parcel {
    let order_id = paid_with_shipments(stack, &[("TEA", units)]).await;
    let shipment = shipments(stack, order_id).await[0].shipment_id.to_string();
    hand_over(stack, &shipment, &[("TEA", u32::try_from(units).unwrap())]).await;
    let (courier, waybill) = stack.courier.waybill_of(&shipment).expect("booked");
    Parcel { order_id, shipment, courier, waybill }
}

/// An order of `units` TEA to be paid in cash on delivery: approved by staff, picked and
/// handed over.
pub async fn handed_over_cash_on_delivery(stack: &Stack, units: i64) -> Parcel {
    let mut body = crate::fixtures::order_body(&[("TEA", units)], "Zhejiang");
    body["payment_method"] = json!("cash_on_delivery");
    let order_id = crate::fixtures::reserved_orders(stack, 1, &body).await[0];
    let approve = format!("/admin/orders/{order_id}/approve");
    let (status, _) =
        crate::fixtures::staff(&stack.staff(), "POST", &approve, "/admin/orders/{id}/approve", None).await;
    assert_eq!(status, 200);
    orderflow::handlers::fulfilment::make_shipments(&stack.fulfilment_core("fulfilment"), order_id).await.unwrap();
    let shipment = shipments(stack, order_id).await[0].shipment_id.to_string();
    hand_over(stack, &shipment, &[("TEA", u32::try_from(units).unwrap())]).await;
    let (courier, waybill) = stack.courier.waybill_of(&shipment).expect("booked");
    Parcel { order_id, shipment, courier, waybill }
}

/// A push of the courier's cash collection for the parcel (`amount_minor` CNY, collected now).
pub async fn push_collection(stack: &Stack, parcel: &Parcel, event_id: &str, amount_minor: i64) -> (u16, Value) {
    let now = stack.clock.now();
    let collected_at = now.format(&time::format_description::well_known::Rfc3339).unwrap();
    let collection = json!({"amount_minor": amount_minor, "currency": "CNY", "collected_at": collected_at});
    let body = json!({"event_id": event_id, "waybill": parcel.waybill, "collection": collection});
    let (payload, signature) = crate::courier::signed_push(parcel.courier.as_str(), &body, now.unix_timestamp());
    push_raw(stack, parcel.courier.as_str(), payload, Some(signature)).await
}

/// A checkpoint as couriers send it, `minutes` after `at`.
pub fn checkpoint(at: time::OffsetDateTime, minutes: i64, status: &str, raw: &str) -> Value {
    let at = at + time::Duration::minutes(minutes);
    json!({
        "at": at.format(&time::format_description::well_known::Rfc3339).unwrap(),
        "status": status, "raw_code": raw, "place": "Hangzhou depot",
    })
}

/// A push of `checkpoints` for the parcel, signed with its courier's local secret now.
pub async fn push(stack: &Stack, parcel: &Parcel, event_id: &str, checkpoints: Vec<Value>) -> (u16, Value) {
    let body = json!({"event_id": event_id, "waybill": parcel.waybill, "checkpoints": checkpoints});
    let now = stack.clock.now().unix_timestamp();
    let (payload, signature) = crate::courier::signed_push(parcel.courier.as_str(), &body, now);
    push_raw(stack, parcel.courier.as_str(), payload, Some(signature)).await
}

/// A push exactly as given (body, signature header or none) to courier `courier`'s route.
pub async fn push_raw(stack: &Stack, courier: &str, payload: String, signature: Option<String>) -> (u16, Value) {
    let path = format!("/couriers/{courier}/webhook");
    let mut headers = vec![("content-type", "application/json")];
    if let Some(signature) = signature.as_deref() {
        headers.push(("courier-signature", signature));
    }
    let request = crate::fixtures::http("POST", &path, "/couriers/{courier}/webhook", &headers, Some(payload));
    let deps = stack.courier_webhook();
    exchange(request, |r| webhook::handle(&deps, r)).await
}

/// How the tracking queue hands each batch to the consumer: once, or twice (as SQS may), one
/// delivery after the other or both at the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Once,
    TwiceInTurn,
    TwiceAtOnce,
}

/// Relay the table's changes and consume the tracking queue until it is empty; how many
/// messages were handled.
pub async fn process_tracking_queue(stack: &Stack) -> usize {
    process_tracking_queue_delivering(stack, Delivery::Once).await
}

/// As [`process_tracking_queue`], each batch delivered as `delivery` says. A delivery that
/// fails because the other one holds the work is fine when both run at once.
pub async fn process_tracking_queue_delivering(stack: &Stack, delivery: Delivery) -> usize {
    const QUEUE: &str = "TrackingQueue";
    let deps = stack.logistics_as("tracking");
    let mut processed = 0;
    loop {
        stack.relay().await;
        let event = stack.receive(QUEUE, 10, 1).await;
        if event.records.is_empty() {
            return processed;
        }
        processed += event.records.len();
        let first = consumer::handle_batch(&deps, event.clone());
        match delivery {
            Delivery::Once => assert_failed_none(first.await),
            Delivery::TwiceInTurn => {
                assert_failed_none(first.await);
                assert_failed_none(consumer::handle_batch(&deps, event.clone()).await);
            }
            Delivery::TwiceAtOnce => {
                let (a, b) = tokio::join!(first, consumer::handle_batch(&deps, event.clone()));
                assert!(a.batch_item_failures.is_empty() || b.batch_item_failures.is_empty(), "{a:?} {b:?}");
            }
        }
        stack.delete(QUEUE, &event.records).await;
    }
}

fn assert_failed_none(response: aws_lambda_events::event::sqs::SqsBatchResponse) {
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
}

/// Publish `announcements` on the stack's bus through the relay's own publisher (as if the
/// table's stream had carried them), then consume exactly that many tracking messages.
pub async fn announce_to_tracking(stack: &Stack, announcements: &[orderflow::events::Announcement]) {
    stack.publish_as_relay(announcements).await;
    const QUEUE: &str = "TrackingQueue";
    let event = stack.receive_exactly(QUEUE, announcements.len()).await;
    assert_failed_none(consumer::handle_batch(&stack.logistics_as("tracking"), event.clone()).await);
    stack.delete(QUEUE, &event.records).await;
}

/// The parcel's shipment as stored.
pub async fn stored(stack: &Stack, parcel: &Parcel) -> Shipment {
    let id = orderflow::domain::ShipmentId::parse(&parcel.shipment).unwrap();
    stack.store().shipment(&id).await.unwrap().unwrap()
}

pub fn customer_service() -> crate::auth::VerifiedClaims {
    claims(&[("sub", "cs-dan"), ("groups", "[customer-service]")])
}

/// `method path` (matched by `route`) on the logistics API as `who`.
pub async fn call(
    stack: &Stack,
    who: &crate::auth::VerifiedClaims,
    method: &str,
    path: &str,
    route: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let request = json_request(Some(who.clone()), method, path, route, body);
    let deps = stack.logistics_as("logistics-api");
    exchange(request, |r| routes::handle(&deps, r)).await
}
