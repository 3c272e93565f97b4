//! The payment provider, through a port: refunds. A refund is sent with its own identity as the
//! idempotency key ([`crate::domain::refund::Refund::id_for`]), so the provider pays a retried
//! call once. Production talks to the provider over HTTPS ([`HttpPaymentProvider`]); the local
//! stack's mock provider serves the same contract and confirms each refund by a signed webhook.

use crate::outbound::{JsonApi, OutboundError};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// What the provider is asked to give back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundInstruction {
    /// Ours; the provider's idempotency key and the reference its confirmation names.
    pub refund_id: String,
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// The provider's answer to a refund it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundReceipt {
    pub provider_refund_id: String,
    /// Most providers confirm later, by webhook; some say at once.
    pub status: ReceiptStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Pending,
    Succeeded,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundCallError {
    /// The provider said no (the payment is unknown, already fully refunded…): asking again
    /// will not change it.
    #[error("the provider declined the refund: {0}")]
    Declined(String),
    /// No answer, or a failure on its side: ask again with the same key.
    #[error("the provider could not be reached: {0}")]
    Unavailable(String),
}

impl From<OutboundError> for RefundCallError {
    fn from(err: OutboundError) -> Self {
        match err {
            // The provider's words stay out of the ledger and the events (they may name the
            // customer): its status says enough.
            OutboundError::Refused { status, .. } => {
                Self::Declined(format!("declined by the provider (HTTP {status})"))
            }
            OutboundError::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

pub type RefundFuture<'a> = Pin<Box<dyn Future<Output = Result<RefundReceipt, RefundCallError>> + Send + 'a>>;

pub trait PaymentProvider: Send + Sync {
    /// Refund `instruction`; the same refund id asked again is the same refund.
    fn refund<'a>(&'a self, instruction: &'a RefundInstruction) -> RefundFuture<'a>;
}

/// The provider's HTTP contract: `POST {base}/refunds` with the instruction as JSON and its
/// `refund_id` as `Idempotency-Key`; 200/201 with `{"provider_refund_id", "status"}` where status
/// is `pending` or `succeeded`. The outcome of a pending refund comes later as a signed
/// `refund.succeeded` or `refund.failed` event to the payment webhook.
#[derive(Clone)]
pub struct HttpPaymentProvider {
    api: JsonApi,
}

impl HttpPaymentProvider {
    pub fn new(base: impl Into<String>) -> Self {
        Self { api: JsonApi::new(base) }
    }
}

impl PaymentProvider for HttpPaymentProvider {
    fn refund<'a>(&'a self, instruction: &'a RefundInstruction) -> RefundFuture<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(instruction).expect("an instruction serialises");
            let key = instruction.refund_id.clone();
            Ok(self.api.call_for(hyper::Method::POST, "/refunds", Some((body, key))).await?)
        })
    }
}
