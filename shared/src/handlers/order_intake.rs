//! Function order-intake (API Gateway HTTP API): submit an order, read it, cancel it, verify it.
//!
//! Submitting is idempotent on the `Idempotency-Key` header. The answer is known before the
//! write, so the key's record (with that answer), the order and its risk counters are one
//! transaction: two AWS calls per new order, the risk read and that write. A repeat replays the
//! stored answer; a retry after a failure either finds the record (the write had committed) or
//! makes the order (it had not). The order's events come from the table's stream.

use super::{Common, TtlCache};
use crate::domain::risk::{address_fingerprint, Disposition, RiskRules, RiskSubject};
use crate::domain::Verification;
use crate::domain::{parse_order_request, Limits, Order, OrderId, OrderLine, OrderStatus, ShortLine};
use crate::http::{body_bytes, json_response, segments, Problem};
use crate::notify::Notifier;
use crate::store::{CancelCause, CancelError, Claim, IdempotencyRecord, RiskKeys, StoreError};
use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

#[derive(Debug, Clone, Copy)]
pub struct IntakeSettings {
    pub limits: Limits,
    pub max_body_bytes: usize,
    /// How long a key and its response are remembered.
    pub key_retention: Duration,
    /// Tries at the order's write while a concurrent first attempt with the same key holds it.
    pub claim_attempts: usize,
    /// How long a warm function trusts the risk rules it read.
    pub rules_cache: Duration,
    /// How long a verification code is valid, and how many wrong codes cancel the order.
    pub verification_ttl: Duration,
    pub verification_attempts: u32,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_body_bytes: 64 * 1024,
            key_retention: Duration::hours(24),
            claim_attempts: 4,
            rules_cache: Duration::minutes(1),
            verification_ttl: Duration::minutes(10),
            verification_attempts: 5,
        }
    }
}

#[derive(Clone)]
pub struct IntakeDeps {
    pub common: Common,
    pub settings: IntakeSettings,
    pub notifier: Arc<dyn Notifier>,
    rules: Arc<TtlCache<RiskRules>>,
}

impl IntakeDeps {
    pub fn new(common: Common, settings: IntakeSettings, notifier: Arc<dyn Notifier>) -> Self {
        Self { common, rules: Arc::new(TtlCache::new(settings.rules_cache)), settings, notifier }
    }

    /// The saved risk rules (or the sources' defaults), at most `rules_cache` old.
    async fn risk_rules(&self, now: OffsetDateTime) -> Result<Arc<RiskRules>, StoreError> {
        self.rules
            .get_or_load(now, || async {
                Ok(self.common.store.risk_rules().await?.unwrap_or_else(RiskRules::defaults))
            })
            .await
    }
}

pub async fn handle(deps: &IntakeDeps, request: Request) -> Result<Response<Body>, Error> {
    Ok(route(deps, request).await.unwrap_or_else(Problem::into_response))
}

async fn route(deps: &IntakeDeps, request: Request) -> Result<Response<Body>, Problem> {
    let path = request.uri().path().to_owned();
    match (request.method().clone(), segments(&path).as_slice()) {
        (Method::POST, ["orders"]) => submit(deps, &request).await,
        (Method::GET, ["orders", id]) => read(deps, id).await,
        (Method::POST, ["orders", id, "cancel"]) => cancel(deps, id).await,
        (Method::POST, ["orders", id, "verify"]) => verify(deps, id, &request).await,
        (Method::POST, ["orders", id, "verification", "resend"]) => resend_code(deps, id).await,
        (
            _,
            ["orders"] | ["orders", _] | ["orders", _, "cancel" | "verify"] | ["orders", _, "verification", "resend"],
        ) => Err(Problem::method_not_allowed()),
        _ => Err(Problem::route_not_found()),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn idempotency_key(request: &Request) -> Result<String, Problem> {
    let missing = || {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "idempotency-key-missing",
            "Idempotency-Key required",
            "send an Idempotency-Key header, unique per order",
        )
        .with_field("Idempotency-Key")
    };
    let value = request.headers().get(IDEMPOTENCY_HEADER).ok_or_else(missing)?;
    let key = value.to_str().map_err(|_| missing())?.trim();
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "idempotency-key-malformed",
            "Idempotency-Key malformed",
            "the Idempotency-Key is 1 to 128 visible ASCII characters",
        )
        .with_field("Idempotency-Key"));
    }
    Ok(key.to_owned())
}

