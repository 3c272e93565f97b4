//! The local stack end to end, over HTTP as a user would drive it: the API gateway emulation,
//! the EventBridge rule to SQS, and the SQS poller into stock reservation.

use orderflow_tests::fixtures::order_body;
use orderflow_tests::local::{self, ApiClient, LocalOptions};
use orderflow_tests::{Seed, Stack};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_posted_over_http_is_reserved_and_the_stock_moves() {
    let (stack, _) = Stack::for_test().await;
    let seed: Seed = serde_json::from_value(json!({
        "warehouses": [{"warehouse_id": "HZ", "name": "Hangzhou", "regions": ["Zhejiang"]}],
        "stock": [{"sku": "TEA", "warehouse_id": "HZ", "available": 5}]
    }))
    .unwrap();
    stack.seed(&seed).await.unwrap();
    let running = local::run(Arc::new(stack), LocalOptions::default()).await.unwrap();
    let api = ApiClient::new(running.api_url());

    let headers = [("content-type", "application/json"), ("idempotency-key", "http-1")];
    let (status, accepted) =
        api.call("POST", "/orders", &headers, Some(order_body(&[("TEA", 2)], "Zhejiang").to_string())).await.unwrap();
    assert_eq!(status, 202, "{accepted}");
    let location = accepted["location"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(30);
    let order = loop {
        let (_, order) = api.call("GET", &location, &[], None).await.unwrap();
        if order["status"] != "RECEIVED" || Instant::now() > deadline {
            break order;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(order["status"], "AWAITING_PAYMENT", "{order}");
    let (_, stock) = api.call("GET", "/admin/stock/TEA", &[], None).await.unwrap();
    assert_eq!(
        (stock["warehouses"][0]["available"].as_i64(), stock["warehouses"][0]["reserved"].as_i64()),
        (Some(3), Some(2))
    );

    let (status, body) = api.call("GET", "/nowhere", &[], None).await.unwrap();
    assert_eq!((status, body["message"].as_str()), (404, Some("Not Found")), "unrouted paths stop at the gateway");
    running.stop().await;
}
