//! Step-up verification: `POST /orders/{id}/verify` and `POST /orders/{id}/verification/resend`.
//!
//! The right code sends the order on to reservation; wrong codes are counted and the last allowed
//! one cancels the order, as does an expired code. New codes are limited three ways, each a 429
//! with `Retry-After`: one a minute, five per order, and a cap per phone number per day (over all
//! its orders, counted in the same transaction that swaps the code).

use super::{owned_order, sha256_hex, unavailable, IntakeDeps, OrderView};
use crate::auth::Caller;
use crate::domain::{Order, OrderId, OrderStatus, Phone, Verification};
use crate::http::{body_bytes, json_response, Problem};
use crate::personal::order_context;
use crate::store::{CancelCause, CancelError, ResendRefused};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;
use tracing::info;

/// Six digits from the ULID generator's random bits (seeded from the OS).
pub(super) fn verification_code() -> String {
    format!("{:06}", ulid::Ulid::new().random() % 1_000_000)
}

pub(super) fn code_hash(order_id: OrderId, code: &str) -> String {
    sha256_hex(format!("{order_id}:{}", code.trim()).as_bytes())
}

#[derive(serde::Deserialize)]
struct VerifyBody {
    code: String,
}

fn refused(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(status, code, "Verification refused", detail).with_field("code")
}

fn not_awaiting(detail: &str) -> Problem {
    Problem::new(StatusCode::CONFLICT, "not-awaiting-verification", "Not awaiting verification", detail)
}

/// The verification in progress, if the order awaits one.
fn pending(order: &Order) -> Result<Verification, Problem> {
    order
        .verification
        .clone()
        .filter(|_| order.status == OrderStatus::PendingVerification)
        .ok_or_else(|| not_awaiting("this order is not waiting for a code"))
}

pub(super) async fn verify(
    deps: &IntakeDeps,
    caller: &Caller,
    raw_id: &str,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let body: VerifyBody = serde_json::from_slice(body_bytes(request.body())).map_err(|_| {
        Problem::new(StatusCode::BAD_REQUEST, "body-invalid", "Body invalid", "send {\"code\": \"123456\"}")
            .with_field("code")
    })?;
    let mut order = owned_order(deps, caller, raw_id).await?;
    let id = order.order_id;
    let store = &deps.common.store;
    let verification = pending(&order)?;
    let now = deps.common.clock.now();
    if now.unix_timestamp() > verification.expires_at {
        cancel_unverified(deps, &order, now).await?;
        return Err(refused(StatusCode::CONFLICT, "verification-expired", "the code expired; the order is cancelled"));
    }
    // Out of attempts (the cancel after the last wrong code did not go through): even the right
    // code is refused, and the cancel is tried again.
    if verification.attempts_left == 0 {
        cancel_unverified(deps, &order, now).await?;
        return Err(refused(
            StatusCode::CONFLICT,
            "verification-failed",
            "too many wrong codes; the order is cancelled",
        ));
    }
    // Every attempt is counted before the code is compared, under the count it read: of
    // concurrent guesses one is compared and the rest are told to try again, uncompared, so a
    // burst tests no more codes than the attempts allow.
    let left = verification.attempts_left.saturating_sub(1);
    if !store.spend_verification_attempt(id, verification.attempts_left).await.map_err(unavailable)? {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "verification-busy",
            "Try again",
            "another attempt was counted meanwhile",
        ));
    }
    if code_hash(id, &body.code) == verification.code_hash {
        if !store.release_to_received(id, OrderStatus::PendingVerification, now).await.map_err(unavailable)? {
            return Err(not_awaiting("the order moved on meanwhile"));
        }
        order.status = OrderStatus::Received;
        order.verification = None;
        info!(order_id = %id, "order verified");
        return Ok(json_response(StatusCode::OK, &OrderView::from(&order)));
    }
    if left == 0 {
        cancel_unverified(deps, &order, now).await?;
        return Err(refused(
            StatusCode::CONFLICT,
            "verification-failed",
            "too many wrong codes; the order is cancelled",
        ));
    }
    Err(refused(StatusCode::BAD_REQUEST, "verification-code-wrong", format!("wrong code; {left} attempts left")))
}

