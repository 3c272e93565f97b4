//! The operations dashboard's counters, kept by the dashboard function from the bus events as
//! the Dashboard rule delivers them, and read through the staff route: per hour and channel,
//! each event counted once however often it arrives, never read from the orders.

use aws_lambda_events::event::sqs::SqsEvent;
use orderflow::clock::Clock;
use orderflow::domain::dashboard::hour_of;
use orderflow::handlers::dashboard::handle_batch;
use orderflow_tests::after_sales::delivered;
use orderflow_tests::fixtures::{
    deliver_payment, one_warehouse, order_body, payment_event, process_payment_queue, reserved_orders, staff,
};
use orderflow_tests::Stack;
use serde_json::{json, Value};

const QUEUE: &str = "DashboardQueue";

/// What the rule delivered so far, counted by the dashboard function; the messages.
async fn count_delivered(stack: &Stack) -> SqsEvent {
    stack.relay().await;
    let mut event = SqsEvent::default();
    event.records = stack.drain(QUEUE).await;
    let response = handle_batch(&stack.dashboard(), event.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    event
}

async fn figures(stack: &Stack, query: &str) -> (u16, Value) {
    let path = format!("/admin/dashboard{query}");
    staff(&stack.staff(), "GET", &path, "/admin/dashboard", None).await
}

fn channel<'a>(figures: &'a Value, name: &str) -> &'a Value {
    let channels = figures["by_channel"].as_array().unwrap();
    channels.iter().find(|c| c["channel"] == name).unwrap_or_else(|| panic!("no {name} in {figures}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_orders_is_counted_once_per_event_by_hour_and_channel() {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    let start = clock.now();
    // An app order paid, shipped and delivered an hour after the courier took it; a web order
    // reserved and never paid; a payment for an order that is not ours.
    delivered(&stack, &clock, 1).await;
    let mut web = order_body(&[("TEA", 2)], "Zhejiang");
    web["channel"] = json!("web");
    reserved_orders(&stack, 1, &web).await;
    let foreign =
        payment_event("payment.succeeded", "ORDER-ELSEWHERE", 100, "CNY", "pay_x", clock.now().unix_timestamp());
    deliver_payment(&stack, &foreign).await;
    process_payment_queue(&stack, &stack.payment_processor()).await;
    let counted = count_delivered(&stack).await;
    assert!(counted.records.len() >= 8, "the rule delivered the counted events: {}", counted.records.len());

    let query = format!("?from={}&to={}", start.date(), clock.now().date());
    let (status, before) = figures(&stack, &query).await;
    assert_eq!(status, 200, "{before}");
    // Every message again, as SQS redelivers: nothing more is counted.
    assert!(handle_batch(&stack.dashboard(), counted).await.batch_item_failures.is_empty());
    let (_, after) = figures(&stack, &query).await;
    assert_eq!(after, before, "a repeated event adds nothing");

    let app = &channel(&after, "app")["counts"];
    assert_eq!(
        json!([app["orders_received"], app["orders_reserved"], app["orders_paid"], app["payments_succeeded"]]),
        json!([1, 1, 1, 1])
    );
    assert_eq!(json!([app["parcels_dispatched"], app["parcels_delivered"], app["orders_delivered"]]), json!([1, 1, 1]));
    assert_eq!(app["delivery_seconds"], 3_600, "an hour from the hand-over to the delivery");
    assert_eq!(channel(&after, "app")["rates"]["conversion"], 1.0);
    assert_eq!(channel(&after, "app")["rates"]["average_delivery_hours"], 1.0);
    let web = &channel(&after, "web")["counts"];
    assert_eq!(json!([web["orders_received"], web["orders_reserved"], web.get("orders_paid")]), json!([1, 1, null]));
    assert_eq!(channel(&after, "web")["rates"]["conversion"], 0.0);
    assert_eq!(channel(&after, "unknown")["counts"]["payments_succeeded"], 1, "the payment for no order of ours");
    assert_eq!(after["total"]["counts"]["orders_received"], 2);
    assert_eq!(after["total"]["rates"]["conversion"], 0.5);
    let hours: Vec<&str> = after["hours"].as_array().unwrap().iter().map(|h| h["hour"].as_str().unwrap()).collect();
    assert!(hours.iter().all(|h| (hour_of(start).as_str()..=hour_of(clock.now()).as_str()).contains(h)), "{hours:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_figures_of_other_days_are_not_counted_in_and_a_bad_range_is_refused() {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 10)])).await.unwrap();
    reserved_orders(&stack, 2, &order_body(&[("TEA", 1)], "Zhejiang")).await;
    count_delivered(&stack).await;
    let today = clock.now().date();
    let (status, today_figures) = figures(&stack, "").await;
    assert_eq!(
        (status, today_figures["total"]["counts"]["orders_received"].as_i64()),
        (200, Some(2)),
        "today by default"
    );
    let yesterday = today.previous_day().unwrap();
    let (_, before) = figures(&stack, &format!("?from={yesterday}&to={yesterday}")).await;
    assert_eq!(
        (before["hours"].as_array().map(Vec::len), before["total"]["rates"]["conversion"].clone()),
        (Some(0), Value::Null)
    );
    for query in [
        format!("?from={today}&to={yesterday}"),
        format!("?from={}&to={today}", today - time::Duration::days(62)),
        "?from=2026-13-01".to_owned(),
        "?to=%2B2026-01-01".to_owned(),
    ] {
        let (status, problem) = figures(&stack, &query).await;
        assert_eq!(
            (status, problem["code"].as_str().map(|c| c == "range-invalid" || c == "day-malformed")),
            (400, Some(true)),
            "{query}: {problem}"
        );
    }
}
