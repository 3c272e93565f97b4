//! Function payment-webhook (API Gateway HTTP API, `POST /payments/webhook`): the provider's
//! callbacks. Verify the signature, store the event in the inbox (a repeat delivery is a 200
//! no-op), answer at once: one AWS call. The stored item is the message: the table's stream
//! carries it to payment processing, so an accepted callback is always processed. Nothing is
//! stored for a callback whose signature does not verify. A refund's confirmation
//! (`refund.succeeded`, `refund.failed`) settles its refund in the ledger instead
//! ([`super::refunds::confirm`]): the refund item is its own inbox.

use super::Common;
use crate::config::ConfigError;
use crate::domain::payment::{verify, PaymentEvent, SignatureError};
use crate::domain::refund::RefundConfirmation;
use crate::domain::FieldError;
use crate::http::{body_bytes, json_response, segments, Problem};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use tracing::{info, warn};

pub const SIGNATURE_HEADER: &str = "payment-signature";

#[derive(Clone)]
pub struct WebhookSettings {
    /// Every secret currently valid (more than one while a secret is rotated).
    pub secrets: Vec<Vec<u8>>,
    pub max_body_bytes: usize,
}

impl WebhookSettings {
    /// `PAYMENT_WEBHOOK_SECRETS` (comma-separated).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secrets: Vec<Vec<u8>> = get("PAYMENT_WEBHOOK_SECRETS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        if secrets.is_empty() {
            return Err(ConfigError::Missing("PAYMENT_WEBHOOK_SECRETS"));
        }
        Ok(Self { secrets, max_body_bytes: 64 * 1024 })
    }
}

#[derive(Clone)]
pub struct WebhookDeps {
    pub common: Common,
    pub settings: WebhookSettings,
}

pub async fn handle(deps: &WebhookDeps, request: Request) -> Result<Response<Body>, Error> {
    Ok(route(deps, &request).await.unwrap_or_else(Problem::into_response))
}

async fn route(deps: &WebhookDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let path = request.uri().path().to_owned();
    match (request.method().clone(), segments(&path).as_slice()) {
        (Method::POST, ["payments", "webhook"]) => receive(deps, request).await,
        (_, ["payments", "webhook"]) => Err(Problem::method_not_allowed()),
        _ => Err(Problem::route_not_found()),
    }
}

fn unavailable(err: impl std::fmt::Display) -> Problem {
    warn!(error = %err, "payment webhook failed; the provider will retry");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily-unavailable",
        "Temporarily unavailable",
        "retry the delivery",
    )
}

/// A header that does not parse, or whose timestamp is outside the tolerance (however far: the
/// difference is computed without overflow), is a bad request; a signature that does not match
/// any secret, or none at all, is unauthorised. Which secret came closest is never told.
pub(crate) fn signature_problem(err: SignatureError, sender: &str, header: &str) -> Problem {
    let unsigned = format!("the callback is not signed by the {sender}");
    let (status, code, detail) = match err {
        SignatureError::Missing => (StatusCode::UNAUTHORIZED, "signature-missing", unsigned.as_str()),
        SignatureError::Mismatch => (StatusCode::UNAUTHORIZED, "signature-invalid", unsigned.as_str()),
        SignatureError::Malformed => {
            (StatusCode::BAD_REQUEST, "signature-malformed", "the header is t=<unix seconds>,v1=<hex HMAC-SHA256>")
        }
        SignatureError::Stale => (
            StatusCode::BAD_REQUEST,
            "signature-timestamp-out-of-range",
            "the signature's timestamp is more than five minutes from now",
        ),
    };
    Problem::new(status, code, "Signature refused", detail).with_field(header)
}

async fn receive(deps: &WebhookDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let body = body_bytes(request.body());
    if body.len() > deps.settings.max_body_bytes {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            "a payment event is at most 64 KiB",
        ));
    }
    let header = request.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let now = deps.common.clock.now();
    if let Err(err) = verify(header, body, &deps.settings.secrets, now.unix_timestamp()) {
        warn!(reason = %err, "payment webhook signature refused");
        return Err(signature_problem(err, "payment provider", "Payment-Signature"));
    }
    if is_refund_event(body) {
        return confirm_refund(deps, body).await;
    }
    let event: PaymentEvent = serde_json::from_slice(body).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, "body-invalid", "Body invalid", format!("not a payment event: {e}"))
    })?;
    event.validate().map_err(|(field, e)| Problem::invalid_fields(vec![FieldError::new(field, e)]))?;

    match deps.common.store.record_payment_event(&event, now).await.map_err(unavailable)? {
        Ok(()) => {
            info!(event_id = %event.id, kind = ?event.event_type, "payment event accepted");
            Ok(json_response(StatusCode::OK, &serde_json::json!({ "status": "accepted" })))
        }
        Err(_) => {
            info!(event_id = %event.id, "duplicate payment delivery ignored");
            Ok(json_response(StatusCode::OK, &serde_json::json!({ "status": "duplicate" })))
        }
    }
}

/// Whether the signed body is the provider's word on a refund (`refund.…`) rather than a payment.
fn is_refund_event(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_slice::<Kind>(body).is_ok_and(|k| k.kind.starts_with("refund."))
}

/// A refund confirmation settles its refund at once (one conditional write: the refund item is
/// its own inbox); RefundIssued or RefundDeclined comes from the stream.
async fn confirm_refund(deps: &WebhookDeps, body: &[u8]) -> Result<Response<Body>, Problem> {
    use super::refunds::{confirm, Confirmed};
    let confirmation: RefundConfirmation = serde_json::from_slice(body).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, "body-invalid", "Body invalid", format!("not a refund event: {e}"))
    })?;
    let refund_id = confirmation.data.refund_id.chars().take(64).collect::<String>();
    let status = match confirm(&deps.common, &confirmation).await.map_err(unavailable)? {
        Confirmed::Settled => "accepted",
        Confirmed::Repeated => "duplicate",
        Confirmed::Unknown => {
            warn!(refund_id = %refund_id, "refund confirmation for no refund of ours");
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refund-unknown",
                "Unknown refund",
                "no refund has this refund_id",
            )
            .with_field("data.refund_id"));
        }
        Confirmed::Mismatch => {
            warn!(refund_id = %refund_id, "refund confirmation does not match the refund sent");
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refund-mismatch",
                "Refund mismatch",
                "the payment, amount or currency is not the refund's",
            ));
        }
        Confirmed::NeverSent => {
            tracing::error!(refund_id = %refund_id, "a confirmation for a refund that was refused and never sent; staff must look");
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "refund-never-sent",
                "Refund never sent",
                "this refund was refused and never sent to the provider",
            ));
        }
    };
    info!(refund_id = %refund_id, outcome = ?confirmation.outcome, status, "refund confirmation");
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "status": status })))
}