async fn cancel_unverified(deps: &IntakeDeps, order: &Order, now: OffsetDateTime) -> Result<(), Problem> {
    match deps.common.store.cancel(order, CancelCause::Customer, now).await {
        Ok(_) | Err(CancelError::StatusChanged) => Ok(()),
        Err(CancelError::Store(err)) => Err(unavailable(err)),
    }
}

/// Seconds from `now` to the next UTC midnight, when the phone's day count starts again.
fn until_tomorrow(now: OffsetDateTime) -> u64 {
    let tomorrow = now.date().next_day().map_or(now, |d| d.midnight().assume_utc());
    (tomorrow - now).whole_seconds().max(1) as u64
}

/// Which limit, if any, stops another code now.
fn resend_limit(deps: &IntakeDeps, verification: &Verification, now: OffsetDateTime) -> Result<(), Problem> {
    let settings = &deps.settings;
    if now.unix_timestamp() > verification.expires_at {
        // The sweeper cancels the order; another code would be dead on arrival.
        return Err(refused(StatusCode::CONFLICT, "verification-expired", "the code expired; the order is cancelled"));
    }
    if verification.resends >= settings.resends_per_order {
        // Waiting does not bring another code for this order; the header says when its current
        // code, and with it the order's verification, runs out.
        let left = verification.expires_at.saturating_sub(now.unix_timestamp()).max(1) as u64;
        return Err(Problem::too_many(
            "verification-resend-limit",
            format!("at most {} new codes per order; enter the last code sent", settings.resends_per_order),
            left,
        ));
    }
    let next_allowed = verification.sent_at.saturating_add(settings.resend_interval.whole_seconds());
    if now.unix_timestamp() < next_allowed {
        return Err(Problem::too_many(
            "verification-resend-too-soon",
            format!("one new code per {} seconds", settings.resend_interval.whole_seconds()),
            next_allowed.saturating_sub(now.unix_timestamp()) as u64,
        ));
    }
    Ok(())
}

/// A new code for an order awaiting verification (the first was lost, or never sent).
pub(super) async fn resend(deps: &IntakeDeps, caller: &Caller, raw_id: &str) -> Result<Response<Body>, Problem> {
    let order = owned_order(deps, caller, raw_id).await?;
    let id = order.order_id;
    let verification = pending(&order)?;
    let now = deps.common.clock.now();
    resend_limit(deps, &verification, now)?;
    let code = verification_code();
    let renewed = Verification {
        code_hash: code_hash(id, &code),
        resends: verification.resends + 1,
        sent_at: now.unix_timestamp(),
        ..verification.clone()
    };
    let per_phone = deps.settings.codes_per_phone_per_day;
    let store = &deps.common.store;
    // The phone's own count and the message need the number: only its field is opened, in memory.
    let erased =
        || Problem::new(StatusCode::CONFLICT, "personal-data-erased", "Erased", "this order's phone was erased");
    let sealed = order.personal.as_ref().ok_or_else(erased)?;
    let phone = deps.personal.sealer.open_field(sealed, &order_context(id), "phone").await.map_err(unavailable)?;
    let phone = Phone::parse(&phone.ok_or_else(erased)?).map_err(|_| erased())?;
    let fingerprinter = deps.personal.fingerprints.fingerprinter(store).await.map_err(unavailable)?;
    match store
        .resend_code(id, &fingerprinter.phone(&phone), &verification, &renewed, per_phone, now)
        .await
        .map_err(unavailable)?
    {
        Ok(()) => {}
        Err(ResendRefused::PhoneCapReached) => {
            return Err(Problem::too_many(
                "verification-phone-limit",
                format!("at most {per_phone} codes a day go to one phone number"),
                until_tomorrow(now),
            ))
        }
        Err(ResendRefused::Changed) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "verification-busy",
                "Try again",
                "the verification changed meanwhile",
            ))
        }
    }
    deps.notifier.send_verification_code(id, &phone, &code).await.map_err(unavailable)?;
    info!(order_id = %id, resends = renewed.resends, "verification code sent again");
    Ok(json_response(StatusCode::ACCEPTED, &serde_json::json!({ "order_id": id, "status": "PENDING_VERIFICATION" })))
}
