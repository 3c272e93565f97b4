//! The table's stream as the outbox: every state change announces itself through the event
//! relay, whatever goes wrong between the table and the bus. The relay runs as Lambda's event
//! source mapping runs it (the template's batch size, retries, bisection and on-failure queue).

use orderflow::clock::Clock;
use orderflow::domain::{OrderId, OrderStatus};
use orderflow::handlers::event_relay::RelayDeps;
use orderflow::handlers::hold_expiry::sweep;
use orderflow::handlers::order_intake;
use orderflow::handlers::payment_processor::{self, handle_batch as process_payments};
use orderflow::handlers::stock_reservation::handle_batch as reserve;
use orderflow_tests::fixtures::{
    cancel_order, customer, deliver_payment, every_order_scores, exchange, from_own_customer, http_as, one_warehouse,
    order_body, payment_event, reserved_orders, staff, submit, TestPublisher,
};
use orderflow_tests::outbox::{detail_types, BusObserver};
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use time::Duration;

async fn seeded(units: i64) -> (Stack, Arc<orderflow::clock::ManualClock>) {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", units)])).await.unwrap();
    (stack, clock)
}

/// The relay, publishing through a [`TestPublisher`] in front of the real bus.
fn relay_through(stack: &Stack, publisher: TestPublisher) -> (RelayDeps, Arc<TestPublisher>) {
    let mut deps = stack.relay_deps();
    let publisher = Arc::new(publisher);
    deps.publisher = publisher.clone();
    (deps, publisher)
}

fn real_bus(stack: &Stack) -> TestPublisher {
    TestPublisher::around(stack.relay_deps().publisher)
}

/// The events on the bus about one order, by detail-type.
fn about(events: &[Value], id: &str) -> Vec<String> {
    let mine: Vec<Value> = events.iter().filter(|e| e["detail"]["order_id"] == id).cloned().collect();
    detail_types(&mine)
}