fn client_ip(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.clone(),
        _ => None,
    }
}

fn parse_body(deps: &IntakeDeps, request: &Request) -> Result<(serde_json::Value, Vec<u8>), Problem> {
    let bytes = body_bytes(request.body());
    if bytes.len() > deps.settings.max_body_bytes {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            format!("an order body may be at most {} bytes", deps.settings.max_body_bytes),
        ));
    }
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
        if !content_type.to_str().unwrap_or("").to_ascii_lowercase().contains("json") {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the order as application/json",
            ));
        }
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| {
        Problem::new(StatusCode::BAD_REQUEST, "body-not-json", "Body is not JSON", "the body must be a JSON object")
    })?;
    // serde_json's map is ordered by key, so this is a canonical form: the same order sent with
    // its keys in another order or other spacing hashes the same.
    let canonical = serde_json::to_vec(&value).expect("a parsed value serialises");
    Ok((value, canonical))
}

#[derive(Debug, Serialize)]
struct Accepted {
    order_id: OrderId,
    status: OrderStatus,
    location: String,
}

fn location(id: OrderId) -> String {
    format!("/orders/{id}")
}

fn unavailable(err: impl std::fmt::Display) -> Problem {
    warn!(error = %err, "order intake failed");
    Problem::unavailable()
}

