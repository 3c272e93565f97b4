//! The local stack end to end, over HTTP as a user would drive it: tokens from the local issuer,
//! the API gateway emulation with its JWT check, the EventBridge rule to SQS, and the SQS poller
//! into stock reservation.

use orderflow_tests::fixtures::{order_body, TEST_PRICE_MINOR};
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

    let deadline = Instant::now() + Duration::from_secs(30);
    let order = loop {
        let (_, order) = api.call("GET", &location, &[("authorization", customer.as_str())], None).await.unwrap();
        if order["status"] != "RECEIVED" || Instant::now() > deadline {
            break order;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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

/// GET `path` until `done` holds of the answer (the stack works in the background), for at most
/// 30 seconds; the last answer.
async fn until(
    api: &ApiClient,
    path: &str,
    auth: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, answer) = api.call("GET", path, &[("authorization", auth)], None).await.unwrap();
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

    let mut body = order_body(&[("TEA", 2)], "Zhejiang");
    body.as_object_mut().unwrap().remove("customer_id");
    let headers = [("content-type", "application/json"), ("idempotency-key", "ship-1"), ("authorization", &customer)];
    let (status, accepted) = api.call("POST", "/orders", &headers, Some(body.to_string())).await.unwrap();
    assert_eq!(status, 202, "{accepted}");
    let location = accepted["location"].as_str().unwrap().to_owned();
    let order = until(&api, &location, &customer, |o| o["status"] == "AWAITING_PAYMENT").await;
    let pay = json!({"order_id": order["order_id"]}).to_string();
    assert_eq!(api.call("POST", "/_mock-provider/payments", &[], Some(pay)).await.unwrap().0, 200);
    let order = until(&api, &location, &customer, |o| o["shipments"][0]["status"] == "PENDING").await;
    let shipment = order["shipments"][0]["shipment_id"].as_str().expect("OrderPaid made a shipment").to_owned();

    let as_staff = [("content-type", "application/json"), ("authorization", staff.as_str())];
    let staff_post = |path: String, body: serde_json::Value| {
        let api = &api;
        async move { api.call("POST", &path, &as_staff, Some(body.to_string())).await.unwrap() }
    };
    let (status, wave) = staff_post("/admin/warehouses/HZ/waves".into(), json!({})).await;
    assert_eq!(status, 201, "{wave}");
    let scan = json!({"shipment_id": shipment, "barcode": "TEA", "quantity": 2, "batch": "L-9"});
    assert_eq!(
        staff_post(format!("/admin/waves/{}/scans", wave["wave"]["wave_id"].as_str().unwrap()), scan).await.0,
        200
    );
    assert_eq!(staff_post(format!("/admin/shipments/{shipment}/pack"), json!({})).await.0, 200);
    let (status, ready) = staff_post(format!("/admin/shipments/{shipment}/label"), json!({})).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("READY")), "{ready}");
    let (_, booked) = api.call("GET", "/_mock-courier/waybills", &[], None).await.unwrap();
    assert_eq!(booked["waybills"][0]["waybill_number"], ready["waybill"]["number"], "booked over HTTP: {booked}");

    let (status, upload) =
        staff_post(format!("/admin/shipments/{shipment}/photo"), json!({"content_type": "image/png"})).await;
    assert_eq!(status, 200, "{upload}");
    let photo_headers: Vec<(&str, &str)> =
        upload["headers"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
    let url = upload["url"].as_str().unwrap();
    assert_eq!(ApiClient::new("").call("PUT", url, &photo_headers, Some("P".repeat(2048))).await.unwrap().0, 200);
    let (status, handed) = staff_post(format!("/admin/shipments/{shipment}/hand-over"), json!({})).await;
    assert_eq!((status, handed["status"].as_str()), (200, Some("HANDED_OVER")), "{handed}");
    // One step on demand (signed and pushed to the webhook), the rest on the courier's timer.
    let waybill = ready["waybill"]["number"].as_str().unwrap();
    let courier = booked["waybills"][0]["courier"].as_str().unwrap();
    let advance = format!("/_mock-courier/waybills/{courier}/{waybill}/advance");
    let (status, step) = api.call("POST", &advance, &[], None).await.unwrap();
    assert_eq!((status, step["webhook"]["status"].as_u64()), (200, Some(200)), "{step}");
    let tracking_path = format!("/shipments/{shipment}/tracking");
    let tracking = until(&api, &tracking_path, &customer, |t| t["status"] == "DELIVERED").await;
    assert_eq!(tracking["status"], "DELIVERED", "{tracking}");
    // Every step is stamped with the stack's manual clock, which stands still here: checkpoints
    // of equal time keep the order two tracking consumers happened to record them in.
    let mut codes: Vec<&str> =
        tracking["checkpoints"].as_array().unwrap().iter().map(|c| c["raw_code"].as_str().unwrap()).collect();
    codes.sort_unstable();
    assert_eq!(codes, vec!["ARRIVED_HUB", "OUT_FOR_DELIVERY", "PICKED_UP", "SIGNED"]);
    let order = until(&api, &location, &customer, |o| o["status"] == "DELIVERED").await;
    assert_eq!(order["status"], "DELIVERED", "{order}");
    returned_checked_and_refunded(&api, &customer, &order, &shipment).await;
    assert_eq!(running.contract_breaches(), Vec::<String>::new(), "every answer and event as its contract says");
    running.stop().await;
}

