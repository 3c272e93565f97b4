//! Logistics against the emulators: couriers' signed pushes (duplicates, out of order, bad
//! signatures), the poller's alerts at their thresholds with the chase and the customer's
//! message, its rate limit and bound, and the order delivered. Claims and cash in [`money`],
//! courier KPIs and the month-end review in [`kpis`].

mod kpis;
mod money;
mod samples;

use orderflow::domain::tracking::{AlertKind, TrackingStatus};
use orderflow::handlers::logistics::poller::{run, PollerSettings};
use orderflow_tests::fixtures::{get_order, one_warehouse};
use orderflow_tests::parcels::{
    call, checkpoint, customer_service, handed_over, process_tracking_queue, process_tracking_queue_delivering, push,
    push_raw, stored, Delivery,
};
use orderflow_tests::Stack;
use serde_json::json;
use std::sync::Arc;
use time::Duration;

pub(crate) async fn seeded() -> (Stack, Arc<orderflow::clock::ManualClock>) {
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

    // The ParcelStuck message delivered twice at the same moment: one delivery chases.
    process_tracking_queue_delivering(&stack, Delivery::TwiceAtOnce).await;
    let chases = stack.courier.chases();
    assert_eq!(chases.len(), 1, "the courier is asked once: {chases:?}");
    assert_eq!(chases[0].reason, AlertKind::NotCollected);
    let told = stack.notifier.told();
    assert_eq!(told.len(), 1, "the customer is told once: {told:?}");
    assert_eq!(told[0].template, "parcel-not-collected");
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
    stack.store().save_policy(&policy, "test", stack.clock.now()).await.unwrap();
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
async fn a_checkpoint_both_pushed_and_polled_is_kept_once() {
    let (stack, clock) = seeded().await;
    let parcel = handed_over(&stack, 1).await;
    let picked_up = stack.courier.advance(&parcel.waybill, stack.clock.now()).expect("a first step");
    clock.set(stack.clock.now() + Duration::minutes(5));
    push(&stack, &parcel, "p1", vec![serde_json::to_value(&picked_up).unwrap()]).await;
    process_tracking_queue(&stack).await;
    let poller = stack.logistics_as("tracking-poller");
    let report = run(&poller, &PollerSettings::default()).await.unwrap();
    assert_eq!(report.polled, 1, "{report:?}");
    let tracking = stored(&stack, &parcel).await.tracking.unwrap();
    assert_eq!(tracking.checkpoints, vec![picked_up]);
}

#[tokio::test]
async fn a_run_polls_no_more_than_the_couriers_rate_allows_and_the_rest_wait_for_the_next() {
    let (stack, clock) = seeded().await;
    let mut parcels = Vec::new();
    for _ in 0..5 {
        parcels.push(handed_over(&stack, 1).await);
    }
    let limits = orderflow::domain::logistics_policy::CourierLimits {
        courier: parcels[0].courier.clone(),
        polls_per_second: 2,
        polls_per_day: 1_000,
        pushes: false,
    };
    let policy = orderflow::domain::LogisticsPolicy { courier_limits: vec![limits], ..Default::default() };
    stack.store().save_policy(&policy, "test", stack.clock.now()).await.unwrap();
    let poller = stack.logistics_as("tracking-poller");
    let one_second = PollerSettings { poll_seconds: 1 };
    let first = run(&poller, &one_second).await.unwrap();
    assert_eq!((first.due, first.polled, first.deferred), (5, 2, 3), "2 a second for 1 second");
    let second = run(&poller, &one_second).await.unwrap();
    assert_eq!(second.polled, 0, "the deferred wait for the next run's minute");
    clock.set(stack.clock.now() + Duration::minutes(1));
    let third = run(&poller, &one_second).await.unwrap();
    assert_eq!((third.due, third.polled, third.deferred), (3, 2, 1));
    assert_eq!(stack.courier.polls().len(), 4);
}

#[tokio::test]
async fn a_bounded_run_takes_the_parcels_due_soonest_whichever_bucket_holds_them() {
    let (stack, clock) = seeded().await;
    let mut parcels = Vec::new();
    for _ in 0..6 {
        parcels.push(handed_over(&stack, 1).await);
        clock.advance(Duration::minutes(10));
    }
    let buckets: std::collections::HashSet<_> =
        parcels.iter().map(|p| p.order_id.bucket(stack.store().buckets())).collect();
    assert!(buckets.len() > 1, "the parcels spread over buckets");
    let policy = orderflow::domain::LogisticsPolicy { max_parcels_per_run: 2, ..Default::default() };
    stack.store().save_policy(&policy, "test", stack.clock.now()).await.unwrap();
    let poller = stack.logistics_as("tracking-poller");
    run(&poller, &PollerSettings::default()).await.unwrap();
    let polled: std::collections::HashSet<String> = stack.courier.polls().into_iter().map(|(w, _)| w).collect();
    let soonest: std::collections::HashSet<String> = parcels[..2].iter().map(|p| p.waybill.clone()).collect();
    assert_eq!(polled, soonest, "the first two handed over are the first two due");
}
