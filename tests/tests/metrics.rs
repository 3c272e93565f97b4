//! The business metrics, as CloudWatch would read them: Embedded Metric Format documents written
//! by the relay and payment processing, parsed back and summed by metric and dimensions.
//!
//! One test in this binary on purpose: the recorder is global to the process, so another test
//! running beside it would add to the counts.

use orderflow::clock::Clock;
use orderflow::domain::OrderStatus;
use orderflow::telemetry::metrics;
use orderflow_tests::fixtures::{
    deliver_payment, one_warehouse, order_body, payment_event, process_payment_queue, reserved_orders,
};
use orderflow_tests::Stack;
use serde_json::Value;
use std::collections::BTreeMap;

/// `(metric, dimensions as "Name=Value,…")` → summed value, from EMF lines; panics on a line that
/// is not a valid EMF document of the Orderflow namespace.
fn parse(emf: &str) -> BTreeMap<(String, String), f64> {
    let mut sums = BTreeMap::new();
    for line in emf.lines() {
        let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(doc["_aws"]["Timestamp"].as_u64().is_some(), "a timestamp in ms: {line}");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], metrics::NAMESPACE);
        let names: Vec<&str> =
            directive["Dimensions"][0].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
        let dimensions: Vec<String> = names
            .iter()
            .map(|n| format!("{n}={}", doc[*n].as_str().expect("a dimension's value at the root")))
            .collect();
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            let value = doc[name].as_f64().unwrap_or_else(|| panic!("{name}'s value at the root: {line}"));
            *sums.entry((name.to_owned(), dimensions.join(","))).or_insert(0.0) += value;
        }
    }
    sums
}

fn count(sums: &BTreeMap<(String, String), f64>, metric: &str, dimensions: &str) -> f64 {
    sums.get(&(metric.to_owned(), dimensions.to_owned())).copied().unwrap_or(0.0)
}

fn flushed() -> String {
    let mut out = Vec::new();
    metrics::flush_to(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_and_payment_processing_count_what_happened_in_emf_documents() {
    metrics::init().unwrap();
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 3)])).await.unwrap();
    // Two orders of 2 TEA at 19.90 from a stock of 3: the first is reserved, the second short.
    let ids = reserved_orders(&stack, 2, &order_body(&[("TEA", 2)], "Zhejiang")).await;
    let status = |id| {
        let store = stack.store();
        async move { store.order(id).await.unwrap().unwrap().status }
    };
    assert_eq!((status(ids[0]).await, status(ids[1]).await), (OrderStatus::AwaitingPayment, OrderStatus::Rejected));
    let now = clock.now().unix_timestamp();
    let order = ids[0].to_string();
    let paid = payment_event("payment.succeeded", &order, 3980, "CNY", "pay_1", now);
    let again = payment_event("payment.succeeded", &order, 3980, "CNY", "pay_2", now);
    assert_eq!(deliver_payment(&stack, &paid).await.0, 200);
    assert_eq!(deliver_payment(&stack, &paid).await.0, 200, "a repeat delivery, stored once");
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(deliver_payment(&stack, &again).await.0, 200);
    process_payment_queue(&stack, &stack.payment_processor()).await;
    stack.relay().await;

    let sums = parse(&flushed());
    let expected = [
        ("OrdersReceived", "", 2.0),
        ("OrdersReserved", "", 1.0),
        ("OrdersRejected", "Reason=STOCK_SHORT", 1.0),
        ("OrdersPaid", "", 1.0),
        ("PaymentsResolved", "Outcome=Paid", 1.0),
        ("PaymentsResolved", "Outcome=DuplicateCharge", 1.0),
        ("EventsRelayed", "DetailType=OrderReceived", 2.0),
        ("EventsRelayed", "DetailType=PaymentEventReceived", 2.0),
        ("EventsRelayed", "DetailType=RefundRequested", 1.0),
    ];
    for (metric, dimensions, value) in expected {
        assert_eq!(count(&sums, metric, dimensions), value, "{metric} {dimensions} in {sums:?}");
    }
    assert_eq!(count(&sums, "OrdersExpired", ""), 0.0);
    assert!(sums.keys().all(|(metric, _)| metric != "AlertsRaised"), "nothing was stuck: {sums:?}");
    assert_eq!(flushed(), "", "a flush hands each count out once; an idle one writes nothing");
}
