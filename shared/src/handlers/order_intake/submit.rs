//! `POST /orders`: price the lines from the catalogue, score the order, store it.
//!
//! One read and one write per new order. The read (`BatchGetItem`) brings the risk counters,
//! every line's catalogue item, the customer's profile (their tier) and the codes sent to the
//! phone today. The write (`TransactWriteItems`) stores the order, the idempotency record with the
//! answer it gives, and the counters the order moves, each counter on the condition that it still
//! holds what the score was computed from: orders fired at once from one device are scored one
//! after another, never all against the same count. A lost race reads and scores again.
//!
//! Submitting is idempotent on the `Idempotency-Key` header (scoped to the customer): a repeat
//! replays the stored answer; a retry after a failure either finds the record (the write had
//! committed) or makes the order (it had not). The order's events come from the table's stream.

use super::personal::{protect, Protected};
use super::verification::{code_hash, verification_code};
use super::{customer_status, sha256_hex, unavailable, IntakeDeps};
use crate::auth::Caller;
use crate::domain::risk::{Assessment, Disposition, RiskRules, RiskSubject};
use crate::domain::{
    parse_order_request, price_lines, Currency, ItemFlag, Order, OrderDraft, OrderId, OrderRequest, OrderStatus,
    PricingError, Verification,
};
use crate::http::{body_bytes, Problem};
use crate::store::{Claim, IdempotencyRecord, IntakeContext, RiskKeys};
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use std::time::Duration as StdDuration;
use time::OffsetDateTime;
use tracing::{info, warn};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// What stays the same over the attempts at one request.
struct Submission {
    key_hash: String,
    order_id: OrderId,
    /// The order's personal data: in the clear for scoring, sealed for the table, fingerprinted.
    personal: Protected,
    /// Sent only if the order is stepped up.
    code: String,
}

/// An order ready to be written: itself, the counters it moves and the answer it gives.
struct Prepared {
    order: Order,
    writes: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    record: IdempotencyRecord,
    step_up: bool,
}

#[derive(Debug, Serialize)]
struct Accepted {
    order_id: OrderId,
    status: OrderStatus,
    total_minor: i64,
    currency: Currency,
    location: String,
}

pub(super) async fn submit(deps: &IntakeDeps, request: &Request, caller: &Caller) -> Result<Response<Body>, Problem> {
    let token_customer = match caller {
        Caller::Customer(id) => Some(id),
        _ if caller.acts_for_customers() => None,
        _ => return Err(crate::auth::forbidden()),
    };
    let key = idempotency_key(request)?;
    let (body, canonical) = parse_body(deps, request)?;
    let now = deps.common.clock.now();
    let asked =
        parse_order_request(&body, token_customer, &deps.settings.limits, now).map_err(Problem::invalid_fields)?;
    let order_id = OrderId::generate();
    let personal = protect(deps, &asked, request, order_id, &canonical).await?;
    let submission = Submission {
        // Keys are scoped to the customer: two customers' clients may well pick the same key.
        key_hash: sha256_hex(format!("{}\n{key}", asked.customer_id).as_bytes()),
        order_id,
        personal,
        code: verification_code(),
    };
    let rules = deps.risk_rules(now).await.map_err(unavailable)?;
    let store = &deps.common.store;
    let attempts = deps.settings.write_attempts.max(1);
    for attempt in 1..=attempts {
        let now = deps.common.clock.now();
        let context = read_context(deps, &rules, &asked, &submission.personal, now).await?;
        let draft = match price(&asked, &context, now) {
            Ok(draft) => draft,
            // A retry of a request that went through before the prices changed replays it.
            Err(problem) => return replay_if_known(deps, &submission, now).await?.ok_or(problem),
        };
        let prepared = prepare(deps, &rules, &submission, draft, &context, now);
        let claim = store
            .claim_key_and_create_order(
                &submission.key_hash,
                &prepared.record,
                &prepared.order,
                prepared.writes.clone(),
            )
            .await
            .map_err(unavailable)?;
        match claim {
            Claim::Created => return Ok(created(deps, &submission, prepared).await),
            Claim::Existing(existing) => return replayed(&existing, &submission.personal.request_hash),
            Claim::Contended | Claim::CountersMoved if attempt < attempts => backoff(attempt).await,
            Claim::Contended | Claim::CountersMoved => break,
        }
    }
    Err(Problem::new(
        StatusCode::CONFLICT,
        "request-in-progress",
        "Request in progress",
        "concurrent orders held this one up; retry shortly with the same Idempotency-Key",
    ))
}

