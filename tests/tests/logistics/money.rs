//! Money around a parcel: a not-received claim resolved by one refund within the parcel's
//! value, and a cash-on-delivery collection that pays the order once.

use super::seeded;
use orderflow::domain::tracking::AlertKind;
use orderflow::handlers::logistics::poller::{run, PollerSettings};
use orderflow_tests::fixtures::{operations, shop, TEST_PRICE_MINOR};
use orderflow_tests::parcels::{
    call, checkpoint, customer_service, handed_over, handed_over_cash_on_delivery, process_tracking_queue,
    process_tracking_queue_delivering, push, push_collection, stored, Delivery,
};
use serde_json::json;
use time::Duration;

#[tokio::test]
async fn a_not_received_claim_is_overdue_at_48_hours_and_resolved_by_one_refund() {
    let (stack, clock) = seeded().await;
    let parcel = handed_over(&stack, 2).await;
    let t0 = stack.clock.now();
    clock.set(t0 + Duration::hours(2));
    let mut signed = checkpoint(t0, 60, "DELIVERED", "SIGNED");
    signed["signed_by"] = json!("other");
    push(&stack, &parcel, "d1", vec![signed]).await;
    // Every message delivered a second time after the first was handled: still one chase.
    process_tracking_queue_delivering(&stack, Delivery::TwiceInTurn).await;
    assert!(stored(&stack, &parcel).await.tracking.unwrap().open_alert(AlertKind::AbnormalSignOff).is_some());
    let chases: Vec<_> = stack.courier.chases().into_iter().map(|c| c.reason).collect();
    assert_eq!(chases, vec![AlertKind::AbnormalSignOff]);
    let told: Vec<_> = stack.notifier.told().into_iter().map(|m| m.template).collect();
    assert_eq!(told, vec!["parcel-signed-off-elsewhere"]);

    let path = format!("/shipments/{}/not-received", parcel.shipment);
    let (status, claimed) =
        call(&stack, &shop(), "POST", &path, "/shipments/{id}/not-received", Some(json!({"note": "not here"}))).await;
    assert_eq!(status, 200, "{claimed}");
    let opened = stack.clock.now();
    let poller = stack.logistics_as("tracking-poller");
    let tracking = stored(&stack, &parcel).await.tracking.unwrap();
    assert_eq!(tracking.next_check_at, Some(opened + Duration::hours(48)), "the poller looks at the deadline");
    clock.set(opened + Duration::hours(48) - Duration::seconds(1));
    run(&poller, &PollerSettings::default()).await.unwrap();
    assert!(stored(&stack, &parcel).await.tracking.unwrap().open_alert(AlertKind::ClaimOverdue).is_none());
    clock.set(opened + Duration::hours(48));
    run(&poller, &PollerSettings::default()).await.unwrap();
    assert!(stored(&stack, &parcel).await.tracking.unwrap().open_alert(AlertKind::ClaimOverdue).is_some());

    let resolve = format!("/admin/shipments/{}/claim-resolution", parcel.shipment);
    let route = "/admin/shipments/{id}/claim-resolution";
    // The parcel carries 2 TEA: a claim gives back at most their price.
    let too_much = json!({"kind": "refund", "amount_minor": 2 * TEST_PRICE_MINOR + 1});
    let (status, problem) = call(&stack, &customer_service(), "POST", &resolve, route, Some(too_much)).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("amount-out-of-range")), "{problem}");
    let refund = json!({"kind": "refund", "amount_minor": 100});
    assert_eq!(call(&stack, &customer_service(), "POST", &resolve, route, Some(refund.clone())).await.0, 200);
    assert_eq!(
        call(&stack, &customer_service(), "POST", &resolve, route, Some(refund)).await.0,
        200,
        "the same answer again"
    );
    let other = json!({"kind": "reship"});
    assert_eq!(call(&stack, &customer_service(), "POST", &resolve, route, Some(other)).await.0, 409);
    assert_eq!(call(&stack, &operations(), "POST", &resolve, route, Some(json!({"kind": "reship"}))).await.0, 409);
    let tracking = stored(&stack, &parcel).await.tracking.unwrap();
    assert!(tracking.open_alert(AlertKind::ClaimOverdue).is_none(), "resolved: cleared");

    let observer = stack.observe_bus().await;
    stack.relay().await;
    let events = observer.events_until_quiet(std::time::Duration::from_millis(500)).await;
    let refunds: Vec<_> = events.iter().filter(|e| e["detail-type"] == "RefundRequested").collect();
    assert_eq!(refunds.len(), 1, "{events:?}");
    assert_eq!(refunds[0]["detail"]["amount_minor"], 100);
}

#[tokio::test]
async fn a_cash_on_delivery_collection_pays_the_order_once_however_often_it_is_reported() {
    let (stack, _) = seeded().await;
    let parcel = handed_over_cash_on_delivery(&stack, 2).await;
    let total = 2 * TEST_PRICE_MINOR;
    assert_eq!(push_collection(&stack, &parcel, "cash-1", total).await.1["status"], "accepted");
    assert_eq!(push_collection(&stack, &parcel, "cash-1", total).await.1["status"], "duplicate");
    assert_eq!(push_collection(&stack, &parcel, "cash-1-again", total).await.1["status"], "accepted");
    let observer = stack.observe_bus().await;
    process_tracking_queue(&stack).await;
    let order = stack.store().order(parcel.order_id).await.unwrap().unwrap();
    assert_eq!(order.paid_minor, Some(total), "paid once, not twice");
    assert!(order.cash_collected_at.is_some());
    let collection = stored(&stack, &parcel).await.tracking.unwrap().collection.unwrap();
    assert_eq!(collection.amount_minor, total, "whichever report came first, once");
    // The courier's own report id, for finance to match the courier's statement (not the bus
    // event's id, which the announcement's envelope field of the same name once replaced).
    assert!(["cash-1", "cash-1-again"].contains(&collection.report_id.as_str()), "{}", collection.report_id);
    stack.relay().await;
    let events = observer.events_until_quiet(std::time::Duration::from_millis(500)).await;
    let collected = events.iter().filter(|e| e["detail-type"] == "CashCollected").count();
    assert_eq!(collected, 1, "{events:?}");

    let online = handed_over(&stack, 1).await;
    push_collection(&stack, &online, "cash-2", TEST_PRICE_MINOR).await;
    process_tracking_queue(&stack).await;
    assert!(stored(&stack, &online).await.tracking.unwrap().collection.is_none(), "paid online: no cash");
}
