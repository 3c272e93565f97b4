//! Function refunds (SQS, fed by the RefundRequested rule): every refund asked for, by payments
//! (duplicate charge, late payment, mismatch), fulfilment (shortage, cancel after payment),
//! logistics (not-received claims) and after-sales, paid once through the payment provider port.
//!
//! 1. The refund's id is derived from the request's event id, so every delivery of the request
//!    names the same refund.
//! 2. It is recorded in the ledger with its payment's running total in one transaction: never
//!    more than the payment brought in, however many requests come at once. One that does not
//!    fit is recorded REFUSED (RefundRefused) and never sent.
//! 3. It is sent to the provider with its id as the idempotency key. With no answer the message
//!    fails and comes back, and the same refund is sent again with the same key: the provider
//!    pays it once. A refusal by the provider declines it (RefundDeclined) and frees its amount.
//! 4. The provider's signed confirmation at the payment webhook ([`confirm`]) settles it:
//!    RefundIssued (or RefundDeclined) from the stream.

use super::{each_message, BusEnvelope, Common};
use crate::domain::refund::{PaymentRefunds, Refund, RefundConfirmation, RefundOutcome, RefundStatus};
use crate::domain::{OrderId, OrderStatus};
use crate::events::RefundRequested;
use crate::payment_provider::{PaymentProvider, ReceiptStatus, RefundCallError, RefundInstruction};
use crate::store::StoreError;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;
use std::sync::Arc;
use thiserror::Error;
use tracing::{info, warn};

#[derive(Clone)]
pub struct RefundDeps {
    pub common: Common,
    pub provider: Arc<dyn PaymentProvider>,
}

impl RefundDeps {
    /// The deployed function's dependencies: the AWS configuration chain and the payment
    /// provider's API (`PAYMENT_PROVIDER_URL`).
    pub async fn from_env(config: &crate::config::Config) -> Result<Self, String> {
        let url = std::env::var("PAYMENT_PROVIDER_URL").map_err(|_| "PAYMENT_PROVIDER_URL is not set")?;
        let provider = crate::payment_provider::HttpPaymentProvider::new(url);
        Ok(Self { common: Common::from_aws(config).await, provider: Arc::new(provider) })
    }
}

#[derive(Debug, Error)]
pub enum RefundError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("the payment's refunds kept changing")]
    Contended,
    #[error("the provider could not be reached; the same refund will be sent again: {0}")]
    ProviderUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A RefundRequested as the bus delivers it: with the event's id beside its fields.
#[derive(Debug, Deserialize)]
struct Delivered {
    event_id: String,
    #[serde(flatten)]
    request: RefundRequested,
}

pub async fn handle_batch(deps: &RefundDeps, event: SqsEvent) -> SqsBatchResponse {
    each_message(&event, "refund request", |m| process_message(deps, m)).await
}

async fn process_message(deps: &RefundDeps, message: &SqsMessage) -> Result<(), RefundError> {
    let envelope = BusEnvelope::of(message).map_err(RefundError::Malformed)?;
    let delivered: Delivered = envelope.detail_of(&["RefundRequested"]).map_err(RefundError::Malformed)?;
    let refund = record(deps, &delivered.event_id, &delivered.request).await?;
    send(deps, &refund).await
}

/// The refund `requested_by` names, recorded in the ledger (or as it was recorded before).
pub async fn record(deps: &RefundDeps, requested_by: &str, request: &RefundRequested) -> Result<Refund, RefundError> {
    const ATTEMPTS: usize = 5;
    let store = &deps.common.store;
    let refund_id = Refund::id_for(requested_by);
    for _ in 0..ATTEMPTS {
        if let Some(recorded) = store.refund(&refund_id).await? {
            return Ok(recorded);
        }
        let ledger = store.payment_refunds(&request.payment_id).await?;
        let paid_minor = match &ledger {
            Some(ledger) => ledger.paid_minor,
            None => paid_for(deps, request).await?,
        };
        let now = deps.common.clock.now();
        let mut refund = Refund {
            refund_id: refund_id.clone(),
            requested_by: requested_by.to_owned(),
            order_id: request.order_id.clone(),
            payment_id: request.payment_id.clone(),
            amount_minor: request.amount_minor,
            currency: request.currency.clone(),
            reason: request.reason.clone(),
            lines: request.lines.clone(),
            status: RefundStatus::Requested,
            requested_at: now,
            provider_refund_id: None,
            settled_at: None,
            outcome: None,
        };
        if let Some(why) = refusal(&refund, ledger.as_ref(), paid_minor) {
            refund.status = RefundStatus::Refused;
            refund.outcome = Some(why);
            refund.settled_at = Some(now);
            if store.refuse_refund(&refund).await? {
                warn!(refund_id = %refund.refund_id, order_id = %refund.order_id, amount_minor = refund.amount_minor, "refund refused: more than the payment has left");
                return Ok(refund);
            }
            continue;
        }
        if store.record_refund(&refund, ledger.as_ref(), paid_minor).await? {
            info!(refund_id = %refund.refund_id, order_id = %refund.order_id, amount_minor = refund.amount_minor, "refund recorded");
            return Ok(refund);
        }
    }
    Err(RefundError::Contended)
}