/// A short, jittered pause before scoring again: racing orders spread out instead of colliding
/// again in step.
async fn backoff(attempt: usize) {
    let ceiling = (10 * attempt as u64).min(100);
    tokio::time::sleep(StdDuration::from_millis(5 + crate::clock::jitter_below(ceiling))).await;
}

async fn read_context(
    deps: &IntakeDeps,
    rules: &RiskRules,
    asked: &OrderRequest,
    personal: &Protected,
    now: OffsetDateTime,
) -> Result<IntakeContext, Problem> {
    let (customer_windows, device_windows) = rules.windows();
    let at = RiskKeys { customer: asked.customer_id.as_str(), device: asked.device_id.as_str() };
    let skus: Vec<_> = asked.lines.iter().map(|l| l.sku.clone()).collect();
    deps.common
        .store
        .intake_context(at, &asked.customer_id, &personal.prints.phone, &skus, &customer_windows, &device_windows, now)
        .await
        .map_err(unavailable)
}

/// The request priced from the catalogue, or the problem a client can act on.
fn price(asked: &OrderRequest, context: &IntakeContext, now: OffsetDateTime) -> Result<OrderDraft, Problem> {
    match price_lines(&asked.lines, &context.catalogue, asked.currency, now) {
        Ok((lines, total)) => Ok(asked.clone().priced(lines, total)),
        Err(PricingError::Unknown(errors)) => Err(Problem::invalid_fields(errors)),
        Err(PricingError::TooLarge(error)) => Err(Problem::invalid_fields(vec![error])),
        Err(PricingError::Changed(current)) => Err(Problem::new(
            StatusCode::CONFLICT,
            "price-changed",
            "Prices changed",
            "a line was sent with a price that is not the current one; show the customer the current prices",
        )
        .with_field("lines")
        .with_extension("current_prices", current)),
    }
}

/// Score the priced order and build its write: status by disposition, the counters it moves and
/// the idempotency record with the answer.
fn prepare(
    deps: &IntakeDeps,
    rules: &RiskRules,
    submission: &Submission,
    draft: OrderDraft,
    context: &IntakeContext,
    now: OffsetDateTime,
) -> Prepared {
    let card = draft.card_fingerprint.clone();
    let mut order = Order::receive(draft, submission.order_id, submission.personal.sealed.clone(), now);
    let assessment =
        assess(rules, &order, context, Scored { personal: &submission.personal, card: card.as_deref() }, now);
    let codes_left = context.phone_codes_today < i64::from(deps.settings.codes_per_phone_per_day);
    let disposition = match assessment.disposition {
        // No code can reach a phone that had its day's codes: a person looks instead.
        Disposition::StepUp if !codes_left => Disposition::Review,
        other => other,
    };
    order.status = match disposition {
        Disposition::Accept | Disposition::FastLane => OrderStatus::Received,
        Disposition::StepUp => OrderStatus::PendingVerification,
        Disposition::Review => OrderStatus::PendingReview,
        Disposition::Freeze => OrderStatus::Frozen,
    };
    let step_up = disposition == Disposition::StepUp;
    if step_up {
        order.verification = Some(Verification {
            code_hash: code_hash(order.order_id, &submission.code),
            attempts_left: deps.settings.verification_attempts,
            expires_at: (now + deps.settings.verification_ttl).unix_timestamp(),
            resends: 0,
            sent_at: now.unix_timestamp(),
        });
    }
    info!(order_id = %order.order_id, score = assessment.score, disposition = ?disposition, fired = assessment.fired.len(), "order scored");
    order.risk = Some(assessment);
    let store = &deps.common.store;
    let at = RiskKeys { customer: order.customer_id.as_str(), device: order.device_id.as_str() };
    let address = &submission.personal.prints.address;
    let mut writes = store.risk_writes(at, &context.seen, order.total_minor, address, card.as_deref(), now);
    if step_up {
        writes.push(store.first_code_sent(&submission.personal.prints.phone, context.phone_codes_today, now));
    }
    let accepted = Accepted {
        order_id: order.order_id,
        status: customer_status(order.status),
        total_minor: order.total_minor,
        currency: order.currency,
        location: location(order.order_id),
    };
    let record = IdempotencyRecord {
        request_hash: submission.personal.request_hash.clone(),
        order_id: order.order_id,
        ttl: (now + deps.settings.key_retention).unix_timestamp(),
        response_status: StatusCode::ACCEPTED.as_u16(),
        response_body: serde_json::to_string(&accepted).expect("plain data"),
    };
    Prepared { order, writes, record, step_up }
}

