//! A refund: money going back to the customer, paid once. Its identity comes from the request
//! that asked for it (the RefundRequested event's deterministic id), so every redelivery of that
//! request, and every retry of the call to the provider, names the same refund; the provider is
//! given that identity as its idempotency key and never a new one, so a lost answer cannot pay
//! twice.

use super::shipment::MissingUnits;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Recorded in the ledger; the provider not yet asked (or its answer lost).
    Requested,
    /// The provider took it; its signed confirmation is awaited.
    Submitted,
    /// The provider confirmed the money went back (RefundIssued). Final.
    Issued,
    /// The provider declined it; the amount is free again in the ledger (RefundDeclined). Final.
    Declined,
    /// More than the payment has left to give back: never sent to the provider (RefundRefused).
    /// Final.
    Refused,
}

impl RefundStatus {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Issued | Self::Declined | Self::Refused)
    }
}

/// One refund, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// `rf_` and 32 hex digits of the request's id: also the provider's idempotency key.
    pub refund_id: String,
    /// The RefundRequested event (or ticket decision) it came from.
    pub requested_by: String,
    /// As requested: a refund may be of a payment for an order that is not ours.
    pub order_id: String,
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    /// The units refunded, when it is for some units only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<MissingUnits>,
    pub status: RefundStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_refund_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub settled_at: Option<OffsetDateTime>,
    /// Why it was declined or refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

impl Refund {
    /// The refund a request with id `request_id` names: the same for every delivery of it.
    pub fn id_for(request_id: &str) -> String {
        let digest = Sha256::digest(request_id.as_bytes());
        format!("rf_{}", &hex::encode(digest)[..32])
    }

    /// Whether `raw` could be a refund id (the provider's confirmation names one).
    pub fn is_id(raw: &str) -> bool {
        raw.len() == 35 && raw.starts_with("rf_") && raw[3..].bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// What a payment has given back so far: the ledger's running total, checked on every refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunds {
    pub payment_id: String,
    /// What the payment brought in for goods, or the whole payment when none of it is kept.
    pub paid_minor: i64,
    /// Every refund recorded and not declined.
    pub refunded_minor: i64,
    pub currency: String,
}

impl PaymentRefunds {
    /// What may still be given back.
    pub fn room(&self) -> i64 {
        self.paid_minor.saturating_sub(self.refunded_minor).max(0)
    }
}

/// The provider's signed word on a refund it took, sent to the payment webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundConfirmation {
    /// The provider's event id.
    pub id: String,
    #[serde(rename = "type")]
    pub outcome: RefundOutcome,
    pub created: i64,
    pub data: ConfirmedRefund,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundOutcome {
    #[serde(rename = "refund.succeeded")]
    Succeeded,
    #[serde(rename = "refund.failed")]
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedRefund {
    /// Ours, as we sent it.
    pub refund_id: String,
    pub provider_refund_id: String,
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

impl RefundConfirmation {
    /// Whether it speaks of `refund` as we sent it (same payment, amount and currency).
    pub fn matches(&self, refund: &Refund) -> bool {
        self.data.payment_id == refund.payment_id
            && self.data.amount_minor == refund.amount_minor
            && self.data.currency == refund.currency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_names_the_same_refund_and_another_request_another() {
        let first = Refund::id_for("RefundRequested:01J:v7");
        assert_eq!(first, Refund::id_for("RefundRequested:01J:v7"));
        assert_ne!(first, Refund::id_for("RefundRequested:01J:v8"));
        assert!(Refund::is_id(&first), "{first}");
        assert!(!Refund::is_id("rf_xyz"));
    }

    #[test]
    fn room_is_what_the_payment_has_left_and_never_negative() {
        let mut ledger =
            PaymentRefunds { payment_id: "p".into(), paid_minor: 100, refunded_minor: 30, currency: "CNY".into() };
        assert_eq!(ledger.room(), 70);
        ledger.refunded_minor = 130;
        assert_eq!(ledger.room(), 0);
    }
}
