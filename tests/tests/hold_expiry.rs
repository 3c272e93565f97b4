//! Hold expiry against the emulators, on an injected clock: due holds released (and announced
//! from the stream), others left, payment and expiry racing for the same holds, bounded runs.

use orderflow::clock::Clock;
use orderflow::domain::{OrderId, OrderStatus};
use orderflow::events::OrderReceived;
use orderflow::handlers::hold_expiry::{sweep, ExpirySettings};
use orderflow::handlers::payment_processor;
use orderflow::handlers::stock_reservation::{reserve_order, ReservationDeps};
use orderflow::store::{HoldStatus, PaymentKey, Resolution};
use orderflow_tests::fixtures::{
    deliver_payment, one_warehouse, order_body, payment_event, reserved_orders, staff, submit,
};
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::sync::Arc;
use time::Duration;

async fn seeded(units: i64) -> (Stack, Arc<orderflow::clock::ManualClock>) {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", units), ("FLASH", units)])).await.unwrap();
    (stack, clock)
}

/// A succeeded payment of one TEA (19.90 CNY) for `id`, stored by the webhook: the event the
/// processor will apply.
async fn stored_payment(stack: &Stack, id: OrderId, payment_id: &str) -> orderflow::domain::payment::PaymentEvent {
    let event = payment_event(
        "payment.succeeded",
        &id.to_string(),
        1_990,
        "CNY",
        payment_id,
        stack.clock.now().unix_timestamp(),
    );
    assert_eq!(deliver_payment(stack, &event).await.0, 200);
    serde_json::from_value(event).unwrap()
}

