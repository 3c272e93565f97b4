//! The operations dashboard's counters, kept by the dashboard function from the bus events as
//! the Dashboard rule delivers them, and read through the staff route: per hour and channel,
//! each event counted once however often it arrives, never read from the orders.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use orderflow::clock::Clock;
use orderflow::domain::dashboard::hour_of;
use orderflow::handlers::dashboard::handle_batch;
use orderflow::handlers::logistics::poller::{run, PollerSettings};
use orderflow_tests::after_sales::delivered;
use orderflow_tests::fixtures::{
    deliver_payment, every_order_scores, one_warehouse, order_body, payment_event, process_payment_queue,
    reserved_orders, staff, submit,
};
use orderflow_tests::parcels::{self, customer_service, handed_over};
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use time::Duration;

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

fn web_counts(figures: &Value) -> &Value {
    &channel(figures, "web")["counts"]
}

fn channel<'a>(figures: &'a Value, name: &str) -> &'a Value {
    let channels = figures["by_channel"].as_array().unwrap();
    channels.iter().find(|c| c["channel"] == name).unwrap_or_else(|| panic!("no {name} in {figures}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_orders_is_counted_once_per_event_by_hour_and_channel() {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
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

    let query = format!("?from={}&to={}", clock.now().date().previous_day().unwrap(), clock.now().date());
    let (status, before) = figures(&stack, &query).await;
    assert_eq!(status, 200, "{before}");
    // Every message again, as SQS redelivers: nothing more is counted.
    let counted_again = counted.clone();
    assert!(handle_batch(&stack.dashboard(), counted).await.batch_item_failures.is_empty());
    let (_, after) = figures(&stack, &query).await;
    assert_eq!(after, before, "a repeated event adds nothing");

    let app = &channel(&after, "app")["counts"];
    assert_eq!(
        json!([app["orders_received"], app["orders_reserved"], app["orders_paid"], app["payments_succeeded"]]),
        json!([1, 1, 1, 1])
    );
    assert_eq!(json!([app["parcels_dispatched"], app["parcels_delivered"], app["orders_delivered"]]), json!([1, 1, 1]));
    assert_eq!(
        json!([app["parcels_timed"], app["delivery_seconds"]]),
        json!([1, 3_600]),
        "an hour from hand-over to delivery"
    );
    assert_eq!(app["parcels_delivered_on_time"], 1, "well before the promised day");
    // Each stage the app order went through was timed once, the web order's reservation too.
    let stages = ["reserving_orders", "awaiting_payment_orders", "fulfilling_orders", "in_transit_orders"];
    assert_eq!(stages.map(|s| app[s].clone()), [json!(1), json!(1), json!(1), json!(1)], "{app}");
    assert_eq!(stages.map(|s| web_counts(&after)[s].clone()), [json!(1), Value::Null, Value::Null, Value::Null]);
    let hours_in = &channel(&after, "app")["rates"]["hours_in_stage"];
    assert!(["reserving", "awaiting_payment", "fulfilling", "in_transit"]
        .iter()
        .all(|s| hours_in[s].as_f64() >= Some(0.0)));
    assert_eq!(channel(&after, "app")["rates"]["conversion"], 1.0);
    assert_eq!(channel(&after, "app")["rates"]["average_delivery_hours"], 1.0);
    let web = &channel(&after, "web")["counts"];
    assert_eq!(json!([web["orders_received"], web["orders_reserved"], web.get("orders_paid")]), json!([1, 1, null]));
    assert_eq!(channel(&after, "web")["rates"]["conversion"], 0.0);
    assert_eq!(channel(&after, "(unknown)")["counts"]["payments_succeeded"], 1, "the payment for no order of ours");
    assert_eq!(after["total"]["counts"]["orders_received"], 2);
    assert_eq!(after["total"]["rates"]["conversion"], 0.5);
    // Each event counts in the hour the bus took it, whenever it was processed.
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let on_bus: BTreeSet<String> = (counted_again.records.iter())
        .map(|m| {
            serde_json::from_str::<Value>(m.body.as_deref().unwrap()).unwrap()["time"].as_str().unwrap().to_owned()
        })
        .map(|t| hour_of(time::OffsetDateTime::parse(&t, rfc3339).unwrap()))
        .collect();
    let hours: BTreeSet<String> =
        after["hours"].as_array().unwrap().iter().map(|h| h["hour"].as_str().unwrap().to_owned()).collect();
    assert_eq!(hours, on_bus);
    let days: i64 =
        after["days"].as_array().unwrap().iter().map(|d| d["counts"]["orders_received"].as_i64().unwrap_or(0)).sum();
    assert_eq!(days, 2, "the days sum the hours");
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
    let (status, longest) = figures(&stack, &format!("?from={}&to={today}", today - Duration::days(61))).await;
    assert_eq!((status, longest["total"]["counts"]["orders_received"].as_i64()), (200, Some(2)), "62 days");
    let (days, hours) = (longest["days"].as_array().unwrap().len(), longest["hours"].as_array().unwrap().len());
    assert_eq!((days, hours), (1, 0), "by day only beyond a week");
    for (query, code) in [
        (format!("?from={today}&to={yesterday}"), "range-invalid"),
        (format!("?from={}&to={today}", today - Duration::days(62)), "range-invalid"),
        ("?from=2026-13-01".to_owned(), "day-malformed"),
        ("?to=%2B2026-01-01".to_owned(), "day-malformed"),
    ] {
        let (status, problem) = figures(&stack, &query).await;
        assert_eq!((status, problem["code"].as_str()), (400, Some(code)), "{query}: {problem}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_events_on_one_hour_is_all_counted_and_a_duplicate_at_the_same_moment_once() {
    use orderflow::domain::dashboard::Metric;
    use orderflow::store::Counted;
    let (stack, clock) = Stack::for_test().await;
    let store = stack.store();
    let (now, hour) = (clock.now(), hour_of(clock.now()));
    let one = [(Metric::OrdersReceived, 1)];
    let burst = (0..40).map(|i| {
        let (store, hour) = (store.clone(), hour.clone());
        async move { store.count_event(&format!("OrderReceived:{i}:v1"), &hour, "app", &one, now).await.unwrap() }
    });
    let counted = futures::future::join_all(burst).await;
    assert!(counted.iter().all(|c| *c == Counted::Now), "{counted:?}");
    let twins = (0..5).map(|_| store.count_event("OrderPaid:twin:v1", &hour, "app", &[(Metric::OrdersPaid, 1)], now));
    let twins = futures::future::join_all(twins).await;
    let now_counted = twins.iter().filter(|c| matches!(c, Ok(Counted::Now))).count();
    assert_eq!(now_counted, 1, "{twins:?}");
    assert!(
        twins.iter().all(|c| matches!(c, Ok(Counted::Now | Counted::Before))),
        "the others see the mark: {twins:?}"
    );
    let rows = store.dashboard_counters(&hour, &hour).await.unwrap();
    assert_eq!((rows.len(), rows[0].counts[&Metric::OrdersReceived], rows[0].counts[&Metric::OrdersPaid]), (1, 40, 1));
}

/// A bus event of `detail_type` about `order`, as the Dashboard rule delivers it, taken by the bus
/// at `at`.
fn on_bus(detail_type: &str, order: &str, at: time::OffsetDateTime) -> SqsMessage {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let detail = json!({"event_id": format!("{detail_type}:{order}:v1"), "order_id": order, "channel": "app"});
    let envelope = json!({"version": "0", "id": ulid::Ulid::new().to_string(), "detail-type": detail_type,
        "source": "orderflow.orders", "time": at.format(rfc3339).unwrap(), "detail": detail});
    let mut message = SqsMessage::default();
    message.message_id = Some(ulid::Ulid::new().to_string());
    message.body = Some(envelope.to_string());
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_stage_is_timed_from_the_bus_times_once_in_whatever_order_its_events_arrive() {
    let (stack, clock) = Stack::for_test().await;
    let day = clock.now().date() - Duration::days(2);
    let paid_at = day.with_hms(10, 15, 0).unwrap().assume_utc();
    let order = orderflow::domain::OrderId::generate().to_string();
    let (paid, shipped, delivered) = (
        on_bus("OrderPaid", &order, paid_at),
        on_bus("OrderShipped", &order, paid_at + Duration::hours(2)),
        on_bus("OrderDelivered", &order, paid_at + Duration::hours(3)),
    );
    // A copy of the shipment's event republished three hours later keeps the first time seen.
    let republished = on_bus("OrderShipped", &order, paid_at + Duration::hours(5));
    // The middle first, its late copy, then the last and the first, then all again, as a redrive would.
    let batches = [
        vec![shipped.clone()],
        vec![republished],
        vec![delivered.clone(), paid.clone()],
        vec![paid, shipped, delivered],
    ];
    for batch in batches {
        let mut event = SqsEvent::default();
        event.records = batch;
        assert!(handle_batch(&stack.dashboard(), event).await.batch_item_failures.is_empty());
    }
    let (_, figures) = figures(&stack, &format!("?from={day}&to={day}")).await;
    let hour = |h: &str| {
        let rows = figures["hours"].as_array().unwrap();
        rows.iter().find(|r| r["hour"] == format!("{day}T{h}")).map(|r| r["counts"].clone()).unwrap_or_default()
    };
    let stage = |counts: &Value, name: &str| {
        (counts[format!("{name}_orders")].clone(), counts[format!("{name}_seconds")].clone())
    };
    assert_eq!(stage(&hour("12"), "fulfilling"), (json!(1), json!(7_200)), "paid to shipped, left at 12:15: {figures}");
    assert_eq!(stage(&hour("13"), "in_transit"), (json!(1), json!(3_600)), "shipped to delivered, left at 13:15");
    assert_eq!(
        stage(&figures["total"]["counts"], "awaiting_payment"),
        (Value::Null, Value::Null),
        "never entered here"
    );
    let hours_in = &figures["total"]["rates"]["hours_in_stage"];
    assert_eq!((hours_in["fulfilling"].as_f64(), hours_in["in_transit"].as_f64()), (Some(2.0), Some(1.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_stands_now_is_the_orders_in_review_and_the_alerts_open() {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 10)])).await.unwrap();
    stack.relay().await;
    // A parcel the courier has not collected 72 hours after hand-over raises an alert.
    let parcel = handed_over(&stack, 1).await;
    let handed_at = stack.clock.now();
    let poller = stack.logistics_as("tracking-poller");
    clock.set(handed_at + Duration::hours(72));
    run(&poller, &PollerSettings::default()).await.unwrap();
    // One order held for review (score 110), one frozen (score 130).
    let intake = stack.intake();
    every_order_scores(&stack, 110).await;
    let (_, held) = submit(&intake, "held", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    every_order_scores(&stack, 130).await;
    clock.advance(Duration::seconds(61)); // past the rules' cache
    let (_, frozen) = submit(&intake, "frozen", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    assert_eq!((held["status"].as_str(), frozen["status"].as_str()), (Some("PENDING_REVIEW"), Some("PENDING_REVIEW")));
    let (_, alerts) =
        parcels::call(&stack, &customer_service(), "GET", "/admin/parcel-alerts", "/admin/parcel-alerts", None).await;
    assert_eq!(alerts["alerts"].as_array().map(Vec::len), Some(1), "{alerts}");
    assert_eq!(figures_now(&stack).await, json!({"review_queue": 2, "open_alerts": 1}));

    let id = held["order_id"].as_str().unwrap();
    let path = format!("/admin/orders/{id}/approve");
    assert_eq!(staff(&stack.staff(), "POST", &path, "/admin/orders/{id}/approve", None).await.0, 200);
    // The pickup clears the alert.
    stack.courier.advance(&parcel.waybill, handed_at + Duration::hours(73));
    clock.set(handed_at + Duration::hours(75));
    run(&poller, &PollerSettings::default()).await.unwrap();
    assert_eq!(figures_now(&stack).await, json!({"review_queue": 1, "open_alerts": 0}), "one decided, one cleared");
}

async fn figures_now(stack: &Stack) -> Value {
    figures(stack, "").await.1["now"].clone()
}

#[test]
fn the_dashboard_rule_sends_exactly_the_events_the_dashboard_counts() {
    let template = orderflow_tests::translate::repo_template().unwrap();
    let rule = &template["Resources"]["DashboardRule"]["Properties"];
    let sent: BTreeSet<&str> =
        rule["EventPattern"]["detail-type"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let counted: BTreeSet<&str> = orderflow::domain::dashboard::COUNTED_EVENTS.into_iter().collect();
    assert_eq!(sent, counted);
    assert_eq!(rule["Targets"][0]["Arn"]["Fn::GetAtt"][0], "DashboardQueue");
}
