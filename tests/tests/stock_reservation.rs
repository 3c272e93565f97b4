//! Stock reservation against the emulators: allocation, all-or-nothing, redelivery, cancel,
//! and concurrent orders that try to oversell.

use aws_lambda_events::event::sqs::SqsEvent;
use orderflow::domain::OrderId;
use orderflow::handlers::stock_reservation::handle_batch;
use orderflow_tests::fixtures::{
    cancel_order, from_own_customer, get_order, order_body, staff, submit, TEST_PRICE_MINOR,
};
use orderflow_tests::{Seed, Stack};
use serde_json::{json, Value};

const QUEUE: &str = "StockReservationQueue";

fn seed(stock: &[(&str, &str, i64)]) -> Seed {
    let seed: Seed = serde_json::from_value(json!({
        "warehouses": [
            {"warehouse_id": "HZ", "name": "Hangzhou", "regions": ["Zhejiang"], "neighbours": ["SH"], "priority": 2},
            {"warehouse_id": "SH", "name": "Shanghai", "regions": ["Shanghai"], "neighbours": ["HZ"], "priority": 1},
            {"warehouse_id": "GZ", "name": "Guangzhou", "regions": ["Guangdong"], "priority": 3}
        ],
        "stock": stock.iter().map(|(sku, wh, n)| json!({"sku": sku, "warehouse_id": wh, "available": n})).collect::<Vec<_>>()
    }))
    .unwrap();
    seed.priced_at(TEST_PRICE_MINOR, &[])
}

async fn seeded(stock: &[(&str, &str, i64)]) -> Stack {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&seed(stock)).await.unwrap();
    stack
}

