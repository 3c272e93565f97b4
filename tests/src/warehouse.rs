//! The warehouse's side of a test: a paid order made into shipments, and the fulfilment API
//! called as warehouse staff would (waves, scans, the shipment's steps, the dispatch photo
//! uploaded through its presigned URL), up to a parcel handed over.

use crate::fixtures::{
    deliver_payment, exchange, json_request, order_body, payment_event, process_payment_queue, reserved_orders,
    warehouse_staff, TEST_PRICE_MINOR,
};
use crate::local::ApiClient;
use crate::Stack;
use orderflow::domain::{OrderId, Shipment};
use orderflow::handlers::fulfilment::{make_shipments, routes};
use serde_json::{json, Value};

/// An order of `lines` reserved, paid and made into shipments; its id.
pub async fn paid_with_shipments(stack: &Stack, lines: &[(&str, i64)]) -> OrderId {
    let id = paid(stack, lines).await;
    make_shipments(&stack.fulfilment_core("fulfilment"), id).await.unwrap();
    id
}

/// An order of `lines` reserved and paid (its OrderPaid not yet consumed); its id.
pub async fn paid(stack: &Stack, lines: &[(&str, i64)]) -> OrderId {
    let id = reserved_orders(stack, 1, &order_body(lines, "Zhejiang")).await[0];
    let total: i64 = lines.iter().map(|(_, q)| q * TEST_PRICE_MINOR).sum();
    let now = stack.clock.now().unix_timestamp();
    let event = payment_event("payment.succeeded", &id.to_string(), total, "CNY", &format!("pay_{id}"), now);
    assert_eq!(deliver_payment(stack, &event).await.0, 200);
    process_payment_queue(stack, &stack.payment_processor()).await;
    id
}

/// `method path` (matched by `route`) on the fulfilment API as `who`: status and JSON body.
pub async fn call(
    stack: &Stack,
    who: &crate::auth::VerifiedClaims,
    method: &str,
    path: &str,
    route: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let request = json_request(Some(who.clone()), method, path, route, body);
    let deps = stack.warm_fulfilment_api();
    exchange(request, |r| routes::handle(&deps, r)).await
}

/// The order's shipments as stored.
pub async fn shipments(stack: &Stack, id: OrderId) -> Vec<Shipment> {
    stack.store().order_and_shipments(id).await.unwrap().1
}

/// A pick wave of warehouse HZ's pending shipments; its id.
pub async fn wave(stack: &Stack) -> String {
    let (status, wave) =
        call(stack, &warehouse_staff(), "POST", "/admin/warehouses/HZ/waves", "/admin/warehouses/{id}/waves", None)
            .await;
    assert_eq!(status, 201, "{wave}");
    wave["wave"]["wave_id"].as_str().unwrap().to_owned()
}

/// One scan of `quantity` units of `barcode` (batch L-1) for `shipment` in `wave`.
pub async fn scan(stack: &Stack, wave: &str, shipment: &str, barcode: &str, quantity: u32) -> (u16, Value) {
    let body = json!({"shipment_id": shipment, "barcode": barcode, "quantity": quantity, "batch": "L-1"});
    call(
        stack,
        &warehouse_staff(),
        "POST",
        &format!("/admin/waves/{wave}/scans"),
        "/admin/waves/{id}/scans",
        Some(body),
    )
    .await
}

/// `POST /admin/shipments/{shipment}/{action}` as `who`.
pub async fn post(
    stack: &Stack,
    who: &crate::auth::VerifiedClaims,
    shipment: &str,
    action: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let path = format!("/admin/shipments/{shipment}/{action}");
    call(stack, who, "POST", &path, &format!("/admin/shipments/{{id}}/{action}"), body).await
}

/// Upload a photo through the presigned URL, as the warehouse's handheld would.
pub async fn upload_photo(stack: &Stack, shipment: &str, bytes: usize) {
    let (status, upload) =
        post(stack, &warehouse_staff(), shipment, "photo", Some(json!({"content_type": "image/jpeg"}))).await;
    assert_eq!(status, 200, "{upload}");
    put_presigned(&upload, "J".repeat(bytes)).await;
}

/// `body` PUT to a presigned upload (`{"url", "headers"}`) with its signed headers, as a phone
/// would upload a photo.
pub async fn put_presigned(upload: &Value, body: String) {
    let headers: Vec<(String, String)> = upload["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(put_to(upload["url"].as_str().unwrap(), &headers, body).await, 200);
}

/// The status of a PUT of `body` to `url` with `headers`.
pub async fn put_to(url: &str, headers: &[(String, String)], body: String) -> u16 {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ApiClient::new("").send("PUT", url, &headers, Some(body)).await.unwrap().0
}

/// Take a pending shipment (warehouse HZ) through a wave, its scans (barcode, units), packing,
/// labelling, its photo and the hand-over, as one warehouse user with no double check due.
pub async fn hand_over(stack: &Stack, shipment: &str, scans: &[(&str, u32)]) {
    let wave = wave(stack).await;
    for (barcode, units) in scans {
        assert_eq!(scan(stack, &wave, shipment, barcode, *units).await.0, 200, "scan {barcode}");
    }
    for step in ["pack", "label"] {
        let (status, body) = post(stack, &warehouse_staff(), shipment, step, None).await;
        assert_eq!(status, 200, "{step}: {body}");
    }
    upload_photo(stack, shipment, 4096).await;
    let (status, body) = post(stack, &warehouse_staff(), shipment, "hand-over", None).await;
    assert_eq!(status, 200, "hand-over: {body}");
}
