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

/// A refund that ended is announced as the ledger holds it (ids, amounts, the reason and the
/// units: nothing personal), its status and outcome included.
pub(super) fn refund_events(old: Option<Refund>, new: Option<Refund>) -> Vec<Announcement> {
    let Some(new) = new else { return Vec::new() };
    if old.as_ref().is_some_and(|o| o.status == new.status) {
        return Vec::new();
    }
    let id = new.refund_id.clone();
    let event = match new.status {
        RefundStatus::Issued => DomainEvent::RefundIssued(new),
        RefundStatus::Declined => DomainEvent::RefundDeclined(new),
        RefundStatus::Refused => DomainEvent::RefundRefused(new),
        RefundStatus::Requested | RefundStatus::Submitted => return Vec::new(),
    };
    vec![Announcement::of_payment(&id, event)]
}