async fn one_announced(bus: &BusObserver, id: &str, detail_type: &str) -> Value {
    let events = bus.events().await;
    let matching: Vec<&Value> =
        events.iter().filter(|e| e["detail"]["order_id"] == id && e["detail-type"] == detail_type).collect();
    assert_eq!(matching.len(), 1, "one {detail_type} for {id}: {events:?}");
    matching[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_rejection_is_announced_as_order_rejected_for_risk_review() {
    let (stack, _) = seeded(10).await;
    every_order_scores(&stack, 110).await;
    let (_, held) = submit(&stack.intake(), "held", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let id = held["order_id"].as_str().unwrap();
    let bus = stack.observe_bus().await;
    let path = format!("/admin/orders/{id}/reject");
    let (status, _) = staff(&stack.staff(), "POST", &path, "/admin/orders/{id}/reject", None).await;
    assert_eq!(status, 200);
    stack.relay().await;
    let rejected = one_announced(&bus, id, "OrderRejected").await;
    assert_eq!(rejected["detail"]["reason"], "RISK_REVIEW");
    assert!(stack.drain("StockReservationQueue").await.is_empty(), "a rejected order is not reserved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_payment_that_releases_the_hold_cancels_in_the_same_write_and_a_redelivery_changes_nothing() {
    let (stack, clock) = seeded(10).await;
    let id = reserved_orders(&stack, 1, &order_body(&[("TEA", 2)], "Zhejiang")).await[0];
    let mut deps = stack.payment_processor();
    deps.settings.release_hold_on_failure = true;
    let failed =
        payment_event("payment.cancelled", &id.to_string(), 3980, "CNY", "pay_1", clock.now().unix_timestamp());
    assert_eq!(deliver_payment(&stack, &failed).await.0, 200);
    let bus = stack.observe_bus().await;
    stack.relay().await;
    let delivered = stack.receive_exactly("PaymentEventsQueue", 1).await;
    // Delivered twice, as SQS may: the first applies the failure and the cancel together.
    for _ in 0..2 {
        assert!(process_payments(&deps, delivered.clone()).await.batch_item_failures.is_empty());
    }
    let order = stack.store().order(id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Cancelled);
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved), (10, 0));
    stack.relay().await;
    let cancelled = one_announced(&bus, &id.to_string(), "OrderCancelled").await;
    assert_eq!(cancelled["detail"]["released"][0]["quantity"], 2, "{cancelled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_the_sweeper_cancels_for_an_expired_code_is_announced() {
    let (stack, clock) = seeded(10).await;
    every_order_scores(&stack, 85).await;
    let (_, pending) = submit(&stack.intake(), "late", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    assert_eq!(pending["status"], "PENDING_VERIFICATION");
    let id = pending["order_id"].as_str().unwrap();
    let bus = stack.observe_bus().await;
    clock.advance(Duration::minutes(11));
    assert_eq!(sweep(&stack.expiry(), None).await.unwrap().unverified_cancelled, 1);
    stack.relay().await;
    let cancelled = one_announced(&bus, id, "OrderCancelled").await;
    assert_eq!(cancelled["detail"]["released"], json!([]), "nothing was held yet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_codes_cancel_the_order_and_announce_it() {
    let (stack, _) = seeded(10).await;
    every_order_scores(&stack, 85).await;
    let intake = stack.intake();
    let (_, pending) = submit(&intake, "guess", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let id = pending["order_id"].as_str().unwrap();
    let code = stack.notifier.code_for(OrderId::parse(id).unwrap()).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let bus = stack.observe_bus().await;
    let mut last = (0, Value::Null);
    for _ in 0..5 {
        let path = format!("/orders/{id}/verify");
        let request = http_as(
            Some(customer("cust-42")),
            "POST",
            &path,
            "/orders/{id}/verify",
            &[("content-type", "application/json")],
            Some(json!({"code": wrong}).to_string()),
        );
        last = exchange(request, |r| order_intake::handle(&intake, r)).await;
    }
    assert_eq!((last.0, last.1["code"].as_str()), (409, Some("verification-failed")));
    stack.relay().await;
    one_announced(&bus, id, "OrderCancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_webhook_reaches_the_processor_through_the_stream_with_one_write_and_no_queue_call() {
    let (stack, clock, calls) = Stack::for_test_counting_calls().await;
    stack.seed(&one_warehouse(&[("TEA", 10)])).await.unwrap();
    let id = reserved_orders(&stack, 1, &order_body(&[("TEA", 2)], "Zhejiang")).await[0];
    calls.reset();
    let paid = payment_event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_1", clock.now().unix_timestamp());
    assert_eq!(deliver_payment(&stack, &paid).await, (200, json!({"status": "accepted"})));
    assert_eq!(
        calls.snapshot().into_iter().collect::<Vec<_>>(),
        [("payment-webhook DynamoDB.PutItem".to_owned(), 1)],
        "the webhook's only call stores the event"
    );
    stack.relay().await;
    let delivered = stack.receive_exactly("PaymentEventsQueue", 1).await;
    assert!(process_payments(&stack.payment_processor(), delivered).await.batch_item_failures.is_empty());
    assert_eq!(stack.store().order(id).await.unwrap().unwrap().status, OrderStatus::Paid);
}

/// Orders through several states while the bus refuses the relay's first `refused` entries.
async fn changes_while_the_bus_is_down(stack: &Stack, clock: &orderflow::clock::ManualClock) -> Vec<OrderId> {
    let ids = reserved_orders(stack, 6, &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let intake = stack.intake();
    assert_eq!(cancel_order(&intake, &ids[0].to_string()).await.0, 200);
    let payment =
        payment_event("payment.succeeded", &ids[1].to_string(), 1_990, "CNY", "p", clock.now().unix_timestamp());
    deliver_payment(stack, &payment).await;
    payment_processor::process(&stack.payment_processor(), &serde_json::from_value(payment).unwrap()).await.unwrap();
    clock.advance(Duration::minutes(31));
    sweep(&stack.expiry(), None).await.unwrap();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_while_the_bus_fails_are_all_announced_once_it_is_back_each_order_in_order() {
    let (stack, clock) = seeded(10).await;
    let ids = changes_while_the_bus_is_down(&stack, &clock).await;
    let bus = stack.observe_bus().await;
    // The bus refuses the first 40 entries it is offered, then recovers.
    let (deps, published) = relay_through(&stack, real_bus(&stack).refusing_first(40));
    let report = stack.relay_with(&deps).await;
    assert!(report.failures > 0, "the outage was felt: {report:?}");
    assert_eq!(report.sent_to_destination, 0, "and outlived: {report:?}");
    assert!(stack.drain("UnpublishedChangesQueue").await.is_empty());

    let events = bus.at_least(19).await;
    let expected: HashMap<usize, Vec<&str>> = HashMap::from([
        (0, vec!["OrderReceived", "StockReserved", "OrderCancelled"]),
        (1, vec!["OrderReceived", "StockReserved", "OrderPaid"]),
        (2, vec!["OrderReceived", "StockReserved", "OrderExpired"]),
    ]);
    for (i, id) in ids.iter().enumerate() {
        let mut seen = about(&events, &id.to_string());
        seen.sort();
        seen.dedup();
        let mut want =
            expected.get(&i).cloned().unwrap_or_else(|| vec!["OrderReceived", "StockReserved", "OrderExpired"]);
        want.sort();
        assert_eq!(seen, want, "order {i}: nothing lost");
    }
    // In order: the first time the bus took each of an order's events, their versions rise.
    let mut first_seen: Vec<(String, u64)> = Vec::new();
    for announcement in published.accepted.lock().unwrap().iter() {
        let entry = (announcement.entity_id.clone(), announcement.version.unwrap_or(0));
        if !first_seen.contains(&entry) {
            first_seen.push(entry);
        }
    }
    for id in &ids {
        let versions: Vec<u64> =
            first_seen.iter().filter(|(entity, _)| *entity == id.to_string()).map(|(_, v)| *v).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "order {id} announced out of order: {versions:?}");
        assert_eq!(versions.len(), 3, "order {id}: {versions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_dies_half_way_through_a_batch_loses_nothing_and_no_consumer_acts_twice() {
    let (stack, _) = seeded(50).await;
    let intake = stack.intake();
    for i in 0..8 {
        submit(&intake, &format!("k-{i}"), &from_own_customer(&order_body(&[("TEA", 2)], "Zhejiang"))).await;
    }
    // The first invocation publishes three events and dies.
    let (dying, _) = relay_through(&stack, real_bus(&stack).dying_after(3));
    let report = stack.relay_once_with(&dying).await;
    assert_eq!((report.failures, report.advanced), (1, 0), "the batch is not checkpointed: {report:?}");
    // The next invocations find the same records and publish them all.
    stack.relay().await;

    let announced = stack.receive_at_least("StockReservationQueue", 8).await;
    assert!(announced.records.len() >= 11, "the first three came twice: {}", announced.records.len());
    for batch in announced.records.chunks(10) {
        let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
        event.records = batch.to_vec();
        assert!(reserve(&stack.reservation(), event).await.batch_item_failures.is_empty());
    }
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved), (34, 16), "eight orders of two reserved once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_change_reaches_the_failure_queue_after_its_retries_and_the_stream_moves_on() {
    let (stack, _) = seeded(10).await;
    let intake = stack.intake();
    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, accepted) =
            submit(&intake, &format!("k-{i}"), &from_own_customer(&order_body(&[("TEA", 1)], "Zhejiang"))).await;
        ids.push(accepted["order_id"].as_str().unwrap().to_owned());
    }
    let bus = stack.observe_bus().await;
    // Every event about the second order is refused, for ever.
    let (deps, _) = relay_through(&stack, real_bus(&stack).refusing_matching(ids[1].clone()));
    let report = stack.relay_with(&deps).await;
    assert_eq!(report.sent_to_destination, 1, "{report:?}");

    let given_up = stack.drain("UnpublishedChangesQueue").await;
    assert_eq!(given_up.len(), 1);
    let record: Value = serde_json::from_str(given_up[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(record["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(record["DDBStreamBatchInfo"]["batchSize"], 1, "bisected down to the poison record: {record}");

    // Re-sent events are duplicates, recognisable by their id: count each id once.
    let distinct = |events: &[Value], id: &str| {
        let mut ids: Vec<String> = events
            .iter()
            .filter(|e| e["detail"]["order_id"] == id)
            .map(|e| e["detail"]["event_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let events = bus.events().await;
    assert_eq!(distinct(&events, &ids[0]), [format!("OrderReceived:{}:v1", ids[0])]);
    assert_eq!(
        distinct(&events, &ids[2]),
        [format!("OrderReceived:{}:v1", ids[2])],
        "the stream moved past the poison"
    );
    assert!(distinct(&events, &ids[1]).is_empty());
    // Later changes flow as usual.
    let (_, later) = submit(&intake, "later", &from_own_customer(&order_body(&[("TEA", 1)], "Zhejiang"))).await;
    let later = later["order_id"].as_str().unwrap();
    stack.relay().await;
    assert_eq!(distinct(&bus.events().await, later), [format!("OrderReceived:{later}:v1")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_approval_announces_the_order_to_reservation() {
    let (stack, _) = seeded(10).await;
    every_order_scores(&stack, 110).await;
    let (_, held) = submit(&stack.intake(), "held", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let id = held["order_id"].as_str().unwrap();
    stack.relay().await;
    assert!(stack.drain("StockReservationQueue").await.is_empty(), "held by risk: not for reservation yet");
    let path = format!("/admin/orders/{id}/approve");
    assert_eq!(staff(&stack.staff(), "POST", &path, "/admin/orders/{id}/approve", None).await.0, 200);
    stack.relay().await;
    let event = stack.receive_exactly("StockReservationQueue", 1).await;
    assert!(reserve(&stack.reservation(), event).await.batch_item_failures.is_empty());
    assert_eq!(
        stack.store().order(OrderId::parse(id).unwrap()).await.unwrap().unwrap().status,
        OrderStatus::AwaitingPayment
    );
}
