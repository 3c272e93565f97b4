//! Requests and checks that tests and benchmarks share.

use crate::apigw::{self, HttpCall};
use crate::auth::VerifiedClaims;
use crate::contracts::api::{body_value, ApiContract};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use orderflow::events::{Announcement, EventPublisher, PublishAllFuture, PublishError};
use orderflow::handlers::{order_intake, staff_api};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub use crate::payments::{deliver_payment, deliver_payment_signed, payment_event, process_payment_queue};

/// A valid order body for `lines` of (sku, quantity), shipping to `province`.
pub fn order_body(lines: &[(&str, i64)], province: &str) -> Value {
    json!({
        "customer_id": "cust-42",
        "lines": lines.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q, "unit_price_minor": TEST_PRICE_MINOR})).collect::<Vec<_>>(),
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

/// A request with no verified token (a route whose authorizer was skipped).
pub fn http(method: &str, path: &str, route: &str, headers: &[(&str, &str)], body: Option<String>) -> Request {
    http_as(None, method, path, route, headers, body)
}

/// A request as API Gateway passes it once its JWT authorizer verified `claims`.
pub fn http_as(
    claims: Option<VerifiedClaims>,
    method: &str,
    path: &str,
    route: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Request {
    apigw::request(&HttpCall {
        method,
        path,
        route_template: route,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body,
        source_ip: "198.51.100.23",
        claims,
    })
}

/// Verified claims of `pairs`, with the scopes of its `scope` claim, as the authorizer passes them.
pub fn claims(pairs: &[(&str, &str)]) -> VerifiedClaims {
    let claims: std::collections::HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let scopes = claims.get("scope").map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
    VerifiedClaims { claims, scopes }
}

/// A signed-in customer's verified claims.
pub fn customer(id: &str) -> VerifiedClaims {
    claims(&[("sub", id), ("token_use", "id")])
}

/// A shop backend acting for its customers (client credentials with the on-behalf scope).
pub fn shop() -> VerifiedClaims {
    let scope = orderflow::auth::ON_BEHALF_SCOPE;
    claims(&[("sub", "shop-backend"), ("client_id", "shop-backend"), ("scope", scope), ("token_use", "access")])
}

/// A staff member with the operations role.
pub fn operations() -> VerifiedClaims {
    claims(&[("sub", "ops-alice"), ("groups", "[operations]")])
}

/// A member of the warehouse staff (waves, scans, packing, hand-over; stock adjustments).
pub fn warehouse_staff() -> VerifiedClaims {
    claims(&[("sub", "wh-bob"), ("groups", "[warehouse]")])
}

/// `POST /orders` as the customer the body names (the body itself loses `customer_id`: a
/// customer's identity comes from the token).
pub fn post_order_request(key: &str, body: &Value) -> Request {
    let mut body = body.clone();
    let owner = body.as_object_mut().and_then(|b| b.remove("customer_id"));
    let owner = owner.as_ref().and_then(Value::as_str).unwrap_or("cust-42").to_owned();
    post_order_as(customer(&owner), key, &body)
}

pub fn post_order_as(claims: VerifiedClaims, key: &str, body: &Value) -> Request {
    http_as(
        Some(claims),
        "POST",
        "/orders",
        "/orders",
        &[("content-type", "application/json"), ("idempotency-key", key)],
        Some(body.to_string()),
    )
}

/// The route a request was sent to, as API Gateway names it (`POST /orders/{id}/cancel`).
pub fn route_key(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.route_key.clone().unwrap_or_default(),
        _ => panic!("not an HTTP API request"),
    }
}

/// Status and JSON body of the answer to a request sent to `route_key`, once checked against the
/// published API (docs/openapi.yaml): a test fails on an answer the contract does not allow.
pub fn read(route_key: &str, response: &Response<Body>) -> (u16, Value) {
    let bytes = orderflow::http::body_bytes(response.body());
    let status = response.status().as_u16();
    if let Err(breach) = ApiContract::published().check(route_key, status, response.headers(), bytes) {
        panic!("the answer breaks docs/openapi.yaml: {breach}");
    }
    let media_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media_type = media_type.split(';').next().unwrap_or_default().trim();
    let value = if bytes.is_empty() { Value::Null } else { body_value(media_type, bytes).expect("a readable body") };
    (status, value)
}