/// Submit an order and run reservation on what intake published; the order's view after.
async fn order_and_reserve(stack: &Stack, key: &str, lines: &[(&str, i64)], province: &str) -> Value {
    let intake = stack.intake();
    let (status, accepted) = submit(&intake, key, &order_body(lines, province)).await;
    assert_eq!(status, 202, "{accepted}");
    stack.relay().await;
    let event = stack.receive_exactly(QUEUE, 1).await;
    let response = handle_batch(&stack.reservation(), event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    stack.delete(QUEUE, &event.records).await;
    get_order(&intake, accepted["order_id"].as_str().unwrap()).await.1
}

fn warehouses(order: &Value) -> Vec<&str> {
    order["lines"].as_array().unwrap().iter().map(|l| l["warehouse"].as_str().unwrap_or("-")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_order_is_reserved_in_its_regional_warehouse_with_a_hold() {
    let stack = seeded(&[("TEA", "HZ", 10), ("CUP", "HZ", 5), ("TEA", "SH", 10), ("CUP", "SH", 5)]).await;
    let order = order_and_reserve(&stack, "k", &[("TEA", 3), ("CUP", 1)], "Zhejiang").await;
    assert_eq!(order["status"], "AWAITING_PAYMENT");
    assert_eq!(warehouses(&order), ["HZ", "HZ"]);
    let expires = time::OffsetDateTime::parse(
        order["hold_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires - stack.clock.now(), time::Duration::minutes(30), "default hold is 30 minutes");
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved), (7, 3));
    assert_eq!(stack.stock("TEA", "SH").await.available, 10, "other warehouses untouched");

    let hold = stack.store().hold(OrderId::parse(order["order_id"].as_str().unwrap()).unwrap()).await.unwrap().unwrap();
    assert_eq!(hold.allocations.len(), 2);
    assert!(hold.expiry_bucket.is_some(), "an unpaid hold is in the expiring-holds index");
    let due = stack
        .dynamodb
        .query()
        .table_name(&stack.config.table_name)
        .index_name(orderflow::store::EXPIRING_HOLDS_INDEX)
        .key_condition_expression("expiry_bucket = :b AND expires_at <= :t")
        .expression_attribute_values(
            ":b",
            aws_sdk_dynamodb::types::AttributeValue::S(hold.expiry_bucket.clone().unwrap()),
        )
        .expression_attribute_values(
            ":t",
            aws_sdk_dynamodb::types::AttributeValue::N(hold.expires_at.unwrap().to_string()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(due.count, 1, "a sweeper finds the hold by the index once it is due");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_its_region_cannot_fill_comes_whole_from_a_neighbour() {
    let stack =
        seeded(&[("TEA", "HZ", 10), ("CUP", "HZ", 0), ("TEA", "SH", 5), ("CUP", "SH", 5), ("CUP", "GZ", 50)]).await;
    let order = order_and_reserve(&stack, "k", &[("TEA", 3), ("CUP", 1)], "Zhejiang").await;
    assert_eq!(warehouses(&order), ["SH", "SH"]);
    assert_eq!(stack.stock("TEA", "HZ").await.available, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_are_split_when_no_single_warehouse_has_them_all() {
    let stack = seeded(&[("TEA", "HZ", 10), ("CUP", "GZ", 5)]).await;
    let order = order_and_reserve(&stack, "k", &[("TEA", 3), ("CUP", 2)], "Zhejiang").await;
    assert_eq!(order["status"], "AWAITING_PAYMENT");
    assert_eq!(warehouses(&order), ["HZ", "GZ"]);
    assert_eq!(stack.stock("CUP", "GZ").await.reserved, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_multi_line_order_is_rejected_whole_naming_the_short_sku() {
    let stack = seeded(&[("TEA", "HZ", 10), ("CUP", "HZ", 1), ("CUP", "SH", 2)]).await;
    let order = order_and_reserve(&stack, "k", &[("TEA", 3), ("CUP", 4)], "Zhejiang").await;
    assert_eq!(order["status"], "REJECTED");
    assert_eq!(order["short_lines"], json!([{"sku": "CUP", "requested": 4, "available": 2}]));
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved), (10, 0), "all or nothing: the line that fitted is not held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_reserves_once() {
    let stack = seeded(&[("TEA", "HZ", 10)]).await;
    let intake = stack.intake();
    let (_, accepted) = submit(&intake, "k", &order_body(&[("TEA", 4)], "Zhejiang")).await;
    stack.relay().await;
    let event = stack.receive_exactly(QUEUE, 1).await;
    let deps = stack.reservation();
    for _ in 0..3 {
        assert!(handle_batch(&deps, event.clone()).await.batch_item_failures.is_empty());
    }
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved), (6, 4));
    assert_eq!(get_order(&intake, accepted["order_id"].as_str().unwrap()).await.1["status"], "AWAITING_PAYMENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_fails_alone_in_its_batch() {
    let stack = seeded(&[("TEA", "HZ", 10)]).await;
    submit(&stack.intake(), "k", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    stack.relay().await;
    let mut event = stack.receive_exactly(QUEUE, 1).await;
    let mut bad = event.records[0].clone();
    bad.message_id = Some("poison".into());
    bad.body = Some("{\"detail-type\":\"OrderReceived\",\"detail\":{\"order_id\":\"nope\"}}".into());
    event.records.insert(0, bad);
    let response = handle_batch(&stack.reservation(), event).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["poison"]);
    assert_eq!(stack.stock("TEA", "HZ").await.reserved, 1, "the good message was processed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_sqs_event_names_an_order_it_can_reserve() {
    let stack = seeded(&[("TEA-GREEN-250", "HZ", 10), ("CUP-CERAMIC", "HZ", 10)]).await;
    let text = std::fs::read_to_string(orderflow_tests::emulators::repo_root().join("events/order-received-sqs.json"))
        .unwrap();
    let event: SqsEvent = serde_json::from_str(&text).unwrap();
    let received = orderflow::handlers::stock_reservation::parse_message(&event.records[0]).unwrap();
    assert_eq!(received.lines.len(), 2);
    // The order itself is not in a fresh table: the message fails and is left for redelivery.
    let response = handle_batch(&stack.reservation(), event).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(stack.stock("TEA-GREEN-250", "HZ").await.reserved, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_unpaid_order_releases_its_holds_once() {
    let stack = seeded(&[("TEA", "HZ", 10), ("CUP", "GZ", 5)]).await;
    let order = order_and_reserve(&stack, "k", &[("TEA", 3), ("CUP", 2)], "Zhejiang").await;
    let id = order["order_id"].as_str().unwrap();
    let intake = stack.intake();
    let (status, cancelled) = cancel_order(&intake, id).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("CANCELLED")));
    let (again, _) = cancel_order(&intake, id).await;
    assert_eq!(again, 200, "cancel is idempotent");
    for (sku, wh, units) in [("TEA", "HZ", 10), ("CUP", "GZ", 5)] {
        let s = stack.stock(sku, wh).await;
        assert_eq!((s.available, s.reserved), (units, 0), "{sku}@{wh}");
    }
    let hold = stack.store().hold(OrderId::parse(id).unwrap()).await.unwrap().unwrap();
    assert!(hold.expiry_bucket.is_none(), "a released hold leaves the expiring-holds index");
    let bus = stack.observe_bus().await;
    stack.relay().await;
    let events = bus.at_least(1).await;
    let cancelled: Vec<&Value> = events.iter().filter(|e| e["detail-type"] == "OrderCancelled").collect();
    assert_eq!(cancelled.len(), 1, "announced once: {events:?}");
    let released = &cancelled[0]["detail"]["released"];
    assert_eq!(released.as_array().map(Vec::len), Some(2), "both lines went back: {released}");
    assert!(stack.drain(QUEUE).await.is_empty(), "only OrderReceived is routed to reservation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cancelled_before_reservation_is_never_reserved() {
    let stack = seeded(&[("TEA", "HZ", 10)]).await;
    let intake = stack.intake();
    let (_, accepted) = submit(&intake, "k", &order_body(&[("TEA", 2)], "Zhejiang")).await;
    let id = accepted["order_id"].as_str().unwrap();
    assert_eq!(cancel_order(&intake, id).await.0, 200);
    stack.relay().await;
    let event = stack.receive_exactly(QUEUE, 1).await;
    assert!(handle_batch(&stack.reservation(), event).await.batch_item_failures.is_empty());
    assert_eq!(get_order(&intake, id).await.1["status"], "CANCELLED");
    assert_eq!(stack.stock("TEA", "HZ").await.available, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_order_cannot_be_cancelled() {
    let stack = seeded(&[("TEA", "HZ", 1)]).await;
    let order = order_and_reserve(&stack, "k", &[("TEA", 3)], "Zhejiang").await;
    let (status, problem) = cancel_order(&stack.intake(), order["order_id"].as_str().unwrap()).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("order-not-cancellable")));
}

/// 200 orders of one unit race for 50 units: intake concurrently, then reservation in
/// concurrent batches as several Lambda instances would run it.
async fn two_hundred_orders_for_fifty_units() {
    let stack = seeded(&[("HOT", "HZ", 50)]).await;
    let intake = stack.intake();
    let submissions = (0..200).map(|i| {
        let intake = intake.clone();
        tokio::spawn(async move {
            submit(&intake, &format!("flash-{i}"), &from_own_customer(&order_body(&[("HOT", 1)], "Zhejiang"))).await
        })
    });
    let accepted: Vec<(u16, Value)> =
        futures::future::join_all(submissions).await.into_iter().map(Result::unwrap).collect();
    assert!(accepted.iter().all(|(s, _)| *s == 202));

    stack.relay().await;
    let announced = stack.receive_exactly(QUEUE, 200).await;
    stack.delete(QUEUE, &announced.records).await;
    let batches: Vec<SqsEvent> = announced
        .records
        .chunks(10)
        .map(|chunk| {
            let mut batch = SqsEvent::default();
            batch.records = chunk.to_vec();
            batch
        })
        .collect();
    let deps = stack.reservation();
    let runs = batches.into_iter().map(|batch| {
        let deps = deps.clone();
        tokio::spawn(async move { handle_batch(&deps, batch).await })
    });
    for response in futures::future::join_all(runs).await {
        assert!(response.unwrap().batch_item_failures.is_empty());
    }

    let mut statuses = std::collections::HashMap::<String, usize>::new();
    for (_, a) in &accepted {
        let status = get_order(&intake, a["order_id"].as_str().unwrap()).await.1["status"].as_str().unwrap().to_owned();
        *statuses.entry(status).or_default() += 1;
    }
    let hot = stack.stock("HOT", "HZ").await;
    assert_eq!(statuses.get("AWAITING_PAYMENT"), Some(&50), "{statuses:?}");
    assert_eq!(statuses.get("REJECTED"), Some(&150), "{statuses:?}");
    assert_eq!((hot.available, hot.reserved), (0, 50), "never negative, nothing oversold");
    assert_eq!(hot.available + hot.reserved, 50, "units conserved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_orders_for_fifty_units_reserve_exactly_fifty_first_run() {
    two_hundred_orders_for_fifty_units().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_orders_for_fifty_units_reserve_exactly_fifty_second_run() {
    two_hundred_orders_for_fifty_units().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_orders_for_fifty_units_reserve_exactly_fifty_third_run() {
    two_hundred_orders_for_fifty_units().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_set_and_adjust_stock_per_warehouse() {
    let stack = seeded(&[]).await;
    let deps = stack.staff();
    let route = "/admin/stock/{sku}/{warehouse}";
    let (status, stock) = staff(&deps, "PUT", "/admin/stock/TEA/HZ", route, Some(json!({"available": 12}))).await;
    assert_eq!((status, stock["available"].as_i64(), stock["reserved"].as_i64()), (200, Some(12), Some(0)));
    let (status, problem) = staff(&deps, "PUT", "/admin/stock/TEA/NOWHERE", route, Some(json!({"available": 1}))).await;
    assert_eq!((status, problem["field"].as_str()), (404, Some("warehouse")));
    let adjust = "/admin/stock/{sku}/{warehouse}/adjustments";
    let (status, stock) = staff(
        &deps,
        "POST",
        "/admin/stock/TEA/HZ/adjustments",
        adjust,
        Some(json!({"delta": -5, "reason": "damaged"})),
    )
    .await;
    assert_eq!((status, stock["available"].as_i64()), (200, Some(7)));
    let (status, problem) =
        staff(&deps, "POST", "/admin/stock/TEA/HZ/adjustments", adjust, Some(json!({"delta": -8, "reason": "lost"})))
            .await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("stock-would-go-negative")));
    let (status, problem) = staff(&deps, "PUT", "/admin/stock/TEA/HZ", route, Some(json!({"available": -1}))).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("available-out-of-range")));
    let (status, listing) = staff(&deps, "GET", "/admin/stock/TEA", "/admin/stock/{sku}", None).await;
    assert_eq!((status, listing["warehouses"][0]["available"].as_i64()), (200, Some(7)));
    let (status, list) = staff(&deps, "GET", "/admin/warehouses", "/admin/warehouses", None).await;
    assert_eq!((status, list["warehouses"].as_array().map(Vec::len)), (200, Some(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_is_one_transaction_whatever_its_lines_and_its_decision_comes_from_the_stream() {
    let (stack, _, calls) = Stack::for_test_counting_calls().await;
    stack.seed(&seed(&[("TEA", "HZ", 10), ("CUP", "HZ", 10), ("POT", "HZ", 10), ("LID", "HZ", 10)])).await.unwrap();
    let deps = stack.reservation();
    // The warehouse catalogue and hold policy are read once a minute per instance: warm them.
    submit(&stack.intake(), "warm", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    stack.relay().await;
    handle_batch(&deps, stack.receive_exactly(QUEUE, 1).await).await;
    stack.relay().await;
    let bus = stack.observe_bus().await;
    let (_, accepted) =
        submit(&stack.intake(), "k", &order_body(&[("TEA", 1), ("CUP", 2), ("POT", 3), ("LID", 4)], "Zhejiang")).await;
    stack.relay().await;
    let event = stack.receive_exactly(QUEUE, 1).await;
    calls.reset();
    assert!(handle_batch(&deps, event).await.batch_item_failures.is_empty());
    assert_eq!(
        calls.snapshot().into_iter().collect::<Vec<_>>(),
        [("stock-reservation DynamoDB.TransactWriteItems".to_owned(), 1)]
    );
    stack.relay().await;
    let events = bus.at_least(2).await;
    let reserved: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "StockReserved" && e["detail"]["order_id"] == accepted["order_id"])
        .collect();
    assert_eq!(reserved.len(), 1, "{events:?}");
    assert_eq!(reserved[0]["detail"]["order_id"], accepted["order_id"]);
    assert_eq!(reserved[0]["detail"]["allocations"].as_array().map(Vec::len), Some(4));
    assert_eq!(reserved[0]["detail"]["version"], 2, "the order's second version");
}
