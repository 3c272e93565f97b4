//! The local stack end to end, over HTTP as a user would drive it: tokens from the local issuer,
//! the API gateway emulation with its JWT check, the EventBridge rule to SQS, and the SQS poller
//! into stock reservation.

use orderflow_tests::fixtures::order_body;
use orderflow_tests::journeys::{pay_for, place, returned_checked_and_refunded, ship_and_deliver, until};
use orderflow_tests::local::{self, ApiClient, LocalOptions};
use orderflow_tests::{Seed, Stack};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_posted_over_http_is_reserved_and_the_stock_moves() {
    let (stack, _) = Stack::for_test().await;
    let seed: Seed = serde_json::from_value(json!({
        "warehouses": [{"warehouse_id": "HZ", "name": "Hangzhou", "regions": ["Zhejiang"]}],
        "stock": [{"sku": "TEA", "warehouse_id": "HZ", "available": 5}]
    }))
    .unwrap();
    stack.seed(&seed.priced_at(orderflow_tests::fixtures::TEST_PRICE_MINOR, &[])).await.unwrap();
    let running = local::run(Arc::new(stack), LocalOptions::default()).await.unwrap();
    let api = ApiClient::new(running.api_url());

    let mut body = order_body(&[("TEA", 2)], "Zhejiang");
    body.as_object_mut().unwrap().remove("customer_id");
    let body = Some(body.to_string());
    let headers = [("content-type", "application/json"), ("idempotency-key", "http-1")];
    let (status, refused) = api.call("POST", "/orders", &headers, body.clone()).await.unwrap();
    assert_eq!((status, refused["message"].as_str()), (401, Some("Unauthorized")), "no token stops at the gateway");

    let customer = api.bearer(json!({"kind": "customer", "customer_id": "cust-42"})).await.unwrap();
    let headers = [headers[0], headers[1], ("authorization", customer.as_str())];
    let (status, accepted) = api.call("POST", "/orders", &headers, body).await.unwrap();
    assert_eq!(status, 202, "{accepted}");
    let location = accepted["location"].as_str().unwrap().to_owned();

    let order = until(&api, &location, &customer, |o| o["status"] != "RECEIVED").await;
    assert_eq!(order["status"], "AWAITING_PAYMENT", "{order}");
    assert_eq!(order["customer_id"], "cust-42", "the customer came from the token");
    let someone_else = api.bearer(json!({"kind": "customer", "customer_id": "cust-7"})).await.unwrap();
    let (status, _) = api.call("GET", &location, &[("authorization", &someone_else)], None).await.unwrap();
    assert_eq!(status, 404, "another customer's order does not exist for them");

    let (status, _) = api.call("GET", "/admin/stock/TEA", &[("authorization", customer.as_str())], None).await.unwrap();
    assert_eq!(status, 403, "a customer is not staff");
    let staff = api.bearer(json!({"kind": "staff", "subject": "alice", "roles": ["operations"]})).await.unwrap();
    let (_, stock) = api.call("GET", "/admin/stock/TEA", &[("authorization", &staff)], None).await.unwrap();
    assert_eq!(
        (stock["warehouses"][0]["available"].as_i64(), stock["warehouses"][0]["reserved"].as_i64()),
        (Some(3), Some(2))
    );

    let (status, body) = api.call("GET", "/nowhere", &[], None).await.unwrap();
    assert_eq!((status, body["message"].as_str()), (404, Some("Not Found")), "unrouted paths stop at the gateway");
    assert_eq!(running.contract_breaches(), Vec::<String>::new(), "every answer and event as its contract says");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_order_goes_through_the_warehouse_and_the_mock_courier_to_delivered_over_http() {
    let (stack, _) = Stack::for_test().await;
    let seed = orderflow_tests::fixtures::one_warehouse(&[("TEA", 5)]);
    stack.seed(&seed).await.unwrap();
    // The mock courier's timer moves handed-over parcels a step every quarter second.
    let options = LocalOptions { courier_moves_every: Some(Duration::from_millis(250)), ..LocalOptions::default() };
    let running = local::run(Arc::new(stack), options).await.unwrap();
    let api = ApiClient::new(running.api_url());
    let customer = api.bearer(json!({"kind": "customer", "customer_id": "cust-42"})).await.unwrap();
    let staff = api.bearer(json!({"kind": "staff", "subject": "wh-dan", "roles": ["warehouse"]})).await.unwrap();

    let location = place(&api, &customer, "ship-1", &order_body(&[("TEA", 2)], "Zhejiang")).await;
    let shipment = pay_for(&api, &customer, &location).await;
    let order = ship_and_deliver(&api, &staff, &customer, &location, &shipment).await;
    let tracking = until(&api, &format!("/shipments/{shipment}/tracking"), &customer, |_| true).await;
    // Every step is stamped with the stack's manual clock, which stands still here: checkpoints
    // of equal time keep the order two tracking consumers happened to record them in.
    let mut codes: Vec<&str> =
        tracking["checkpoints"].as_array().unwrap().iter().map(|c| c["raw_code"].as_str().unwrap()).collect();
    codes.sort_unstable();
    assert_eq!(codes, vec!["ARRIVED_HUB", "OUT_FOR_DELIVERY", "PICKED_UP", "SIGNED"]);
    returned_checked_and_refunded(&api, &customer, &order, &shipment).await;
    assert_eq!(running.contract_breaches(), Vec::<String>::new(), "every answer and event as its contract says");
    running.stop().await;
}
