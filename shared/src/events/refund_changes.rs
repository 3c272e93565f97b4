//! The refund ledger's changes and what they announce (see [`super::changes`] for the rest):
//!
//! | refund | change | event |
//! |---|---|---|
//! | REQUESTED / SUBMITTED → ISSUED (or recorded ISSUED) | the provider paid it | RefundIssued |
//! | REQUESTED / SUBMITTED → DECLINED | the provider declined it; its amount is free again | RefundDeclined |
//! | recorded REFUSED | more than its payment had left: never sent | RefundRefused |
//!
//! Recording it (REQUESTED) and sending it (SUBMITTED) announce nothing: the RefundRequested it
//! came from said it all.

use super::{Announcement, DomainEvent};
use crate::domain::refund::{Refund, RefundStatus};
use crate::domain::shipment::MissingUnits;
use serde::{Deserialize, Serialize};

/// A refund's end, as its events tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundSettled {
    pub refund_id: String,
    /// The request it came from (a RefundRequested's id, an after-sales ticket's decision).
    pub requested_by: String,
    pub order_id: String,
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<MissingUnits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_refund_id: Option<String>,
    /// Why it was declined or refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

pub(super) fn refund_events(old: Option<Refund>, new: Option<Refund>) -> Vec<Announcement> {
    let Some(new) = new else { return Vec::new() };
    if old.as_ref().is_some_and(|o| o.status == new.status) {
        return Vec::new();
    }
    let settled = RefundSettled {
        refund_id: new.refund_id.clone(),
        requested_by: new.requested_by.clone(),
        order_id: new.order_id.clone(),
        payment_id: new.payment_id.clone(),
        amount_minor: new.amount_minor,
        currency: new.currency.clone(),
        reason: new.reason.clone(),
        lines: new.lines.clone(),
        provider_refund_id: new.provider_refund_id.clone(),
        outcome: new.outcome.clone(),
    };
    let event = match new.status {
        RefundStatus::Issued => DomainEvent::RefundIssued(settled),
        RefundStatus::Declined => DomainEvent::RefundDeclined(settled),
        RefundStatus::Refused => DomainEvent::RefundRefused(settled),
        RefundStatus::Requested | RefundStatus::Submitted => return Vec::new(),
    };
    vec![Announcement::of_payment(&new.refund_id, event)]
}