/// Why `refund` cannot be paid from its payment, if it cannot.
fn refusal(refund: &Refund, ledger: Option<&PaymentRefunds>, paid_minor: i64) -> Option<String> {
    let room = ledger.map_or(paid_minor, PaymentRefunds::room);
    if refund.amount_minor <= 0 {
        return Some("a refund is more than zero".to_owned());
    }
    if ledger.is_some_and(|l| l.currency != refund.currency) {
        return Some("the refund's currency is not the payment's".to_owned());
    }
    (refund.amount_minor > room).then(|| format!("the payment has {room} left to give back"))
}

/// What the payment brought in that may be given back: for the payment an order kept (paid
/// online, or the cash couriers collected), what was accepted; for a payment the order did not
/// keep (a duplicate charge, one too late or mismatched, one for no order of ours), all of it.
async fn paid_for(deps: &RefundDeps, request: &RefundRequested) -> Result<i64, RefundError> {
    let order = match OrderId::parse(&request.order_id) {
        Ok(id) => deps.common.store.order(id).await?,
        Err(_) => None,
    };
    let kept = |status: OrderStatus| {
        matches!(
            status,
            OrderStatus::Paid
                | OrderStatus::Shipped
                | OrderStatus::Delivered
                | OrderStatus::Archived
                | OrderStatus::Undelivered
                | OrderStatus::CancelledAfterPayment
        )
    };
    Ok(match order {
        Some(order) if order.payment_id.as_deref() == Some(request.payment_id.as_str()) && kept(order.status) => {
            order.paid_minor.unwrap_or(order.total_minor)
        }
        Some(order) if request.payment_id == format!("cod:{}", order.order_id) => order.paid_minor.unwrap_or(0),
        _ => request.amount_minor,
    })
}

/// Ask the provider to pay a recorded refund (nothing for one sent or settled before).
pub async fn send(deps: &RefundDeps, refund: &Refund) -> Result<(), RefundError> {
    if refund.status != RefundStatus::Requested {
        return Ok(());
    }
    let store = &deps.common.store;
    let instruction = RefundInstruction {
        refund_id: refund.refund_id.clone(),
        payment_id: refund.payment_id.clone(),
        amount_minor: refund.amount_minor,
        currency: refund.currency.clone(),
    };
    let now = deps.common.clock.now();
    match deps.provider.refund(&instruction).await {
        Ok(receipt) if receipt.status == ReceiptStatus::Succeeded => {
            let provider = Some(receipt.provider_refund_id.as_str());
            store.settle_refund(refund, RefundStatus::Requested, RefundStatus::Issued, provider, None, now).await?;
        }
        Ok(receipt) => {
            store.refund_submitted(&refund.refund_id, &receipt.provider_refund_id).await?;
        }
        Err(RefundCallError::Declined(why)) => {
            warn!(refund_id = %refund.refund_id, "the provider declined the refund");
            store.settle_refund(refund, RefundStatus::Requested, RefundStatus::Declined, None, Some(&why), now).await?;
        }
        Err(RefundCallError::Unavailable(why)) => return Err(RefundError::ProviderUnavailable(why)),
    }
    info!(refund_id = %refund.refund_id, "refund sent to the provider");
    Ok(())
}

/// What a provider's confirmation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// The refund is now settled as the provider says (it was open, or settled the other way:
    /// the provider's word is what happened to the money).
    Settled,
    /// Settled before, the same way: a repeated confirmation.
    Repeated,
    /// A refund refused here was never sent: the provider cannot have settled it.
    NeverSent,
    /// No refund of ours has this id.
    Unknown,
    /// The payment, amount or currency is not the refund's.
    Mismatch,
}

/// Settle a refund as the provider's signed confirmation says.
pub async fn confirm(common: &Common, confirmation: &RefundConfirmation) -> Result<Confirmed, StoreError> {
    let store = &common.store;
    let id = &confirmation.data.refund_id;
    let to = match confirmation.outcome {
        RefundOutcome::Succeeded => RefundStatus::Issued,
        RefundOutcome::Failed => RefundStatus::Declined,
    };
    let provider = Some(confirmation.data.provider_refund_id.as_str());
    // The provider's reason is kept only when it reads as a code: free text may name the customer.
    let outcome = (to == RefundStatus::Declined).then(|| match confirmation.data.failure_reason.as_deref() {
        Some(code) if is_code(code) => code,
        _ => "declined by the provider",
    });
    // Lost only to a concurrent write of the same refund (its answer being recorded): again.
    for _ in 0..3 {
        let Some(refund) = (if Refund::is_id(id) { store.refund(id).await? } else { None }) else {
            return Ok(Confirmed::Unknown);
        };
        if !confirmation.matches(&refund) {
            return Ok(Confirmed::Mismatch);
        }
        match refund.status {
            seen if seen == to => return Ok(Confirmed::Repeated),
            RefundStatus::Refused => return Ok(Confirmed::NeverSent),
            seen => {
                if store.settle_refund(&refund, seen, to, provider, outcome, common.clock.now()).await? {
                    if seen.is_final() {
                        tracing::error!(refund_id = %refund.refund_id, from = ?seen, to = ?to, "the provider reversed a settled refund; the ledger follows it");
                    }
                    return Ok(Confirmed::Settled);
                }
            }
        }
    }
    Err(StoreError::Aws("the refund kept changing while it was confirmed".into()))
}

fn is_code(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-' || b.is_ascii_digit())
}
