//! Logistics against the emulators: couriers' signed pushes (duplicates, out of order, bad
//! signatures), the poller's alerts at their thresholds with the chase and the customer's
//! message, its rate limit and bound, not-received claims, and the order delivered.

use orderflow::domain::tracking::{AlertKind, TrackingStatus};
use orderflow::handlers::logistics::poller::{run, PollerSettings};
use orderflow_tests::fixtures::{get_order, one_warehouse, operations, shop};
use orderflow_tests::parcels::{
    call, checkpoint, customer_service, handed_over, process_tracking_queue, push, push_raw, stored,
};
use orderflow_tests::Stack;
use serde_json::json;
use std::sync::Arc;
use time::Duration;

async fn seeded() -> (Stack, Arc<orderflow::clock::ManualClock>) {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    stack.relay().await;
    (stack, clock)
}

#[tokio::test]
async fn pushes_repeated_and_out_of_order_are_kept_once_and_the_delivery_delivers_the_order() {
    let (stack, clock) = seeded().await;
    let parcel = handed_over(&stack, 1).await;
    let t0 = stack.clock.now();
    clock.set(t0 + Duration::hours(3));
    let later = checkpoint(t0, 90, "OUT_FOR_DELIVERY", "OFD");
    let earlier = checkpoint(t0, 30, "IN_TRANSIT", "PICKED_UP");
    assert_eq!(push(&stack, &parcel, "e1", vec![later.clone()]).await.1["status"], "accepted");
    assert_eq!(push(&stack, &parcel, "e1", vec![later.clone()]).await.1["status"], "duplicate");
    assert_eq!(push(&stack, &parcel, "e2", vec![earlier, later]).await.0, 200);
    process_tracking_queue(&stack).await;
    let tracking = stored(&stack, &parcel).await.tracking.unwrap();
    let codes: Vec<_> = tracking.checkpoints.iter().map(|c| c.raw_code.as_str()).collect();
    assert_eq!(codes, vec!["PICKED_UP", "OFD"], "each once, in event order");
    assert_eq!(tracking.status, Some(TrackingStatus::OutForDelivery), "the latest by event time");

    let delivered = json!({"signed_by": "customer", "left_at": "door"});
    let mut signed = checkpoint(t0, 120, "DELIVERED", "SIGNED");
    signed.as_object_mut().unwrap().extend(delivered.as_object().unwrap().clone());
    push(&stack, &parcel, "e3", vec![signed]).await;
    process_tracking_queue(&stack).await;
    let (_, order) = get_order(&stack.intake(), &parcel.order_id.to_string()).await;
    assert_eq!(order["status"], "DELIVERED");
    let late = checkpoint(t0, 150, "IN_TRANSIT", "ARRIVED_HUB");
    push(&stack, &parcel, "e4", vec![late]).await;
    process_tracking_queue(&stack).await;
    assert_eq!(
        stored(&stack, &parcel).await.tracking.unwrap().status,
        Some(TrackingStatus::Delivered),
        "never falls back"
    );

    let month = orderflow::handlers::logistics::kpi::month_of(stack.clock.now());
    let kpis = stack.store().courier_months(&month).await.unwrap();
    assert_eq!((kpis.len(), kpis[0].handed_over, kpis[0].delivered), (1, 1, 1), "{kpis:?}");
}

#[tokio::test]
async fn a_push_not_signed_by_its_courier_is_refused_and_nothing_is_stored() {
    let (stack, _) = seeded().await;
    let parcel = handed_over(&stack, 1).await;
    let body = json!({"event_id": "x1", "waybill": parcel.waybill, "checkpoints": [checkpoint(stack.clock.now(), 1, "IN_TRANSIT", "PICKED_UP")]});
    let now = stack.clock.now().unix_timestamp();
    let (payload, other_couriers) = orderflow_tests::courier::signed_push("sf", &body, now);
    assert_eq!(push_raw(&stack, parcel.courier.as_str(), payload.clone(), Some(other_couriers)).await.0, 401);
    assert_eq!(push_raw(&stack, parcel.courier.as_str(), payload.clone(), None).await.0, 401);
    let (_, stale) = orderflow_tests::courier::signed_push(parcel.courier.as_str(), &body, now - 301);
    assert_eq!(push_raw(&stack, parcel.courier.as_str(), payload.clone(), Some(stale)).await.0, 400);
    let (_, good) = orderflow_tests::courier::signed_push(parcel.courier.as_str(), &body, now);
    assert_eq!(
        push_raw(&stack, "nobody", payload.clone(), Some(good.clone())).await.0,
        401,
        "an unknown courier has no secret"
    );
    let tampered = payload.replace("PICKED_UP", "DELIVERED");
    assert_eq!(push_raw(&stack, parcel.courier.as_str(), tampered, Some(good)).await.0, 401);
    assert_eq!(process_tracking_queue(&stack).await, 1, "only the hand-over's own event reached the queue");
    assert!(stored(&stack, &parcel).await.tracking.unwrap().checkpoints.is_empty());
}