async fn submit(deps: &IntakeDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let key = idempotency_key(request)?;
    let (body, canonical) = parse_body(deps, request)?;
    let now = deps.common.clock.now();
    let draft = parse_order_request(&body, &deps.settings.limits, now).map_err(Problem::invalid_fields)?;
    let store = &deps.common.store;

    // Keys are scoped to the customer: two customers' clients may well pick the same key.
    let key_hash = sha256_hex(format!("{}\n{key}", draft.customer_id).as_bytes());
    let request_hash = sha256_hex(&canonical);
    let mut order = Order::receive(draft.clone(), OrderId::generate(), client_ip(request), now);
    let rules = deps.risk_rules(now).await.map_err(unavailable)?;
    let (customer_windows, device_windows) = rules.windows();
    let address = &order.shipping_address;
    let address_fp = address_fingerprint(&[
        &address.country,
        &address.province,
        &address.city,
        address.district.as_deref().unwrap_or(""),
        address.street.as_deref().or(address.locker_station.as_deref()).unwrap_or(""),
        address.house_number.as_deref().or(address.locker_number.as_deref()).unwrap_or(""),
    ]);
    let at = || RiskKeys { customer: draft.customer_id.as_str(), device: draft.device_id.as_str() };
    let context = store.risk_context(at(), &customer_windows, &device_windows, now).await.map_err(unavailable)?;
    let skus: Vec<&str> = order.lines.iter().map(|l| l.sku.as_str()).collect();
    let assessment = rules.assess(
        &RiskSubject {
            customer_id: order.customer_id.as_str(),
            tier: draft.customer_tier,
            phone: order.phone.as_str(),
            address_fingerprint: &address_fp,
            address_kind: order.shipping_address.kind,
            province: &order.shipping_address.province,
            device_id: order.device_id.as_str(),
            client_ip: order.client_ip.as_deref(),
            card_fingerprint: draft.card_fingerprint.as_deref(),
            payment_method: order.payment_method,
            total_minor: order.total_minor,
            skus,
            at: now,
        },
        &context,
    );
    let code = (assessment.disposition == Disposition::StepUp).then(verification_code);
    order.status = match assessment.disposition {
        Disposition::Accept | Disposition::FastLane => OrderStatus::Received,
        Disposition::StepUp => OrderStatus::PendingVerification,
        Disposition::Review => OrderStatus::PendingReview,
        Disposition::Freeze => OrderStatus::Frozen,
    };
    if let Some(code) = &code {
        order.verification = Some(Verification {
            code_hash: code_hash(order.order_id, code),
            attempts_left: deps.settings.verification_attempts,
            expires_at: (now + deps.settings.verification_ttl).unix_timestamp(),
        });
    }
    info!(order_id = %order.order_id, score = assessment.score, disposition = ?assessment.disposition, fired = assessment.fired.len(), "order scored");
    order.risk = Some(assessment);
    let counters = store.risk_writes(
        at(),
        &customer_windows,
        &device_windows,
        order.total_minor,
        &address_fp,
        draft.card_fingerprint.as_deref(),
        now,
    );
    let accepted = Accepted {
        order_id: order.order_id,
        status: customer_status(order.status),
        location: location(order.order_id),
    };
    let response_body = serde_json::to_string(&accepted).expect("plain data");
    let record = IdempotencyRecord {
        request_hash: request_hash.clone(),
        order_id: order.order_id,
        ttl: (now + deps.settings.key_retention).unix_timestamp(),
        response_status: StatusCode::ACCEPTED.as_u16(),
        response_body: response_body.clone(),
    };
    let mut attempts = 0;
    let existing = loop {
        attempts += 1;
        match store.claim_key_and_create_order(&key_hash, &record, &order, counters.clone()).await {
            Ok(Claim::Created) => break None,
            Ok(Claim::Existing(existing)) => break Some(existing),
            Ok(Claim::Contended) if attempts < deps.settings.claim_attempts => {
                tokio::time::sleep(StdDuration::from_millis(25 * attempts as u64)).await
            }
            Ok(Claim::Contended) => {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "request-in-progress",
                    "Request in progress",
                    "an earlier request with this Idempotency-Key is still being processed; retry shortly",
                ))
            }
            Err(err) => return Err(unavailable(err)),
        }
    };
    let Some(existing) = existing else {
        if let Some(code) = &code {
            if let Err(err) = deps.notifier.send_verification_code(order.order_id, &order.phone, code).await {
                // The order stands; the customer can ask for the code again.
                warn!(order_id = %order.order_id, error = %err, "verification code not sent");
            }
        }
        info!(order_id = %order.order_id, lines = order.lines.len(), status = order.status.as_str(), "order received");
        return Ok(accepted_response(StatusCode::ACCEPTED, response_body, order.order_id, false));
    };
    if existing.request_hash != request_hash {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used for a different order body",
        )
        .with_field("Idempotency-Key"));
    }
    Ok(replay(&existing))
}

/// What the customer is told: a frozen order looks like one under review, so a fraudster learns
/// nothing from the answer.
fn customer_status(status: OrderStatus) -> OrderStatus {
    if status == OrderStatus::Frozen {
        OrderStatus::PendingReview
    } else {
        status
    }
}

/// Six digits from the ULID generator's random bits (seeded from the OS).
fn verification_code() -> String {
    format!("{:06}", ulid::Ulid::new().random() % 1_000_000)
}

fn code_hash(order_id: OrderId, code: &str) -> String {
    sha256_hex(format!("{order_id}:{}", code.trim()).as_bytes())
}

fn accepted_response(status: StatusCode, body: String, id: OrderId, replayed: bool) -> Response<Body> {
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::LOCATION, location(id))
        .body(Body::Text(body))
        .expect("static response parts are valid");
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn replay(record: &IdempotencyRecord) -> Response<Body> {
    let status = StatusCode::from_u16(record.response_status).unwrap_or(StatusCode::ACCEPTED);
    accepted_response(status, record.response_body.clone(), record.order_id, true)
}

