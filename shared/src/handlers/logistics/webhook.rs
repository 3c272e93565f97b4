//! Function courier-webhook (API Gateway HTTP API, `POST /couriers/{courier}/webhook`): each
//! courier's signed pushes, verified as payment callbacks are (`Courier-Signature:
//! t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, five minutes' tolerance, every secret of that
//! courier tried so one can be rotated). A bad signature is a 401 and nothing is stored; a good
//! push is stored in the inbox (a repeat is a 200 no-op) and the stream carries it on.

use super::super::payment_webhook::signature_problem;
use super::super::{invalid, Common};
use crate::config::ConfigError;
use crate::domain::payment::verify;
use crate::domain::tracking::Checkpoint;
use crate::domain::CourierId;
use crate::events::logistics::{CollectionReport, CourierPush};
use crate::http::{body_bytes, json_response, segments, Problem};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde::Deserialize;
use std::collections::HashMap;
use tracing::{info, warn};

pub const SIGNATURE_HEADER: &str = "courier-signature";
const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_CHECKPOINTS: usize = 50;

#[derive(Clone)]
pub struct CourierWebhookDeps {
    pub common: Common,
    /// Each courier's valid secrets.
    pub secrets: HashMap<CourierId, Vec<Vec<u8>>>,
}

/// The shortest signing secret accepted.
const MIN_SECRET_BYTES: usize = 16;

impl CourierWebhookDeps {
    /// `COURIER_WEBHOOK_SECRETS`: `courier:secret` pairs, comma-separated; a courier named twice
    /// has two valid secrets (while one is rotated).
    pub fn secrets_from(value: Option<String>) -> Result<HashMap<CourierId, Vec<Vec<u8>>>, ConfigError> {
        let mut secrets: HashMap<CourierId, Vec<Vec<u8>>> = HashMap::new();
        for pair in value.unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (courier, secret) = pair.split_once(':').ok_or(ConfigError::Missing("COURIER_WEBHOOK_SECRETS"))?;
            let courier =
                CourierId::parse(courier.trim()).map_err(|_| ConfigError::Missing("COURIER_WEBHOOK_SECRETS"))?;
            let secret = secret.trim();
            // A short secret is guessable; an empty one would verify anyone's HMAC over nothing.
            if secret.len() < MIN_SECRET_BYTES {
                return Err(ConfigError::Invalid {
                    name: "COURIER_WEBHOOK_SECRETS",
                    reason: format!("courier {courier}'s secret is shorter than {MIN_SECRET_BYTES} bytes"),
                });
            }
            secrets.entry(courier).or_default().push(secret.as_bytes().to_vec());
        }
        if secrets.is_empty() {
            return Err(ConfigError::Missing("COURIER_WEBHOOK_SECRETS"));
        }
        Ok(secrets)
    }
}

/// The push as couriers send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushBody {
    event_id: String,
    waybill: String,
    #[serde(default)]
    checkpoints: Vec<Checkpoint>,
    #[serde(default)]
    collection: Option<CollectionReport>,
}

pub async fn handle(deps: &CourierWebhookDeps, request: Request) -> Result<Response<Body>, Error> {
    Ok(route(deps, &request).await.unwrap_or_else(Problem::into_response))
}

async fn route(deps: &CourierWebhookDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let path = request.uri().path().to_owned();
    match (request.method().clone(), segments(&path).as_slice()) {
        (Method::POST, ["couriers", courier, "webhook"]) => receive(deps, request, courier).await,
        (_, ["couriers", _, "webhook"]) => Err(Problem::method_not_allowed()),
        _ => Err(Problem::route_not_found()),
    }
}