/// The README's after-sales demo on the delivered order: one unit returned for no reason, the
/// refund approved by risk staff (a first order goes to review), the goods received and passed
/// by QC, the refund paid by the provider stand-in through the refunds function.
async fn returned_checked_and_refunded(api: &ApiClient, customer: &str, order: &serde_json::Value, shipment: &str) {
    let order_id = order["order_id"].as_str().unwrap();
    let as_customer = [("content-type", "application/json"), ("authorization", customer)];
    let ret = json!({"kind": "return", "reason": "no_reason", "shipment_id": shipment, "lines": [{"sku": "TEA", "quantity": 1}]});
    let path = format!("/orders/{order_id}/tickets");
    let (status, ticket) = api.call("POST", &path, &as_customer, Some(ret.to_string())).await.unwrap();
    assert_eq!(status, 201, "{ticket}");
    let ticket = ticket["ticket_id"].as_str().unwrap().to_owned();
    let risk = api.bearer(json!({"kind": "staff", "subject": "risk-rita", "roles": ["risk"]})).await.unwrap();
    let warehouse = api.bearer(json!({"kind": "staff", "subject": "wh-dan", "roles": ["warehouse"]})).await.unwrap();
    let post = |who: String, path: String, body: serde_json::Value| async move {
        let headers = [("content-type", "application/json"), ("authorization", who.as_str())];
        api.call("POST", &path, &headers, Some(body.to_string())).await.unwrap()
    };
    let (status, approved) =
        post(risk, format!("/admin/tickets/{ticket}/decision"), json!({"action": "approve"})).await;
    assert_eq!((status, approved["status"].as_str()), (200, Some("AWAITING_RETURN")), "{approved}");
    assert!(approved["return_waybill"]["number"].is_string(), "a return waybill: {approved}");
    let (status, _) = post(warehouse.clone(), format!("/admin/tickets/{ticket}/received"), json!({})).await;
    assert_eq!(status, 200);
    let qc = json!({"passed": true, "notes": "sealed"});
    let (status, closed) = post(warehouse, format!("/admin/tickets/{ticket}/qc"), qc).await;
    assert_eq!((status, closed["closure"].as_str()), (200, Some("REFUNDED")), "{closed}");
    let refunds =
        until(api, "/_mock-provider/refunds", "", |r| r["refunds"].as_array().is_some_and(|a| !a.is_empty())).await;
    let refunds = refunds["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["refund"]["amount_minor"], TEST_PRICE_MINOR, "one unit's price");
}
