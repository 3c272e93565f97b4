//! Order intake against the emulators: validation, idempotency, and the order's announcement,
//! which comes from the table's stream through the event relay.

use orderflow_tests::fixtures::{
    catalogue_item, customer, exchange, get_order, http, http_as, order_body, post_order_request, read, submit,
    TEST_PRICE_MINOR,
};
use orderflow_tests::{Seed, Stack};
use serde_json::{json, Value};

/// A stack whose catalogue sells what these tests order (intake needs no stock), and the sample
/// events' SKUs at the prices their bodies show.
async fn priced_stack() -> Stack {
    let (stack, _) = Stack::for_test().await;
    let mut seed: Seed = serde_json::from_value(json!({"warehouses": [], "stock": []})).unwrap();
    seed.catalogue = vec![catalogue_item("TEA-GREEN-250", 4_900), catalogue_item("CUP-CERAMIC", 2_500)];
    stack.seed(&seed.priced_at(TEST_PRICE_MINOR, &["TEA", "CUP", "POT"])).await.unwrap();
    stack.relay().await; // the seed's own changes, so that a test sees only what it changed
    stack
}

const RESERVATION_QUEUE: &str = "StockReservationQueue";

fn detail_types(messages: &[aws_lambda_events::event::sqs::SqsMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(m.body.as_deref().unwrap()).unwrap()["detail-type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_order_is_stored_received_and_announced_to_reservation() {
    let stack = priced_stack().await;
    let deps = stack.intake();
    let response = orderflow::handlers::order_intake::handle(
        &deps,
        post_order_request("k-1", &order_body(&[("TEA", 2)], "Zhejiang")),
    )
    .await
    .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let (status, body) = read("POST /orders", &response);
    assert_eq!(status, 202);
    assert_eq!(body["status"], "RECEIVED");
    let id = body["order_id"].as_str().unwrap();
    assert_eq!(location, format!("/orders/{id}"));

    let (status, order) = get_order(&deps, id).await;
    assert_eq!(status, 200);
    assert_eq!(order["status"], "RECEIVED");
    assert_eq!(order["lines"][0]["sku"], "TEA");
    assert_eq!(order["total_minor"], 2 * 1_990);
    assert_eq!(order["phone"], "**********8000", "the phone is masked");
    assert!(order.get("shipping_address").is_none(), "no street address in the view");

    assert!(stack.drain(RESERVATION_QUEUE).await.is_empty(), "intake publishes nothing itself");
    stack.relay().await;
    let messages = stack.drain(RESERVATION_QUEUE).await;
    assert_eq!(detail_types(&messages), ["OrderReceived"]);
    let event: Value = serde_json::from_str(messages[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(event["detail"]["order_id"], id);
    assert_eq!(event["detail"]["event_id"], format!("OrderReceived:{id}:v1"), "a deterministic id");
    assert_eq!(event["detail"]["version"], 1);
    assert!(!event.to_string().contains("13800138000"), "no phone number on the bus");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_again_returns_the_same_response_and_does_nothing_twice() {
    let stack = priced_stack().await;
    let deps = stack.intake();
    let body = order_body(&[("TEA", 1)], "Zhejiang");
    let first = submit(&deps, "k-same", &body).await;
    let response = orderflow::handlers::order_intake::handle(&deps, post_order_request("k-same", &body)).await.unwrap();
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(read("POST /orders", &response), first);
    stack.relay().await;
    assert_eq!(stack.drain(RESERVATION_QUEUE).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_a_different_body_is_refused_with_422() {
    let stack = priced_stack().await;
    let deps = stack.intake();
    assert_eq!(submit(&deps, "k-2", &order_body(&[("TEA", 1)], "Zhejiang")).await.0, 202);
    let (status, problem) = submit(&deps, "k-2", &order_body(&[("TEA", 3)], "Zhejiang")).await;
    assert_eq!(status, 422);
    assert_eq!(problem["code"], "idempotency-key-reused");
    assert_eq!(problem["field"], "Idempotency-Key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_key_create_one_order() {
    let stack = priced_stack().await;
    let deps = stack.intake();
    let body = order_body(&[("TEA", 1)], "Zhejiang");
    let attempts = (0..20).map(|_| {
        let (deps, body) = (deps.clone(), body.clone());
        tokio::spawn(async move { submit(&deps, "k-race", &body).await })
    });
    let results: Vec<(u16, Value)> =
        futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let ids: std::collections::HashSet<&str> =
        results.iter().filter(|(s, _)| *s == 202).map(|(_, b)| b["order_id"].as_str().unwrap()).collect();
    assert!(results.iter().all(|(s, _)| *s == 202 || *s == 409), "{results:?}");
    assert_eq!(ids.len(), 1, "one order id for one key: {results:?}");
    stack.relay().await;
    assert_eq!(stack.drain(RESERVATION_QUEUE).await.len(), 1, "one OrderReceived");
    let orders = stack
        .dynamodb
        .scan()
        .table_name(&stack.config.table_name)
        .filter_expression("entity = :order")
        .expression_attribute_values(":order", aws_sdk_dynamodb::types::AttributeValue::S("Order".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(orders.count, 1, "one order stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_order_costs_the_risk_read_and_one_transaction_and_a_repeat_one_more_read_at_most() {
    let (stack, _, calls) = Stack::for_test_counting_calls().await;
    let seed: Seed = serde_json::from_value(json!({"warehouses": [], "stock": []})).unwrap();
    stack.seed(&seed.priced_at(TEST_PRICE_MINOR, &["TEA", "CUP", "POT"])).await.unwrap();
    let deps = stack.intake();
    // The rule document is read once a minute per instance: warm the cache first.
    assert_eq!(submit(&deps, "k-warm", &order_body(&[("TEA", 1)], "Zhejiang")).await.0, 202);
    calls.reset();
    let body = order_body(&[("TEA", 1), ("CUP", 2), ("POT", 1)], "Zhejiang");
    assert_eq!(submit(&deps, "k-count", &body).await.0, 202);
    assert_eq!(
        calls.snapshot().into_iter().collect::<Vec<_>>(),
        [
            ("order-intake DynamoDB.BatchGetItem".to_owned(), 1),
            ("order-intake DynamoDB.TransactWriteItems".to_owned(), 1)
        ],
        "a new order: the risk context and one transaction, whatever its lines"
    );
    calls.reset();
    assert_eq!(submit(&deps, "k-count", &body).await.0, 202);
    assert!(calls.total_of("order-intake") <= 2, "a repeat: {:?}", calls.snapshot());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_orders_are_refused_naming_the_field_and_nothing_is_stored() {
    let stack = priced_stack().await;
    let deps = stack.intake();
    let mut vague = order_body(&[("TEA", 1)], "Zhejiang");
    vague["shipping_address"] = json!({"kind": "parcel_locker", "recipient": "Li", "country": "CN", "province": "Zhejiang", "city": "Hangzhou", "locker_station": "Hive Box 3"});
    let (status, problem) = submit(&deps, "k-vague", &vague).await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (400, Some("address-vague"), Some("shipping_address.locker_number"))
    );

    let mut phone = order_body(&[("TEA", 1)], "Zhejiang");
    phone["phone"] = json!("555-0100");
    let (status, problem) = submit(&deps, "k-phone", &phone).await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (400, Some("phone-malformed"), Some("phone"))
    );

    let duplicate = order_body(&[("TEA", 1), ("TEA", 2)], "Zhejiang");
    let (status, problem) = submit(&deps, "k-dup", &duplicate).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("lines[1].sku")));

    assert_eq!(stack.relay().await.delivered, 0, "no change reached the table");
    // A refused request does not burn its key: the corrected order goes through under it.
    assert_eq!(submit(&deps, "k-vague", &order_body(&[("TEA", 1)], "Zhejiang")).await.0, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_problem_details() {
    let stack = priced_stack().await;
    let deps = stack.intake();
    let call = |headers: Vec<(&'static str, &'static str)>, body: String| {
        let deps = deps.clone();
        async move {
            let request = http_as(Some(customer("cust-42")), "POST", "/orders", "/orders", &headers, Some(body));
            exchange(request, |r| orderflow::handlers::order_intake::handle(&deps, r)).await
        }
    };
    let (status, p) =
        call(vec![("content-type", "application/json")], order_body(&[("TEA", 1)], "Zhejiang").to_string()).await;
    assert_eq!(
        (status, p["code"].as_str(), p["field"].as_str()),
        (400, Some("idempotency-key-missing"), Some("Idempotency-Key"))
    );
    let (status, p) = call(vec![("idempotency-key", "k")], "{not json".into()).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("body-not-json")));
    let (status, p) = call(vec![("idempotency-key", "k")], "x".repeat(70_000)).await;
    assert_eq!((status, p["code"].as_str()), (413, Some("body-too-large")));
    let (status, p) = call(vec![("idempotency-key", "k"), ("content-type", "text/plain")], "{}".into()).await;
    assert_eq!((status, p["code"].as_str()), (415, Some("unsupported-media-type")));
    let anonymous = http(
        "POST",
        "/orders",
        "/orders",
        &[("idempotency-key", "k")],
        Some(order_body(&[("TEA", 1)], "Zhejiang").to_string()),
    );
    let (status, p) = exchange(anonymous, |r| orderflow::handlers::order_intake::handle(&deps, r)).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("unauthenticated")), "no verified caller, no order");
    let (status, p) = get_order(&deps, "not-an-id").await;
    assert_eq!((status, p["code"].as_str()), (400, Some("order-id-malformed")));
    let (status, p) = get_order(&deps, &orderflow::domain::OrderId::generate().to_string()).await;
    assert_eq!((status, p["code"].as_str()), (404, Some("not-found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_are_handled_as_documented() {
    let stack = priced_stack().await;
    let deps = stack.intake();
    let (status, body) = exchange(orderflow_tests::apigw::request_from_file("post-order.json"), |r| {
        orderflow::handlers::order_intake::handle(&deps, r)
    })
    .await;
    assert_eq!((status, body["status"].as_str()), (202, Some("RECEIVED")));
    let order = stack
        .store()
        .order(orderflow::domain::OrderId::parse(body["order_id"].as_str().unwrap()).unwrap())
        .await
        .unwrap()
        .unwrap();
    let sealed = order.personal.as_ref().expect("sealed personal data");
    let context = orderflow::personal::order_context(order.order_id);
    let ip = stack.sealer_for("staff-api").open_field(sealed, &context, "client_ip").await.unwrap();
    assert_eq!(ip.as_deref(), Some("203.0.113.7"), "client IP comes from the request context, sealed");
    let (status, body) = exchange(orderflow_tests::apigw::request_from_file("post-order-vague-address.json"), |r| {
        orderflow::handlers::order_intake::handle(&deps, r)
    })
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("address-vague")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_customers_may_use_the_same_key() {
    let stack = priced_stack().await;
    let deps = stack.intake();
    let mine = order_body(&[("TEA", 1)], "Zhejiang");
    let mut theirs = mine.clone();
    theirs["customer_id"] = json!("cust-7");
    let (a, first) = submit(&deps, "order-1", &mine).await;
    let (b, second) = submit(&deps, "order-1", &theirs).await;
    assert_eq!((a, b), (202, 202));
    assert_ne!(first["order_id"], second["order_id"]);
}