#[tokio::test]
async fn not_collected_is_raised_at_72_hours_once_chased_and_told_then_cleared_by_the_pickup() {
    let (stack, clock) = seeded().await;
    let parcel = handed_over(&stack, 1).await;
    let handed_at = stack.clock.now();
    let poller = stack.logistics_as("tracking-poller");
    let settings = PollerSettings::default();
    run(&poller, &settings).await.unwrap();
    clock.set(handed_at + Duration::hours(72) - Duration::seconds(1));
    run(&poller, &settings).await.unwrap();
    assert!(stored(&stack, &parcel).await.tracking.unwrap().alerts.is_empty(), "not a second before");
    clock.set(handed_at + Duration::hours(72));
    run(&poller, &settings).await.unwrap();
    run(&poller, &settings).await.unwrap();
    let tracking = stored(&stack, &parcel).await.tracking.unwrap();
    assert_eq!(tracking.alerts.len(), 1);
    assert_eq!(tracking.alerts[0].kind, AlertKind::NotCollected);
    let (_, list) =
        call(&stack, &customer_service(), "GET", "/admin/parcel-alerts", "/admin/parcel-alerts", None).await;
    assert_eq!(list["alerts"].as_array().unwrap().len(), 1, "{list}");

    process_tracking_queue(&stack).await;
    process_tracking_queue(&stack).await;
    assert_eq!(stack.courier.chases().len(), 1, "the courier is chased once");
    assert_eq!(stack.notifier.told().len(), 1, "the customer is told once");
    assert!(stored(&stack, &parcel).await.tracking.unwrap().alerts[0].chased_at.is_some());

    stack.courier.advance(&parcel.waybill, handed_at + Duration::hours(73));
    clock.set(handed_at + Duration::hours(75));
    run(&poller, &settings).await.unwrap();
    let tracking = stored(&stack, &parcel).await.tracking.unwrap();
    assert!(tracking.alerts[0].cleared_at.is_some(), "the pickup ends the condition");
    let (_, list) =
        call(&stack, &customer_service(), "GET", "/admin/parcel-alerts", "/admin/parcel-alerts", None).await;
    assert!(list["alerts"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_poller_keeps_to_a_couriers_rate_and_day_budget_and_to_its_bound() {
    let (stack, clock) = seeded().await;
    let mut parcels = Vec::new();
    for _ in 0..4 {
        parcels.push(handed_over(&stack, 1).await);
    }
    let limits = orderflow::domain::logistics_policy::CourierLimits {
        courier: parcels[0].courier.clone(),
        polls_per_second: 2,
        polls_per_day: 3,
        pushes: false,
    };
    let policy = orderflow::domain::LogisticsPolicy {
        max_parcels_per_run: 3,
        courier_limits: vec![limits],
        ..Default::default()
    };
    stack.store().save_logistics_policy(&policy, "test", stack.clock.now()).await.unwrap();
    let poller = stack.logistics_as("tracking-poller");
    let first = run(&poller, &PollerSettings::default()).await.unwrap();
    assert_eq!((first.due, first.polled, first.deferred), (3, 3, 0), "the run's bound is 3");
    let polls = stack.courier.polls();
    let spread = polls.last().unwrap().1 - polls.first().unwrap().1;
    assert!(spread >= std::time::Duration::from_millis(950), "3 polls at 2 a second take a second: {spread:?}");
    clock.set(stack.clock.now() + Duration::minutes(1));
    let second = run(&poller, &PollerSettings::default()).await.unwrap();
    assert_eq!((second.due, second.polled, second.deferred), (1, 0, 1), "the day's 3 polls are spent");
    assert_eq!(stack.courier.polls().len(), 3);
}

#[tokio::test]
async fn a_not_received_claim_is_overdue_at_48_hours_and_resolved_by_one_refund() {
    let (stack, clock) = seeded().await;
    let parcel = handed_over(&stack, 2).await;
    let t0 = stack.clock.now();
    clock.set(t0 + Duration::hours(2));
    let mut signed = checkpoint(t0, 60, "DELIVERED", "SIGNED");
    signed["signed_by"] = json!("other");
    push(&stack, &parcel, "d1", vec![signed]).await;
    process_tracking_queue(&stack).await;
    assert!(stored(&stack, &parcel).await.tracking.unwrap().open_alert(AlertKind::AbnormalSignOff).is_some());

    let path = format!("/shipments/{}/not-received", parcel.shipment);
    let (status, claimed) =
        call(&stack, &shop(), "POST", &path, "/shipments/{id}/not-received", Some(json!({"note": "not here"}))).await;
    assert_eq!(status, 200, "{claimed}");
    let opened = stack.clock.now();
    let poller = stack.logistics_as("tracking-poller");
    clock.set(opened + Duration::hours(48) - Duration::seconds(1));
    run(&poller, &PollerSettings::default()).await.unwrap();
    assert!(stored(&stack, &parcel).await.tracking.unwrap().open_alert(AlertKind::ClaimOverdue).is_none());
    clock.set(opened + Duration::hours(48));
    run(&poller, &PollerSettings::default()).await.unwrap();
    assert!(stored(&stack, &parcel).await.tracking.unwrap().open_alert(AlertKind::ClaimOverdue).is_some());

    let resolve = format!("/admin/shipments/{}/claim-resolution", parcel.shipment);
    let route = "/admin/shipments/{id}/claim-resolution";
    let too_much = json!({"kind": "refund", "amount_minor": 1_000_000});
    assert_eq!(call(&stack, &customer_service(), "POST", &resolve, route, Some(too_much)).await.0, 400);
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