async fn receive(deps: &CourierWebhookDeps, request: &Request, courier: &str) -> Result<Response<Body>, Problem> {
    let body = body_bytes(request.body());
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            "a push is at most 64 KiB",
        ));
    }
    // An unknown courier has no secret: its push cannot verify, and is told no more than that.
    let courier = CourierId::parse(courier).ok();
    let secrets = courier.as_ref().and_then(|c| deps.secrets.get(c)).map(Vec::as_slice).unwrap_or(&[]);
    let header = request.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let now = deps.common.clock.now();
    if let Err(err) = verify(header, body, secrets, now.unix_timestamp()) {
        warn!(reason = %err, "courier push signature refused");
        return Err(signature_problem(err, "courier", "Courier-Signature"));
    }
    let courier = courier.expect("a verified push names a known courier");
    let push: PushBody = serde_json::from_slice(body).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, "body-invalid", "Body invalid", format!("not a courier push: {e}"))
    })?;
    let push = validate(push, courier, now)?;
    if deps.common.store.record_courier_push(&push).await.map_err(unavailable)? {
        info!(courier = %push.courier, event_id = %push.event_id, checkpoints = push.checkpoints.len(), "courier push accepted");
        Ok(json_response(StatusCode::OK, &serde_json::json!({ "status": "accepted" })))
    } else {
        info!(courier = %push.courier, event_id = %push.event_id, "duplicate courier push ignored");
        Ok(json_response(StatusCode::OK, &serde_json::json!({ "status": "duplicate" })))
    }
}

fn validate(push: PushBody, courier: CourierId, now: time::OffsetDateTime) -> Result<CourierPush, Problem> {
    let token = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !token(&push.event_id, 100) {
        return Err(invalid("event_id", "event-id-invalid", "1 to 100 letters, digits, '-', '_' or '.'"));
    }
    if !token(&push.waybill, 40) || push.waybill.contains(['.', '_']) {
        return Err(invalid("waybill", "waybill-invalid", "1 to 40 letters, digits or '-'"));
    }
    if push.checkpoints.is_empty() && push.collection.is_none() {
        return Err(invalid("checkpoints", "push-empty", "a push carries checkpoints or a collection"));
    }
    if push.checkpoints.len() > MAX_CHECKPOINTS {
        return Err(invalid("checkpoints", "too-many-checkpoints", format!("at most {MAX_CHECKPOINTS} per push")));
    }
    for (i, checkpoint) in push.checkpoints.iter().enumerate() {
        checkpoint.validate(now).map_err(|e| invalid(&format!("checkpoints[{i}]"), e.code, e.detail))?;
    }
    if let Some(collection) = &push.collection {
        if collection.amount_minor <= 0 {
            return Err(invalid("collection.amount_minor", "amount-invalid", "a collection is more than zero"));
        }
    }
    Ok(CourierPush {
        courier,
        event_id: push.event_id,
        waybill: push.waybill,
        checkpoints: push.checkpoints,
        collection: push.collection,
        received_at: now,
    })
}

fn unavailable(err: impl std::fmt::Display) -> Problem {
    warn!(error = %err, "courier push not stored; the courier will retry");
    Problem::unavailable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_short_courier_secret_is_refused_at_start() {
        for value in ["swift:", "swift: ", "swift:short-secret"] {
            let err = CourierWebhookDeps::secrets_from(Some(value.into())).expect_err(value);
            assert!(matches!(err, ConfigError::Invalid { name: "COURIER_WEBHOOK_SECRETS", .. }), "{value}");
        }
    }

    #[test]
    fn a_courier_named_twice_has_both_secrets_while_one_is_rotated() {
        let value = "swift:first-secret-0123456789, swift:second-secret-0123456789,parcelco:parcel-secret-0123456";
        let secrets = CourierWebhookDeps::secrets_from(Some(value.into())).expect("valid");
        let swift = CourierId::parse("swift").expect("courier id");
        assert_eq!(secrets[&swift], vec![b"first-secret-0123456789".to_vec(), b"second-secret-0123456789".to_vec()]);
        assert_eq!(secrets.len(), 2);
    }
}
