//! Payment callbacks against the emulators: signatures, the inbox, and every path of the
//! processor, including ten concurrent deliveries of one event. The webhook only stores; the
//! stream carries each stored event to the processor's queue (PaymentEventReceived), and what a
//! resolution announces comes from the stream as well.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use orderflow::clock::Clock;
use orderflow::domain::{OrderId, OrderStatus};
use orderflow::handlers::hold_expiry::sweep;
use orderflow::handlers::payment_processor::handle_batch;
use orderflow::store::HoldStatus;
use orderflow_tests::fixtures::{
    deliver_payment as deliver, deliver_payment_signed as deliver_signed, exchange, http, one_warehouse, order_body,
    payment_event as event, process_payment_queue, reserved_orders, staff,
};
use orderflow_tests::outbox::{detail_types, BusObserver};
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::sync::Arc;
use time::Duration;

const QUEUE: &str = "PaymentEventsQueue";

async fn seeded(units: i64) -> (Stack, Arc<orderflow::clock::ManualClock>) {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", units)])).await.unwrap();
    (stack, clock)
}

/// What payment processing announced on the bus, in arrival order: the order's and the
/// payment's outcomes, not the events that led up to them.
async fn outcomes(bus: &BusObserver) -> Vec<String> {
    let mut types = detail_types(&bus.events().await);
    types.retain(|t| !matches!(t.as_str(), "OrderReceived" | "StockReserved" | "PaymentEventReceived"));
    types.sort();
    types
}

async fn order(stack: &Stack, id: OrderId) -> orderflow::domain::Order {
    stack.store().order(id).await.unwrap().unwrap()
}

/// A reserved order of 2 TEA at 19.90: total 3980 CNY.
async fn one_reserved(stack: &Stack) -> OrderId {
    reserved_orders(stack, 1, &order_body(&[("TEA", 2)], "Zhejiang")).await[0]
}