/// Status and JSON body of `handler`'s answer to `request`, checked as [`read`] checks it.
pub async fn exchange<Answer, Failure>(request: Request, handler: impl FnOnce(Request) -> Answer) -> (u16, Value)
where
    Answer: std::future::Future<Output = Result<Response<Body>, Failure>>,
    Failure: std::fmt::Debug,
{
    let route = route_key(&request);
    read(&route, &handler(request).await.expect("the handler answers"))
}

pub async fn submit(deps: &order_intake::IntakeDeps, key: &str, body: &Value) -> (u16, Value) {
    exchange(post_order_request(key, body), |r| order_intake::handle(deps, r)).await
}

/// `GET /orders/{id}`, as the shop backend (which may read any of its customers' orders).
pub async fn get_order(deps: &order_intake::IntakeDeps, id: &str) -> (u16, Value) {
    let request = http_as(Some(shop()), "GET", &format!("/orders/{id}"), "/orders/{id}", &[], None);
    exchange(request, |r| order_intake::handle(deps, r)).await
}

/// `POST /orders/{id}/cancel`, as the shop backend.
pub async fn cancel_order(deps: &order_intake::IntakeDeps, id: &str) -> (u16, Value) {
    let request = http_as(Some(shop()), "POST", &format!("/orders/{id}/cancel"), "/orders/{id}/cancel", &[], None);
    exchange(request, |r| order_intake::handle(deps, r)).await
}

/// A staff route, called by a member of operations.
pub async fn staff(
    deps: &staff_api::StaffDeps,
    method: &str,
    path: &str,
    route: &str,
    body: Option<Value>,
) -> (u16, Value) {
    staff_as(Some(operations()), deps, method, path, route, body).await
}

pub async fn staff_as(
    claims: Option<VerifiedClaims>,
    deps: &staff_api::StaffDeps,
    method: &str,
    path: &str,
    route: &str,
    body: Option<Value>,
) -> (u16, Value) {
    exchange(json_request(claims, method, path, route, body), |r| staff_api::handle(deps, r)).await
}

/// `method path` (matched by `route`) with a JSON `body`, as `claims`' caller.
pub fn json_request(
    claims: Option<VerifiedClaims>,
    method: &str,
    path: &str,
    route: &str,
    body: Option<Value>,
) -> lambda_http::Request {
    let headers = [("content-type", "application/json")];
    http_as(claims, method, path, route, &headers, body.map(|b| b.to_string()))
}

/// A publisher in front of the real one that refuses what a test says (the first `n` entries,
/// or every entry about one order), and remembers what the bus accepted, in order: to test the
/// relay when the bus fails after the table has changed.
pub struct TestPublisher {
    inner: Arc<dyn EventPublisher>,
    refuse_first: AtomicUsize,
    refuse_matching: Option<String>,
    /// After this many accepted entries the relay "dies": the call panics, as a crashed or
    /// timed-out invocation ends without an answer.
    die_after: Option<usize>,
    pub accepted: std::sync::Mutex<Vec<Announcement>>,
}

impl TestPublisher {
    pub fn around(inner: Arc<dyn EventPublisher>) -> Self {
        Self {
            inner,
            refuse_first: AtomicUsize::new(0),
            refuse_matching: None,
            die_after: None,
            accepted: Default::default(),
        }
    }

    pub fn refusing_first(mut self, n: usize) -> Self {
        self.refuse_first = AtomicUsize::new(n);
        self
    }

    /// Refuse, for ever, every entry whose event id contains `text` (a poison record).
    pub fn refusing_matching(mut self, text: impl Into<String>) -> Self {
        self.refuse_matching = Some(text.into());
        self
    }

    pub fn dying_after(mut self, accepted: usize) -> Self {
        self.die_after = Some(accepted);
        self
    }

    pub fn event_ids(&self) -> Vec<String> {
        self.accepted.lock().unwrap().iter().map(|a| a.event_id.clone()).collect()
    }