/// What a client may see of an order: no street, no recipient, the phone masked.
#[derive(Debug, Serialize)]
pub struct OrderView {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub customer_id: String,
    pub lines: Vec<OrderLine>,
    pub currency: crate::domain::Currency,
    pub total_minor: i64,
    pub payment_method: crate::domain::PaymentMethod,
    pub channel: String,
    pub ship_to: ShipTo,
    pub phone: String,
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub hold_expires_at: Option<OffsetDateTime>,
    /// Why the order was rejected: the lines no warehouse could serve.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub short_lines: Vec<ShortLine>,
}

#[derive(Debug, Serialize)]
pub struct ShipTo {
    pub country: String,
    pub province: String,
    pub city: String,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        Self {
            order_id: order.order_id,
            status: customer_status(order.status),
            customer_id: order.customer_id.to_string(),
            lines: order.lines.clone(),
            currency: order.currency,
            total_minor: order.total_minor,
            payment_method: order.payment_method,
            channel: order.channel.to_string(),
            ship_to: ShipTo {
                country: order.shipping_address.country.clone(),
                province: order.shipping_address.province.clone(),
                city: order.shipping_address.city.clone(),
            },
            phone: order.phone.masked(),
            event_time: order.event_time,
            received_at: order.received_at,
            updated_at: order.updated_at,
            hold_expires_at: order.hold_expires_at,
            short_lines: order.short_lines.clone(),
        }
    }
}

fn order_id(raw: &str) -> Result<OrderId, Problem> {
    OrderId::parse(raw).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, e.code, "Malformed order id", e.detail).with_field("order_id")
    })
}

async fn read(deps: &IntakeDeps, raw_id: &str) -> Result<Response<Body>, Problem> {
    let id = order_id(raw_id)?;
    let order = deps.common.store.order(id).await.map_err(unavailable)?.ok_or_else(|| Problem::not_found("order"))?;
    Ok(json_response(StatusCode::OK, &OrderView::from(&order)))
}

async fn cancel(deps: &IntakeDeps, raw_id: &str) -> Result<Response<Body>, Problem> {
    const ATTEMPTS: usize = 5;
    let id = order_id(raw_id)?;
    let store = &deps.common.store;
    for _ in 0..ATTEMPTS {
        let mut order = store.order(id).await.map_err(unavailable)?.ok_or_else(|| Problem::not_found("order"))?;
        let now = deps.common.clock.now();
        match order.status {
            // Cancelling again answers the same.
            OrderStatus::Cancelled => {}
            status if status.can_become(OrderStatus::Cancelled) => {
                match store.cancel(&order, CancelCause::Customer, now).await {
                    Ok(_) => {
                        order.status = OrderStatus::Cancelled;
                        order.updated_at = now;
                        info!(order_id = %id, "order cancelled");
                    }
                    Err(CancelError::StatusChanged) => continue,
                    Err(CancelError::Store(err)) => return Err(unavailable(err)),
                }
            }
            status => {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "order-not-cancellable",
                    "Order cannot be cancelled",
                    format!("an order in status {} cannot be cancelled", status.as_str()),
                ))
            }
        }
        return Ok(json_response(StatusCode::OK, &OrderView::from(&order)));
    }
    Err(unavailable("order kept changing during cancel"))
}

#[derive(serde::Deserialize)]
struct VerifyBody {
    code: String,
}

fn verification_problem(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(status, code, "Verification refused", detail).with_field("code")
}

