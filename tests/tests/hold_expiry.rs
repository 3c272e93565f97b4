//! Hold expiry against the emulators, on an injected clock: due holds released, others left,
//! payment and expiry racing for the same holds, a sweeper stopped half-way, stuck orders.

use orderflow::clock::Clock;
use orderflow::domain::{OrderId, OrderStatus};
use orderflow::events::OrderReceived;
use orderflow::handlers::hold_expiry::{sweep, ExpiryDeps, ExpirySettings};
use orderflow::handlers::stock_reservation::reserve_order;
use orderflow::store::{HoldStatus, PaymentOutcome};
use orderflow_tests::fixtures::{
    one_warehouse, order_body, reserved_orders, staff, submit, FlakyPublisher, RecordingPublisher,
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

fn recording(stack: &Stack) -> (ExpiryDeps, Arc<RecordingPublisher>) {
    let mut deps = stack.expiry();
    let recorder = RecordingPublisher::install(&mut deps.common);
    (deps, recorder)
}

async fn status_of(stack: &Stack, id: OrderId) -> OrderStatus {
    stack.store().order(id).await.unwrap().unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_holds_are_released_and_announced_and_others_left_alone() {
    let (stack, clock) = seeded(10).await;
    let ids = reserved_orders(&stack, 3, &order_body(&[("TEA", 2)], "Zhejiang")).await;
    let (deps, recorder) = recording(&stack);

    clock.advance(Duration::minutes(29));
    let report = sweep(&deps, None).await.unwrap();
    assert_eq!((report.expired, report.announced), (0, 0), "not due yet");
    assert_eq!(status_of(&stack, ids[0]).await, OrderStatus::AwaitingPayment);

    clock.advance(Duration::minutes(1));
    let report = sweep(&deps, None).await.unwrap();
    assert_eq!((report.expired, report.announced, report.failed), (3, 3, 0));
    for id in &ids {
        assert_eq!(status_of(&stack, *id).await, OrderStatus::Expired);
        let hold = stack.store().hold(*id).await.unwrap().unwrap();
        assert_eq!(hold.hold_status, HoldStatus::Released);
        assert!(hold.expiry_bucket.is_none(), "announced holds leave the index");
    }
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved), (10, 0));
    assert_eq!(recorder.detail_types(), ["OrderExpired"; 3]);
    assert_eq!(sweep(&deps, None).await.unwrap().expired, 0, "nothing left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_orders_are_never_released() {
    let (stack, clock) = seeded(10).await;
    let ids = reserved_orders(&stack, 2, &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let paid = stack.store().commit_payment(ids[0], "pay-1", clock.now()).await.unwrap();
    assert!(matches!(paid, PaymentOutcome::Paid(_)));
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
    clock.advance(Duration::minutes(31));
    let store = stack.store();
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let mut tasks = Vec::new();
    for id in &ids {
        let (store, barrier, id, now) = (store.clone(), barrier.clone(), *id, clock.now());
        let hold = store.hold(id).await.unwrap().unwrap();
        let pay_barrier = barrier.clone();
        let pay_store = store.clone();
        tasks.push(tokio::spawn(async move {
            pay_barrier.wait().await;
            matches!(pay_store.commit_payment(id, "pay-race", now).await.unwrap(), PaymentOutcome::Paid(_))
        }));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            matches!(store.expire_hold(&hold, now).await.unwrap(), orderflow::store::ExpireOutcome::Expired(_))
        }));
    }
    let wins: Vec<bool> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let (mut paid, mut expired) = (0, 0);
    for (i, id) in ids.iter().enumerate() {
        let (payment_won, expiry_won) = (wins[2 * i], wins[2 * i + 1]);
        assert!(payment_won ^ expiry_won, "order {i}: exactly one side wins");
        let status = status_of(&stack, *id).await;
        let hold = stack.store().hold(*id).await.unwrap().unwrap().hold_status;
        match status {
            OrderStatus::Paid => {
                assert!(payment_won);
                assert_eq!(hold, HoldStatus::Committed);
                paid += 1;
            }
            OrderStatus::Expired => {
                assert!(expiry_won);
                assert_eq!(hold, HoldStatus::Released);
                expired += 1;
            }
            other => panic!("order {i} ended {other:?}"),
        }
    }
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!(paid + expired, 100);
    assert_eq!((tea.reserved, tea.sold, tea.available), (0, paid, 100 - paid), "stock conserved to the unit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_stopped_half_way_loses_nothing_and_releases_nothing_twice() {
    let (stack, clock) = seeded(100).await;
    let ids = reserved_orders(&stack, 40, &order_body(&[("TEA", 1)], "Zhejiang")).await;
    clock.advance(Duration::hours(1));

    // A run whose every announcement fails: the holds are released, the events are not out.
    let mut broken = stack.expiry();
    broken.common.events = Arc::new(FlakyPublisher::failing_first(usize::MAX, broken.common.events.clone()));
    broken.settings = ExpirySettings { max_holds_per_run: 15, ..ExpirySettings::default() };
    let report = sweep(&broken, None).await.unwrap();
    assert_eq!((report.expired, report.announced), (15, 0));
    assert!(report.more_due);
    assert_eq!(stack.stock("TEA", "HZ").await.available, 75);

    // Bounded runs with a working bus finish the job and announce every expiry once.
    let (mut deps, recorder) = recording(&stack);
    deps.settings = ExpirySettings { max_holds_per_run: 15, ..ExpirySettings::default() };
    let mut runs = 0;
    loop {
        runs += 1;
        let report = sweep(&deps, None).await.unwrap();
        if !report.more_due {
            break;
        }
        assert!(runs < 10, "the sweep converges");
    }
    assert!(runs >= 3, "15 holds a run means several runs for 40, took {runs}");
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved), (100, 0), "every unit back once");
    assert_eq!(recorder.detail_types().len(), 40, "every expiry announced once");
    for id in ids {
        assert_eq!(status_of(&stack, id).await, OrderStatus::Expired);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_announcement_was_lost_is_announced_again_with_backoff() {
    let (stack, clock) = seeded(10).await;
    let mut intake = stack.intake();
    intake.common.events = Arc::new(FlakyPublisher::failing_first(1, intake.common.events.clone()));
    let (status, _) = submit(&intake, "lost", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    assert_eq!(status, 503, "the client gave up after this");
    let deps = stack.expiry();

    assert_eq!(sweep(&deps, None).await.unwrap().republished, 0, "within its grace time");
    clock.advance(Duration::minutes(3));
    assert_eq!(sweep(&deps, None).await.unwrap().republished, 1);
    assert_eq!(sweep(&deps, None).await.unwrap().republished, 0, "not again at once");
    // Reservation gets the order after all.
    let event = stack.receive_exactly("StockReservationQueue", 1).await;
    let response = orderflow::handlers::stock_reservation::handle_batch(&stack.reservation(), event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stack.stock("TEA", "HZ").await.reserved, 1);
    clock.advance(Duration::hours(2));
    let report = sweep(&deps, None).await.unwrap();
    assert_eq!(report.republished, 0, "a reserved order leaves the received-orders index");
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

    // A change reaches a warm function within its cache time, without a restart.
    let (status, _) = staff(
        &admin,
        "PUT",
        "/admin/hold-policy",
        "/admin/hold-policy",
        Some(json!({"default_minutes": 10, "cash_on_delivery_minutes": 720})),
    )
    .await;
    assert_eq!(status, 200);
    let reservation = stack.reservation();
    let intake = stack.intake();
    let mut ids = Vec::new();
    for key in ["before", "after"] {
        let (_, accepted) = submit(&intake, key, &order_body(&[("TEA", 1)], "Zhejiang")).await;
        let id = OrderId::parse(accepted["order_id"].as_str().unwrap()).unwrap();
        reserve_order(&reservation, &OrderReceived::of(&stack.store().order(id).await.unwrap().unwrap()))
            .await
            .unwrap();
        ids.push(id);
        clock.advance(Duration::seconds(61));
    }
    assert_eq!(hold_minutes(ids[0]).await, 10, "a fresh function reads the saved policy");
    assert_eq!(hold_minutes(ids[1]).await, 10);

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