    fn refuses(&self, announcement: &Announcement) -> bool {
        if self.refuse_matching.as_deref().is_some_and(|text| announcement.event_id.contains(text)) {
            return true;
        }
        self.refuse_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

impl EventPublisher for TestPublisher {
    fn publish_all<'a>(&'a self, announcements: &'a [Announcement]) -> PublishAllFuture<'a> {
        Box::pin(async move {
            let mut results = Vec::new();
            for announcement in announcements {
                if self.die_after.is_some_and(|limit| self.accepted.lock().unwrap().len() >= limit) {
                    panic!("the relay died half-way through its batch");
                }
                if self.refuses(announcement) {
                    results
                        .push(Err(PublishError { event_id: announcement.event_id.clone(), reason: "injected".into() }));
                    continue;
                }
                let result = self.inner.publish_all(std::slice::from_ref(announcement)).await;
                if result.iter().all(Result::is_ok) {
                    self.accepted.lock().unwrap().push(announcement.clone());
                }
                results.extend(result);
            }
            results
        })
    }
}

/// The price every test SKU sells at, as [`order_body`] shows it.
pub const TEST_PRICE_MINOR: i64 = 1_990;

/// A catalogue item for `sku` at `price_minor` CNY.
pub fn catalogue_item(sku: &str, price_minor: i64) -> orderflow::domain::CatalogueItem {
    serde_json::from_value(json!({
        "sku": sku, "name": format!("Test item {sku}"), "prices": {"CNY": price_minor},
        "category": "test", "weight_grams": 250, "volume_cm3": 1000, "flags": []
    }))
    .expect("a valid catalogue item")
}

/// One warehouse, HZ, serving Zhejiang, with `stock` of (sku, units), each SKU in the catalogue
/// at [`TEST_PRICE_MINOR`].
pub fn one_warehouse(stock: &[(&str, i64)]) -> crate::Seed {
    let seed: crate::Seed = serde_json::from_value(json!({
        "warehouses": [{"warehouse_id": "HZ", "name": "Hangzhou", "regions": ["Zhejiang"]}],
        "stock": stock.iter().map(|(sku, n)| json!({"sku": sku, "warehouse_id": "HZ", "available": n})).collect::<Vec<_>>()
    }))
    .expect("a valid seed");
    seed.priced_at(TEST_PRICE_MINOR, &[])
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
/// and reserved (reservation is called with the order as its OrderReceived carries it, so the
/// caller needs neither the relay nor the queue).
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
    ids
}

/// Save a rule document of one rule that gives every order `points`, thresholds as the sources
/// (verify 80, review 100, freeze 120), through the staff route.
pub async fn every_order_scores(stack: &crate::Stack, points: u32) {
    let (_, current) = staff(&stack.staff(), "GET", "/admin/risk-rules", "/admin/risk-rules", None).await;
    let doc = json!({
        "version": current["rules"]["version"],
        "thresholds": {"verify": 80, "review": 100, "freeze": 120},
        "vip_min_tier": 4,
        "rules": [{"id": "flat", "points": points, "when": {"kind": "amount_above", "minor": 1}}]
    });
    let (status, saved) = staff(&stack.staff(), "PUT", "/admin/risk-rules", "/admin/risk-rules", Some(doc)).await;
    assert_eq!(status, 200, "{saved}");
}

/// Every item of the table, as DynamoDB returns it.
pub async fn table_items(
    stack: &crate::Stack,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = (stack.dynamodb_for("test").scan())
            .table_name(&stack.provisioned.table_name)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// Every item of the table, as DynamoDB returns it, in one text.
pub async fn table_text(stack: &crate::Stack) -> String {
    table_items(stack).await.iter().map(|item| format!("{item:?}\n")).collect()
}

/// The key of every item in the table but the deployment's fingerprint key, which the first
/// request that needs one makes whatever becomes of the request: compared before and after a
/// refused request, nothing it changed may show.
pub async fn table_keys(stack: &crate::Stack) -> std::collections::BTreeSet<(String, String)> {
    let part = |item: &std::collections::HashMap<_, aws_sdk_dynamodb::types::AttributeValue>, name: &str| {
        item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
    };
    let mut keys: std::collections::BTreeSet<_> =
        table_items(stack).await.iter().map(|item| (part(item, "PK"), part(item, "SK"))).collect();
    keys.remove(&("CONFIG".to_owned(), "FINGERPRINT_KEY".to_owned()));
    keys
}
