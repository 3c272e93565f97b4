//! Whole journeys over the local stack's HTTP API, as its users drive them: an order placed by
//! a customer, paid through the provider stand-in, taken through the warehouse to the mock
//! courier and delivered, then returned and refunded. Used by the end-to-end tests and the
//! dashboard's browser test.

use crate::fixtures::TEST_PRICE_MINOR;
use crate::local::ApiClient;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// GET `path` until `done` holds of the answer (the stack works in the background), for at most
/// 30 seconds; the last answer.
pub async fn until(api: &ApiClient, path: &str, auth: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, answer) = api.call("GET", path, &[("authorization", auth)], None).await.unwrap();
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `body` posted as `POST /orders` by the customer whose `Authorization` is `customer`; the
/// order's location once intake accepted it.
pub async fn place(api: &ApiClient, customer: &str, key: &str, body: &Value) -> String {
    let mut body = body.clone();
    body.as_object_mut().unwrap().remove("customer_id");
    let headers = [("content-type", "application/json"), ("idempotency-key", key), ("authorization", customer)];
    let (status, accepted) = api.call("POST", "/orders", &headers, Some(body.to_string())).await.unwrap();
    assert_eq!(status, 202, "{accepted}");
    accepted["location"].as_str().unwrap().to_owned()
}

/// A payment of `outcome` (`succeeded`, `failed`) for the order at `location`, sent by the
/// provider stand-in to the webhook once the order awaits payment.
pub async fn pay(api: &ApiClient, customer: &str, location: &str, outcome: &str) {
    let order = until(api, location, customer, |o| o["status"] == "AWAITING_PAYMENT").await;
    assert_eq!(order["status"], "AWAITING_PAYMENT", "{order}");
    let pay = json!({"order_id": order["order_id"], "outcome": outcome}).to_string();
    let (status, answer) = api.call("POST", "/_mock-provider/payments", &[], Some(pay)).await.unwrap();
    assert_eq!((status, answer["webhook"]["status"].as_u64()), (200, Some(200)), "{answer}");
}

/// Pays the order at `location` through the provider stand-in once it awaits payment; its
/// shipment's id once OrderPaid made it.
pub async fn pay_for(api: &ApiClient, customer: &str, location: &str) -> String {
    pay(api, customer, location, "succeeded").await;
    let order = until(api, location, customer, |o| o["shipments"][0]["status"] == "PENDING").await;
    order["shipments"][0]["shipment_id"].as_str().expect("OrderPaid made a shipment").to_owned()
}

/// A paid order's shipment of two TEA picked in a wave, packed, labelled (the waybill booked with the mock
/// courier over HTTP), photographed and handed over by `warehouse` staff at HZ; one courier step
/// pushed to the webhook on demand, the rest on the mock courier's timer, until the customer
/// sees it delivered. The order as the customer then sees it.
pub async fn ship_and_deliver(
    api: &ApiClient,
    warehouse: &str,
    customer: &str,
    location: &str,
    shipment: &str,
) -> Value {
    let as_staff = [("content-type", "application/json"), ("authorization", warehouse)];
    let staff_post = |path: String, body: Value| async move {
        api.call("POST", &path, &as_staff, Some(body.to_string())).await.unwrap()
    };
    let (status, wave) = staff_post("/admin/warehouses/HZ/waves".into(), json!({})).await;
    assert_eq!(status, 201, "{wave}");
    let scan = json!({"shipment_id": shipment, "barcode": "TEA", "quantity": 2, "batch": "L-9"});
    let wave_id = wave["wave"]["wave_id"].as_str().unwrap();
    assert_eq!(staff_post(format!("/admin/waves/{wave_id}/scans"), scan).await.0, 200);
    assert_eq!(staff_post(format!("/admin/shipments/{shipment}/pack"), json!({})).await.0, 200);
    let (status, ready) = staff_post(format!("/admin/shipments/{shipment}/label"), json!({})).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("READY")), "{ready}");
    let (_, booked) = api.call("GET", "/_mock-courier/waybills", &[], None).await.unwrap();
    let waybill = ready["waybill"]["number"].as_str().unwrap();
    let booking = booked["waybills"].as_array().unwrap().iter().find(|w| w["waybill_number"] == waybill);
    let courier = booking.unwrap_or_else(|| panic!("booked over HTTP: {booked}"))["courier"].as_str().unwrap();

    let (status, upload) =
        staff_post(format!("/admin/shipments/{shipment}/photo"), json!({"content_type": "image/png"})).await;
    assert_eq!(status, 200, "{upload}");
    let photo_headers: Vec<(&str, &str)> =
        upload["headers"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
    let url = upload["url"].as_str().unwrap();
    assert_eq!(ApiClient::new("").call("PUT", url, &photo_headers, Some("P".repeat(2048))).await.unwrap().0, 200);
    let (status, handed) = staff_post(format!("/admin/shipments/{shipment}/hand-over"), json!({})).await;
    assert_eq!((status, handed["status"].as_str()), (200, Some("HANDED_OVER")), "{handed}");
    let advance = format!("/_mock-courier/waybills/{courier}/{waybill}/advance");
    let (status, step) = api.call("POST", &advance, &[], None).await.unwrap();
    assert_eq!((status, step["webhook"]["status"].as_u64()), (200, Some(200)), "{step}");
    let tracking =
        until(api, &format!("/shipments/{shipment}/tracking"), customer, |t| t["status"] == "DELIVERED").await;
    assert_eq!(tracking["status"], "DELIVERED", "{tracking}");
    let order = until(api, location, customer, |o| o["status"] == "DELIVERED").await;
    assert_eq!(order["status"], "DELIVERED", "{order}");
    order
}

/// The README's after-sales demo on a delivered order: one unit returned for no reason, the
/// refund approved by risk staff (a first order goes to review), the goods received and passed
/// by QC, the refund paid by the provider stand-in through the refunds function.
pub async fn returned_checked_and_refunded(api: &ApiClient, customer: &str, order: &Value, shipment: &str) {
    let order_id = order["order_id"].as_str().unwrap();
    let as_customer = [("content-type", "application/json"), ("authorization", customer)];
    let ret = json!({"kind": "return", "reason": "no_reason", "shipment_id": shipment, "lines": [{"sku": "TEA", "quantity": 1}]});
    let path = format!("/orders/{order_id}/tickets");
    let (status, ticket) = api.call("POST", &path, &as_customer, Some(ret.to_string())).await.unwrap();
    assert_eq!(status, 201, "{ticket}");
    let ticket = ticket["ticket_id"].as_str().unwrap().to_owned();
    let risk = api.bearer(json!({"kind": "staff", "subject": "risk-rita", "roles": ["risk"]})).await.unwrap();
    let warehouse = api.bearer(json!({"kind": "staff", "subject": "wh-dan", "roles": ["warehouse"]})).await.unwrap();
    let post = |who: String, path: String, body: Value| async move {
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