/// What scoring reads of the order's personal data, in the clear.
#[derive(Clone, Copy)]
struct Scored<'a> {
    personal: &'a Protected,
    card: Option<&'a str>,
}

/// The rules' verdict, with what only the server knows: the tier from the customer's profile,
/// the resaleable goods from the catalogue's flags.
fn assess(
    rules: &RiskRules,
    order: &Order,
    context: &IntakeContext,
    clear: Scored<'_>,
    now: OffsetDateTime,
) -> Assessment {
    let resaleable_skus = order
        .lines
        .iter()
        .filter(|l| context.catalogue.get(&l.sku).is_some_and(|i| i.flags.contains(&ItemFlag::HighValueResaleable)))
        .map(|l| l.sku.as_str())
        .collect();
    let subject = RiskSubject {
        customer_id: order.customer_id.as_str(),
        tier: context.profile.as_ref().and_then(|p| p.tier),
        phone: clear.personal.clear.phone.as_str(),
        phone_fingerprint: clear.personal.prints.phone.as_str(),
        address_fingerprint: clear.personal.prints.address.as_str(),
        address_kind: order.shipping_address.kind,
        province: &order.shipping_address.province,
        device_id: order.device_id.as_str(),
        client_ip_fingerprint: clear.personal.prints.client_ip.as_ref().map(|ip| ip.as_str()),
        card_fingerprint: clear.card,
        payment_method: order.payment_method,
        total_minor: order.total_minor,
        resaleable_skus,
        at: now,
    };
    rules.assess(&subject, &context.risk)
}

async fn created(deps: &IntakeDeps, submission: &Submission, prepared: Prepared) -> Response<Body> {
    let order = &prepared.order;
    if prepared.step_up {
        let phone = &submission.personal.clear.phone;
        if let Err(err) = deps.notifier.send_verification_code(order.order_id, phone, &submission.code).await {
            // The order stands; the customer can ask for the code again.
            warn!(order_id = %order.order_id, error = %err, "verification code not sent");
        }
    }
    info!(order_id = %order.order_id, lines = order.lines.len(), status = order.status.as_str(), "order received");
    accepted_response(&prepared.record, false)
}

/// The stored answer, if this key's request went through before.
async fn replay_if_known(
    deps: &IntakeDeps,
    submission: &Submission,
    now: OffsetDateTime,
) -> Result<Option<Response<Body>>, Problem> {
    let record = deps.common.store.idempotency_record(&submission.key_hash).await.map_err(unavailable)?;
    match record.filter(|r| r.ttl >= now.unix_timestamp()) {
        Some(record) => replayed(&record, &submission.personal.request_hash).map(Some),
        None => Ok(None),
    }
}

fn replayed(record: &IdempotencyRecord, request_hash: &str) -> Result<Response<Body>, Problem> {
    if record.request_hash != request_hash {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used for a different order body",
        )
        .with_field("Idempotency-Key"));
    }
    Ok(accepted_response(record, true))
}

fn location(id: OrderId) -> String {
    format!("/orders/{id}")
}

fn accepted_response(record: &IdempotencyRecord, replayed: bool) -> Response<Body> {
    let status = StatusCode::from_u16(record.response_status).unwrap_or(StatusCode::ACCEPTED);
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::LOCATION, location(record.order_id))
        .body(Body::Text(record.response_body.clone()))
        .expect("static response parts are valid");
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
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