/// An order of one TEA submitted under `key` and reserved by `reservation` (a warm function).
async fn reserve_through(stack: &Stack, reservation: &ReservationDeps, key: &str) -> OrderId {
    let (_, accepted) = submit(&stack.intake(), key, &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let id = OrderId::parse(accepted["order_id"].as_str().unwrap()).unwrap();
    reserve_order(reservation, &OrderReceived::of(&stack.store().order(id).await.unwrap().unwrap())).await.unwrap();
    id
}

async fn status_of(stack: &Stack, id: OrderId) -> OrderStatus {
    stack.store().order(id).await.unwrap().unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_holds_are_released_and_announced_and_others_left_alone() {
    let (stack, clock) = seeded(10).await;
    let ids = reserved_orders(&stack, 3, &order_body(&[("TEA", 2)], "Zhejiang")).await;
    let deps = stack.expiry();
    let bus = stack.observe_bus().await;

    clock.advance(Duration::minutes(29));
    let report = sweep(&deps, None).await.unwrap();
    assert_eq!(report.expired, 0, "not due yet");
    assert_eq!(status_of(&stack, ids[0]).await, OrderStatus::AwaitingPayment);

    clock.advance(Duration::minutes(1));
    let report = sweep(&deps, None).await.unwrap();
    assert_eq!((report.expired, report.failed), (3, 0));
    for id in &ids {
        assert_eq!(status_of(&stack, *id).await, OrderStatus::Expired);
        let hold = stack.store().hold(*id).await.unwrap().unwrap();
        assert_eq!(hold.hold_status, HoldStatus::Released);
        assert!(hold.expiry_bucket.is_none(), "released holds leave the index in the same write");
    }
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved), (10, 0));
    assert_eq!(sweep(&deps, None).await.unwrap().expired, 0, "nothing left");

    stack.relay().await;
    let events = bus.at_least(9).await;
    let expired: Vec<&Value> = events.iter().filter(|e| e["detail-type"] == "OrderExpired").collect();
    assert_eq!(expired.len(), 3, "each expiry announced once: {events:?}");
    for event in expired {
        assert_eq!(event["detail"]["released"][0]["quantity"], 2, "with what went back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_orders_are_never_released() {
    let (stack, clock) = seeded(10).await;
    let ids = reserved_orders(&stack, 2, &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let payment = stored_payment(&stack, ids[0], "pay-1").await;
    payment_processor::process(&stack.payment_processor(), &payment).await.unwrap();
    clock.advance(Duration::hours(2));
    let report = sweep(&stack.expiry(), None).await.unwrap();
    assert_eq!(report.expired, 1);
    assert_eq!(status_of(&stack, ids[0]).await, OrderStatus::Paid);
    assert_eq!(status_of(&stack, ids[1]).await, OrderStatus::Expired);
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved, tea.sold), (9, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payment_and_expiry_racing_for_a_hundred_orders_end_each_in_exactly_one_state() {
    let (stack, clock) = seeded(100).await;
    let ids = reserved_orders(&stack, 100, &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let mut payments = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        payments.push(stored_payment(&stack, *id, &format!("pay-race-{i}")).await);
    }
    let keys: Vec<PaymentKey> = payments.iter().map(PaymentKey::of).collect();
    clock.advance(Duration::minutes(31));
    let (store, processor) = (stack.store(), stack.payment_processor());
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let mut tasks = Vec::new();
    for (id, payment) in ids.iter().zip(payments) {
        let (store, barrier, now) = (store.clone(), barrier.clone(), clock.now());
        let hold = store.hold(*id).await.unwrap().unwrap();
        let (pay_barrier, processor) = (barrier.clone(), processor.clone());
        tasks.push(tokio::spawn(async move {
            pay_barrier.wait().await;
            payment_processor::process(&processor, &payment).await.unwrap();
            false
        }));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            matches!(store.expire_hold(&hold, now).await.unwrap(), orderflow::store::ExpireOutcome::Expired(_))
        }));
    }
    let outcomes: Vec<bool> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let (mut on_time, mut late) = (0, 0);
    for (i, id) in ids.iter().enumerate() {
        let expiry_won = outcomes[2 * i + 1];
        // The payment is applied either way: on time if it won, late (stock taken again) if not.
        assert_eq!(status_of(&stack, *id).await, OrderStatus::Paid, "order {i}");
        assert_eq!(stack.store().hold(*id).await.unwrap().unwrap().hold_status, HoldStatus::Committed);
        let resolution = stack.store().payment_record(&keys[i]).await.unwrap().unwrap().resolution.unwrap();
        match resolution {
            Resolution::Paid => {
                assert!(!expiry_won, "order {i}: paid on time, so the expiry lost");
                on_time += 1;
            }
            Resolution::LatePaid => {
                assert!(expiry_won, "order {i}: paid late, so the expiry won first");
                late += 1;
            }
            other => panic!("order {i} resolved {other:?}"),
        }
    }
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!(on_time + late, 100);
    assert_eq!((tea.reserved, tea.sold, tea.available), (0, 100, 0), "every unit sold once, none twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_runs_leave_the_rest_for_the_next_run_and_release_nothing_twice() {
    let (stack, clock) = seeded(100).await;
    let ids = reserved_orders(&stack, 40, &order_body(&[("TEA", 1)], "Zhejiang")).await;
    clock.advance(Duration::hours(1));
    let bus = stack.observe_bus().await;
    let mut deps = stack.expiry();
    deps.settings = ExpirySettings { max_holds_per_run: 15, ..ExpirySettings::default() };
    let mut runs = 0;
    let mut expired = 0;
    loop {
        runs += 1;
        let report = sweep(&deps, None).await.unwrap();
        expired += report.expired;
        if !report.more_due {
            break;
        }
        assert!(runs < 10, "the sweep converges");
    }
    assert!(runs >= 3, "15 holds a run means several runs for 40, took {runs}");
    assert_eq!(expired, 40);
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved), (100, 0), "every unit back once");
    for id in &ids {
        assert_eq!(status_of(&stack, *id).await, OrderStatus::Expired);
    }
    stack.relay().await;
    let events = bus.at_least(120).await;
    let mut announced: Vec<String> = events
        .iter()
        .filter(|e| e["detail-type"] == "OrderExpired")
        .map(|e| e["detail"]["order_id"].as_str().unwrap().to_owned())
        .collect();
    announced.sort();
    announced.dedup();
    assert_eq!(announced.len(), 40, "every expiry announced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_durations_follow_the_policy_operations_saved() {
    let (stack, clock) = seeded(10).await;
    let admin = stack.staff();
    let policy = json!({"default_minutes": 25, "cash_on_delivery_minutes": 720, "channels": {"promo": 20}, "skus": {"FLASH": 15}});
    let (status, _) = staff(&admin, "PUT", "/admin/hold-policy", "/admin/hold-policy", Some(policy)).await;
    assert_eq!(status, 200);
    let (status, problem) = staff(
        &admin,
        "PUT",
        "/admin/hold-policy",
        "/admin/hold-policy",
        Some(json!({"default_minutes": 0, "cash_on_delivery_minutes": 5})),
    )
    .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("default_minutes")));

    let hold_minutes = |id: OrderId| {
        let stack = &stack;
        async move {
            let order = stack.store().order(id).await.unwrap().unwrap();
            (order.hold_expires_at.unwrap() - order.updated_at).whole_minutes()
        }
    };
    let flash = reserved_orders(&stack, 1, &order_body(&[("FLASH", 1), ("TEA", 1)], "Zhejiang")).await[0];
    assert_eq!(hold_minutes(flash).await, 15, "a flash-sale SKU shortens the hold");
    let plain = reserved_orders(&stack, 1, &order_body(&[("TEA", 1)], "Zhejiang")).await[0];
    assert_eq!(hold_minutes(plain).await, 25);
    let mut cod_body = order_body(&[("TEA", 1)], "Zhejiang");
    cod_body["payment_method"] = json!("cash_on_delivery");
    let cod = reserved_orders(&stack, 1, &cod_body).await[0];
    assert_eq!(status_of(&stack, cod).await, OrderStatus::AwaitingReview);
    assert_eq!(hold_minutes(cod).await, 720, "cash on delivery has its own rule");

    // A change reaches a warm function within its cache time, without a restart: one
    // reservation function, warm with the policy above, before and after operations change it.
    let reservation = stack.reservation();
    let warm = reserve_through(&stack, &reservation, "warm").await;
    assert_eq!(hold_minutes(warm).await, 25);
    let (status, _) = staff(
        &admin,
        "PUT",
        "/admin/hold-policy",
        "/admin/hold-policy",
        Some(json!({"default_minutes": 10, "cash_on_delivery_minutes": 720})),
    )
    .await;
    assert_eq!(status, 200);
    let cached = reserve_through(&stack, &reservation, "cached").await;
    assert_eq!(hold_minutes(cached).await, 25, "the warm function still trusts its copy");
    clock.advance(Duration::seconds(61));
    let fresh = reserve_through(&stack, &reservation, "fresh").await;
    assert_eq!(hold_minutes(fresh).await, 10, "past its cache time it reads the saved policy");

    clock.advance(Duration::minutes(721));
    let report = sweep(&stack.expiry(), None).await.unwrap();
    assert!(report.expired >= 1);
    assert_eq!(status_of(&stack, cod).await, OrderStatus::Expired, "an unreviewed cash-on-delivery hold expires too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stack_runs_the_sweeper_on_its_schedule() {
    let (stack, clock) = seeded(10).await;
    let ids = reserved_orders(&stack, 2, &order_body(&[("TEA", 1)], "Zhejiang")).await;
    clock.advance(Duration::minutes(31));
    let stack = Arc::new(stack);
    let options = orderflow_tests::local::LocalOptions {
        schedule_every: Some(std::time::Duration::from_millis(100)),
        ..Default::default()
    };
    let running = orderflow_tests::local::run(stack.clone(), options).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stack.stock("TEA", "HZ").await.reserved > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    running.stop().await;
    for id in ids {
        assert_eq!(status_of(&stack, id).await, OrderStatus::Expired);
    }
}