/// Step-up verification: the right code sends the order on to reservation; wrong codes are
/// counted and the last allowed one cancels the order, as does an expired code.
async fn verify(deps: &IntakeDeps, raw_id: &str, request: &Request) -> Result<Response<Body>, Problem> {
    let id = order_id(raw_id)?;
    let body: VerifyBody = serde_json::from_slice(body_bytes(request.body())).map_err(|_| {
        Problem::new(StatusCode::BAD_REQUEST, "body-invalid", "Body invalid", "send {\"code\": \"123456\"}")
            .with_field("code")
    })?;
    let store = &deps.common.store;
    let mut order = store.order(id).await.map_err(unavailable)?.ok_or_else(|| Problem::not_found("order"))?;
    let now = deps.common.clock.now();
    let Some(verification) = order.verification.clone().filter(|_| order.status == OrderStatus::PendingVerification)
    else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "not-awaiting-verification",
            "Not awaiting verification",
            "this order is not waiting for a code",
        ));
    };
    if now.unix_timestamp() > verification.expires_at {
        cancel_unverified(deps, &order, now).await?;
        return Err(verification_problem(
            StatusCode::CONFLICT,
            "verification-expired",
            "the code expired; the order is cancelled",
        ));
    }
    // Out of attempts (the cancel after the last wrong code did not go through): even the right
    // code is refused, and the cancel is tried again.
    if verification.attempts_left == 0 {
        cancel_unverified(deps, &order, now).await?;
        return Err(verification_problem(
            StatusCode::CONFLICT,
            "verification-failed",
            "too many wrong codes; the order is cancelled",
        ));
    }
    if code_hash(id, &body.code) == verification.code_hash {
        if !store.release_to_received(id, OrderStatus::PendingVerification, now).await.map_err(unavailable)? {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "not-awaiting-verification",
                "Not awaiting verification",
                "the order moved on meanwhile",
            ));
        }
        order.status = OrderStatus::Received;
        order.verification = None;
        info!(order_id = %id, "order verified");
        return Ok(json_response(StatusCode::OK, &OrderView::from(&order)));
    }
    let left = verification.attempts_left.saturating_sub(1);
    if !store.spend_verification_attempt(id, verification.attempts_left).await.map_err(unavailable)? {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "verification-busy",
            "Try again",
            "another attempt was counted meanwhile",
        ));
    }
    if left == 0 {
        cancel_unverified(deps, &order, now).await?;
        return Err(verification_problem(
            StatusCode::CONFLICT,
            "verification-failed",
            "too many wrong codes; the order is cancelled",
        ));
    }
    Err(verification_problem(
        StatusCode::BAD_REQUEST,
        "verification-code-wrong",
        format!("wrong code; {left} attempts left"),
    ))
}

async fn cancel_unverified(deps: &IntakeDeps, order: &Order, now: OffsetDateTime) -> Result<(), Problem> {
    match deps.common.store.cancel(order, CancelCause::Customer, now).await {
        Ok(_) | Err(CancelError::StatusChanged) => Ok(()),
        Err(CancelError::Store(err)) => Err(unavailable(err)),
    }
}

/// A new code for an order awaiting verification (the first was lost, or never sent).
async fn resend_code(deps: &IntakeDeps, raw_id: &str) -> Result<Response<Body>, Problem> {
    let id = order_id(raw_id)?;
    let store = &deps.common.store;
    let order = store.order(id).await.map_err(unavailable)?.ok_or_else(|| Problem::not_found("order"))?;
    let Some(verification) = order.verification.clone().filter(|_| order.status == OrderStatus::PendingVerification)
    else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "not-awaiting-verification",
            "Not awaiting verification",
            "this order is not waiting for a code",
        ));
    };
    let code = verification_code();
    let renewed = Verification { code_hash: code_hash(id, &code), ..verification.clone() };
    if !store.replace_verification(id, &verification, &renewed).await.map_err(unavailable)? {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "verification-busy",
            "Try again",
            "the verification changed meanwhile",
        ));
    }
    deps.notifier.send_verification_code(id, &order.phone, &code).await.map_err(unavailable)?;
    Ok(json_response(StatusCode::ACCEPTED, &serde_json::json!({ "order_id": id, "status": "PENDING_VERIFICATION" })))
}
