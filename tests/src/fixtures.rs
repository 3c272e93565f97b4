//! Requests and checks that tests and benchmarks share.

use crate::apigw::{self, HttpCall};
use lambda_http::{Body, Request, Response};
use orderflow::events::{DomainEvent, EventPublisher, PublishAllFuture, PublishError};
use orderflow::handlers::{order_intake, staff_api};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A valid order body for `lines` of (sku, quantity), shipping to `province`.
pub fn order_body(lines: &[(&str, i64)], province: &str) -> Value {
    json!({
        "customer_id": "cust-42",
        "lines": lines.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q, "unit_price_minor": 1_990})).collect::<Vec<_>>(),
        "currency": "CNY",
        "shipping_address": {
            "kind": "street", "recipient": "Li Lei", "country": "CN", "province": province,
            "city": "Hangzhou", "street": "Wensan Road", "house_number": "88"
        },
        "phone": "13800138000",
        "payment_method": "online",
        "channel": "app",
        "device_id": "dev-1",
        "event_time": "2026-01-01T00:00:00Z"
    })
}

pub fn http(method: &str, path: &str, route: &str, headers: &[(&str, &str)], body: Option<String>) -> Request {
    apigw::request(&HttpCall {
        method,
        path,
        route_template: route,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body,
        source_ip: "198.51.100.23",
    })
}

pub fn post_order_request(key: &str, body: &Value) -> Request {
    http(
        "POST",
        "/orders",
        "/orders",
        &[("content-type", "application/json"), ("idempotency-key", key)],
        Some(body.to_string()),
    )
}

/// Status and JSON body of a response.
pub fn read(response: &Response<Body>) -> (u16, Value) {
    let bytes = orderflow::http::body_bytes(response.body());
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(bytes).expect("JSON body") };
    (response.status().as_u16(), value)
}

pub async fn submit(deps: &order_intake::IntakeDeps, key: &str, body: &Value) -> (u16, Value) {
    read(&order_intake::handle(deps, post_order_request(key, body)).await.expect("handler answers"))
}

pub async fn get_order(deps: &order_intake::IntakeDeps, id: &str) -> (u16, Value) {
    read(
        &order_intake::handle(deps, http("GET", &format!("/orders/{id}"), "/orders/{id}", &[], None))
            .await
            .expect("handler answers"),
    )
}

pub async fn cancel_order(deps: &order_intake::IntakeDeps, id: &str) -> (u16, Value) {
    let request = http("POST", &format!("/orders/{id}/cancel"), "/orders/{id}/cancel", &[], None);
    read(&order_intake::handle(deps, request).await.expect("handler answers"))
}

pub async fn staff(
    deps: &staff_api::StaffDeps,
    method: &str,
    path: &str,
    route: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let request = http(method, path, route, &[("content-type", "application/json")], body.map(|b| b.to_string()));
    read(&staff_api::handle(deps, request).await.expect("handler answers"))
}

/// A publisher that refuses the first `n` events, then passes the rest to the real one: to test
/// what happens when the bus fails after the table has changed.
pub struct FlakyPublisher {
    inner: Arc<dyn EventPublisher>,
    failures: AtomicUsize,
}

impl FlakyPublisher {
    pub fn failing_first(n: usize, inner: Arc<dyn EventPublisher>) -> Self {
        Self { inner, failures: AtomicUsize::new(n) }
    }
}

impl EventPublisher for FlakyPublisher {
    fn publish_all<'a>(&'a self, events: &'a [DomainEvent]) -> PublishAllFuture<'a> {
        Box::pin(async move {
            let mut results = Vec::new();
            for event in events {
                if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                    results.push(Err(PublishError { detail_type: event.detail_type(), reason: "injected".into() }));
                } else {
                    results.extend(self.inner.publish_all(std::slice::from_ref(event)).await);
                }
            }
            results
        })
    }
}

/// A publisher that passes events through and remembers the ones the bus accepted.
pub struct RecordingPublisher {
    inner: Arc<dyn EventPublisher>,
    pub published: std::sync::Mutex<Vec<DomainEvent>>,
}

impl RecordingPublisher {
    pub fn around(inner: Arc<dyn EventPublisher>) -> Arc<Self> {
        Arc::new(Self { inner, published: std::sync::Mutex::new(Vec::new()) })
    }

    /// Put a recorder in front of a function's publisher; the recorder, to read back.
    pub fn install(common: &mut orderflow::handlers::Common) -> Arc<Self> {
        let recorder = Self::around(common.events.clone());
        common.events = recorder.clone();
        recorder
    }

    pub fn detail_types(&self) -> Vec<&'static str> {
        self.published.lock().unwrap().iter().map(DomainEvent::detail_type).collect()
    }
}

impl EventPublisher for RecordingPublisher {
    fn publish_all<'a>(&'a self, events: &'a [DomainEvent]) -> PublishAllFuture<'a> {
        Box::pin(async move {
            let results = self.inner.publish_all(events).await;
            let mut published = self.published.lock().unwrap();
            for (event, result) in events.iter().zip(&results) {
                if result.is_ok() {
                    published.push(event.clone());
                }
            }
            results
        })
    }
}

/// One warehouse, HZ, serving Zhejiang, with `stock` of (sku, units).
pub fn one_warehouse(stock: &[(&str, i64)]) -> crate::Seed {
    serde_json::from_value(json!({
        "warehouses": [{"warehouse_id": "HZ", "name": "Hangzhou", "regions": ["Zhejiang"]}],
        "stock": stock.iter().map(|(sku, n)| json!({"sku": sku, "warehouse_id": "HZ", "available": n})).collect::<Vec<_>>()
    }))
    .expect("a valid seed")
}

/// `body` as sent by a customer of its own on a device of its own, so that many such orders do
/// not look like one customer's burst to risk control.
pub fn from_own_customer(body: &Value) -> Value {
    let mut body = body.clone();
    let me = ulid::Ulid::new().to_string().to_lowercase();
    body["customer_id"] = json!(format!("cust-{me}"));
    body["device_id"] = json!(format!("dev-{me}"));
    body
}

/// `n` orders with `body`, each from a customer and device of its own, submitted through intake
/// and reserved. Reservation is called with the event intake published, so the caller needs no
/// queue; the queue is drained.
pub async fn reserved_orders(stack: &crate::Stack, n: usize, body: &Value) -> Vec<orderflow::domain::OrderId> {
    let intake = stack.intake();
    let reservation = stack.reservation();
    let mut ids = Vec::new();
    for i in 0..n {
        let (status, accepted) =
            submit(&intake, &format!("k-{i}-{}", ulid::Ulid::new()), &from_own_customer(body)).await;
        assert_eq!(status, 202, "{accepted}");
        let id = orderflow::domain::OrderId::parse(accepted["order_id"].as_str().unwrap()).unwrap();
        let order = stack.store().order(id).await.unwrap().unwrap();
        orderflow::handlers::stock_reservation::reserve_order(
            &reservation,
            &orderflow::events::OrderReceived::of(&order),
        )
        .await
        .expect("reserved");
        ids.push(id);
    }
    stack.drain("StockReservationQueue").await;
    ids
}