#[test]
fn the_sample_schedule_event_is_what_the_function_reads() {
    let text =
        std::fs::read_to_string(orderflow_tests::emulators::repo_root().join("events/hold-expiry-schedule.json"))
            .unwrap();
    let event: aws_lambda_events::event::eventbridge::EventBridgeEvent<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(event.detail_type, "Scheduled Event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reservation_never_decided_is_cancelled_at_its_deadline_and_a_reserved_one_is_not() {
    let (stack, clock) = seeded(10).await;
    let (_, stuck) = submit(&stack.intake(), "stuck", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let stuck = OrderId::parse(stuck["order_id"].as_str().unwrap()).unwrap();
    // Its OrderReceived went to the dead-letter queue: reservation never decides it. Another
    // order is reserved as usual.
    let reserved = reserved_orders(&stack, 1, &order_body(&[("TEA", 1)], "Zhejiang")).await[0];
    let bus = stack.observe_bus().await;
    stack.relay().await;
    clock.advance(Duration::minutes(59));
    assert_eq!(sweep(&stack.expiry(), None).await.unwrap().unreserved_cancelled, 0, "within its deadline");
    clock.advance(Duration::minutes(2));
    let report = sweep(&stack.expiry(), None).await.unwrap();
    assert_eq!(report.unreserved_cancelled, 1, "{report:?}");
    assert_eq!(status_of(&stack, stuck).await, OrderStatus::Cancelled);
    assert_eq!(status_of(&stack, reserved).await, OrderStatus::Expired, "the reserved one's hold ran out instead");
    stack.relay().await;
    let events = bus.at_least(5).await;
    let cancelled: Vec<&Value> = events.iter().filter(|e| e["detail-type"] == "OrderCancelled").collect();
    assert_eq!(cancelled.len(), 1, "{events:?}");
    assert_eq!(cancelled[0]["detail"]["order_id"], stuck.to_string());
}