async fn day_records(stack: &Stack) -> usize {
    stack.store().payments_of_day(&stack.clock.now().date().to_string()).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_wrongly_signed_and_stale_callbacks_are_refused_and_nothing_is_stored() {
    let (stack, clock) = seeded(10).await;
    let id = one_reserved(&stack).await;
    let paid = event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_1", clock.now().unix_timestamp());
    let now = clock.now().unix_timestamp();
    let secret = Stack::webhook_secret();

    let (status, problem) = deliver_signed(&stack, &paid, b"not the provider", now).await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("signature-invalid")));
    // A timestamp outside the tolerance is a malformed callback, however far out (no overflow).
    for (signed_at, when) in
        [(now - 301, "too old"), (now + 301, "from the future"), (i64::MIN, "i64::MIN"), (i64::MAX, "i64::MAX")]
    {
        let (status, problem) = deliver_signed(&stack, &paid, secret.as_bytes(), signed_at).await;
        assert_eq!((status, problem["code"].as_str()), (400, Some("signature-timestamp-out-of-range")), "{when}");
    }
    let unsigned = http("POST", "/payments/webhook", "/payments/webhook", &[], Some(paid.to_string()));
    let (status, problem) = exchange(unsigned, |r| async {
        orderflow::handlers::payment_webhook::handle(&stack.payment_webhook(), r).await
    })
    .await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("signature-missing")));

    assert_eq!(day_records(&stack).await, 0, "nothing stored");
    stack.relay().await;
    assert!(stack.drain(QUEUE).await.is_empty(), "nothing reached the processor");
    assert_eq!(order(&stack, id).await.status, OrderStatus::AwaitingPayment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_malformed_body_is_a_400() {
    let (stack, clock) = seeded(10).await;
    let (status, problem) = deliver(&stack, &json!({"id": "evt_1", "type": "payment.refunded"})).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("body-invalid")));
    let bad_id = event("payment.succeeded", "x", 1, "CNY", "pay with spaces", clock.now().unix_timestamp());
    let (status, problem) = deliver(&stack, &bad_id).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("data.payment_id")));
    assert_eq!(day_records(&stack).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exact_payment_pays_the_order_and_a_repeat_delivery_is_a_no_op() {
    let (stack, clock) = seeded(10).await;
    let id = one_reserved(&stack).await;
    let paid = event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_1", clock.now().unix_timestamp());
    assert_eq!(deliver(&stack, &paid).await, (200, json!({"status": "accepted"})));
    assert_eq!(deliver(&stack, &paid).await, (200, json!({"status": "duplicate"})));
    let bus = stack.observe_bus().await;
    assert_eq!(process_payment_queue(&stack, &stack.payment_processor()).await, 1, "the duplicate went nowhere");

    let o = order(&stack, id).await;
    assert_eq!((o.status, o.payment_id.as_deref()), (OrderStatus::Paid, Some("pay_1")));
    assert_eq!(stack.store().hold(id).await.unwrap().unwrap().hold_status, HoldStatus::Committed);
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved, tea.sold), (8, 0, 2));
    assert_eq!(outcomes(&bus).await, ["OrderPaid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_deliveries_of_one_event_change_the_order_once_and_announce_once() {
    let (stack, clock) = seeded(10).await;
    let id = one_reserved(&stack).await;
    let paid = event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_1", clock.now().unix_timestamp());
    assert_eq!(deliver(&stack, &paid).await.0, 200);
    stack.relay().await;
    let delivered = stack.receive_exactly(QUEUE, 1).await.records.remove(0);
    let bus = stack.observe_bus().await;
    let deps = stack.payment_processor();
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let runs = (0..10).map(|i| {
        let (deps, barrier) = (deps.clone(), barrier.clone());
        let mut message: SqsMessage = delivered.clone();
        message.message_id = Some(format!("copy-{i}"));
        tokio::spawn(async move {
            let mut event = SqsEvent::default();
            event.records = vec![message];
            barrier.wait().await;
            handle_batch(&deps, event).await
        })
    });
    for response in futures::future::join_all(runs).await {
        assert!(response.unwrap().batch_item_failures.is_empty());
    }
    stack.relay().await;
    assert_eq!(outcomes(&bus).await, ["OrderPaid"], "one announcement");
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.reserved, tea.sold), (0, 2), "one state change");
    assert_eq!(order(&stack, id).await.status, OrderStatus::Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_amount_or_currency_flags_the_order_and_holds_its_stock_for_review() {
    let (stack, clock) = seeded(10).await;
    let ids = reserved_orders(&stack, 2, &order_body(&[("TEA", 2)], "Zhejiang")).await;
    let bus = stack.observe_bus().await;
    deliver(
        &stack,
        &event("payment.succeeded", &ids[0].to_string(), 3900, "CNY", "pay_a", clock.now().unix_timestamp()),
    )
    .await;
    deliver(
        &stack,
        &event("payment.succeeded", &ids[1].to_string(), 3980, "USD", "pay_b", clock.now().unix_timestamp()),
    )
    .await;
    process_payment_queue(&stack, &stack.payment_processor()).await;
    for id in &ids {
        assert_eq!(order(&stack, *id).await.status, OrderStatus::PaymentMismatch);
    }
    assert_eq!(outcomes(&bus).await, ["PaymentMismatch", "PaymentMismatch"]);
    clock.advance(Duration::hours(2));
    sweep(&stack.expiry(), None).await.unwrap();
    assert_eq!(
        order(&stack, ids[0]).await.status,
        OrderStatus::PaymentMismatch,
        "the sweeper leaves flagged orders to staff"
    );
    assert_eq!(stack.stock("TEA", "HZ").await.reserved, 4, "and their units held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_payment_is_recorded_and_the_customer_can_pay_again() {
    let (stack, clock) = seeded(10).await;
    let id = one_reserved(&stack).await;
    let bus = stack.observe_bus().await;
    let deps = stack.payment_processor();
    let mut failed = event("payment.failed", &id.to_string(), 3980, "CNY", "pay_1", clock.now().unix_timestamp());
    failed["data"]["failure_reason"] = json!("card_declined");
    deliver(&stack, &failed).await;
    process_payment_queue(&stack, &deps).await;
    let o = order(&stack, id).await;
    assert_eq!((o.status, o.last_payment_failure.as_deref()), (OrderStatus::AwaitingPayment, Some("card_declined")));
    assert_eq!(stack.stock("TEA", "HZ").await.reserved, 2, "the hold stays");

    deliver(&stack, &event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_2", clock.now().unix_timestamp()))
        .await;
    process_payment_queue(&stack, &deps).await;
    assert_eq!(order(&stack, id).await.status, OrderStatus::Paid);
    assert_eq!(outcomes(&bus).await, ["OrderPaid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_payment_takes_the_stock_again_when_it_is_still_there() {
    let (stack, clock) = seeded(10).await;
    let id = one_reserved(&stack).await;
    clock.advance(Duration::minutes(31));
    sweep(&stack.expiry(), None).await.unwrap();
    assert_eq!(order(&stack, id).await.status, OrderStatus::Expired);
    let bus = stack.observe_bus().await;
    deliver(&stack, &event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_1", clock.now().unix_timestamp()))
        .await;
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(order(&stack, id).await.status, OrderStatus::Paid);
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved, tea.sold), (8, 0, 2));
    let events = bus.events().await;
    let paid: Vec<&Value> = events.iter().filter(|e| e["detail-type"] == "OrderPaid").collect();
    assert_eq!(paid.len(), 1, "{events:?}");
    assert_eq!(paid[0]["detail"]["late"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_payment_with_its_stock_gone_requires_a_refund() {
    let (stack, clock) = seeded(2).await;
    let id = one_reserved(&stack).await;
    clock.advance(Duration::minutes(31));
    sweep(&stack.expiry(), None).await.unwrap();
    reserved_orders(&stack, 1, &order_body(&[("TEA", 2)], "Zhejiang")).await; // someone else takes the units
    let bus = stack.observe_bus().await;
    deliver(&stack, &event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_1", clock.now().unix_timestamp()))
        .await;
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(order(&stack, id).await.status, OrderStatus::RefundRequired);
    assert_eq!(outcomes(&bus).await, ["OrderExpired", "RefundRequested"], "the expiry, then the refund");
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved, tea.sold), (0, 2, 0), "nothing oversold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_charge_for_a_paid_order_requests_a_refund_and_a_repeat_of_the_same_payment_does_not() {
    let (stack, clock) = seeded(10).await;
    let id = one_reserved(&stack).await;
    let bus = stack.observe_bus().await;
    let deps = stack.payment_processor();
    let now = clock.now().unix_timestamp();
    deliver(&stack, &event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_1", now)).await;
    process_payment_queue(&stack, &deps).await;
    // The provider reports the same payment again under a new event id: nothing to do.
    deliver(&stack, &event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_1", now)).await;
    process_payment_queue(&stack, &deps).await;
    // A second, different payment: the customer was charged twice.
    deliver(&stack, &event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_2", now)).await;
    process_payment_queue(&stack, &deps).await;
    assert_eq!(outcomes(&bus).await, ["OrderPaid", "RefundRequested"]);
    assert_eq!(stack.stock("TEA", "HZ").await.sold, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_for_an_unknown_order_is_kept_and_shown_in_reconciliation() {
    let (stack, clock) = seeded(10).await;
    let id = one_reserved(&stack).await;
    let deps = stack.payment_processor();
    let now = clock.now().unix_timestamp();
    deliver(&stack, &event("payment.succeeded", "ORDER-FROM-ELSEWHERE", 500, "CNY", "pay_x", now)).await;
    deliver(&stack, &event("payment.succeeded", &id.to_string(), 3980, "CNY", "pay_1", now)).await;
    let mut failed = event("payment.failed", &id.to_string(), 3980, "CNY", "pay_0", now);
    failed["data"]["failure_reason"] = json!("insufficient_funds");
    deliver(&stack, &failed).await;
    process_payment_queue(&stack, &deps).await;

    let day = clock.now().date().to_string();
    let (status, report) = staff(
        &stack.staff(),
        "GET",
        &format!("/admin/payments/reconciliation?day={day}"),
        "/admin/payments/reconciliation",
        None,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["events"].as_u64(), report["paid"].as_u64(), report["unknown_orders"].as_u64()),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(report["unmatched"][0]["payment_id"], "pay_x");
    assert!(report["success_rate"].as_f64().is_some());
    // A signed year parses as the same day, and the report names that day as the document says.
    let route = "/admin/payments/reconciliation";
    let (status, signed) =
        staff(&stack.staff(), "GET", &format!("/admin/payments/reconciliation?day=%2B{day}"), route, None).await;
    assert_eq!((status, signed["day"].as_str(), signed["events"].as_u64()), (200, Some(day.as_str()), Some(3)));
    let (status, problem) = staff(
        &stack.staff(),
        "GET",
        "/admin/payments/reconciliation?day=yesterday",
        "/admin/payments/reconciliation",
        None,
    )
    .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("day")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mock_provider_pays_an_order_through_the_local_stack() {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 5)])).await.unwrap();
    let running = orderflow_tests::local::run(Arc::new(stack), Default::default()).await.unwrap();
    let api = orderflow_tests::local::ApiClient::new(running.api_url());
    let token = api.bearer(json!({"kind": "customer", "customer_id": "cust-42"})).await.unwrap();
    let headers = [("content-type", "application/json"), ("idempotency-key", "mock-pay"), ("authorization", &token)];
    let mut body = order_body(&[("TEA", 1)], "Zhejiang");
    body.as_object_mut().unwrap().remove("customer_id");
    let (_, accepted) = api.call("POST", "/orders", &headers, Some(body.to_string())).await.unwrap();
    let location = accepted["location"].as_str().unwrap().to_owned();
    let wait_for = |status: &'static str| {
        let (api, location, token) = (api.clone(), location.clone(), token.clone());
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let (_, order) = api.call("GET", &location, &[("authorization", &token)], None).await.unwrap();
                if order["status"] == status || std::time::Instant::now() > deadline {
                    return order;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(wait_for("AWAITING_PAYMENT").await["status"], "AWAITING_PAYMENT");
    let (status, paid) = api
        .call("POST", "/_mock-provider/payments", &[], Some(json!({"order_id": accepted["order_id"]}).to_string()))
        .await
        .unwrap();
    assert_eq!((status, paid["webhook"]["status"].as_u64()), (200, Some(200)), "{paid}");
    assert_eq!(wait_for("PAID").await["status"], "PAID");
    running.stop().await;
}

#[test]
fn the_sample_payment_events_are_what_the_functions_read() {
    let root = orderflow_tests::emulators::repo_root().join("events");
    let payload: orderflow::domain::payment::PaymentEvent =
        serde_json::from_str(&std::fs::read_to_string(root.join("payment-succeeded.json")).unwrap()).unwrap();
    assert!(payload.validate().is_ok());
    let sqs: SqsEvent =
        serde_json::from_str(&std::fs::read_to_string(root.join("payment-events-sqs.json")).unwrap()).unwrap();
    let envelope: Value = serde_json::from_str(sqs.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(envelope["detail-type"], "PaymentEventReceived");
    let carried: orderflow::domain::payment::PaymentEvent = serde_json::from_value(envelope["detail"].clone()).unwrap();
    assert_eq!(carried, payload);
}
