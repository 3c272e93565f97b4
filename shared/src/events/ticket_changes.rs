//! After-sales tickets' changes and what they announce (see [`super::changes`] for the rest):
//!
//! | ticket | change | event |
//! |---|---|---|
//! | stored | opened | TicketOpened |
//! | a deadline's `breached_at` set | the sweeper found it not kept | SlaBreached (one per deadline) |
//! | → CLOSED | resolved | TicketResolved |
//! | → CLOSED refunded | with its refund fixed | RefundRequested (id `RefundRequested:<ticket>`) |
//!
//! Events carry ids, kinds, SKUs and amounts: never the customer's free text or photos.

use super::{Announcement, DomainEvent, RefundRequested};
use crate::domain::ticket::{Closure, SlaKind, Ticket, TicketId, TicketKind, TicketLine, TicketStatus};
use crate::domain::{Allocation, OrderId, ShipmentId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketOpened {
    pub ticket_id: TicketId,
    pub order_id: OrderId,
    pub kind: TicketKind,
    pub lines: Vec<TicketLine>,
    /// Risk control sent a refund of it to manual review.
    pub needs_review: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketResolved {
    pub ticket_id: TicketId,
    pub order_id: OrderId,
    pub kind: TicketKind,
    pub closure: Option<Closure>,
    pub lines: Vec<TicketLine>,
    /// An exchange's replacement units, sold to the customer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replacement: Vec<Allocation>,
    /// The after-sales parcel fulfilment ships back to the customer (the replacement, the
    /// repaired item, goods that failed QC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_shipment: Option<ShipmentId>,
}

/// After-sales over for an order: its window passed with every ticket closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderArchived {
    pub order_id: OrderId,
    #[serde(with = "time::serde::rfc3339")]
    pub delivered_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub archived_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaBreached {
    pub ticket_id: TicketId,
    pub order_id: OrderId,
    pub kind: TicketKind,
    pub deadline: SlaKind,
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
}

pub(super) fn ticket_events(old: Option<Ticket>, new: Option<Ticket>) -> Vec<Announcement> {
    let Some(new) = new else { return Vec::new() };
    let keyed = |suffix: &str, event: DomainEvent| Announcement {
        event_id: format!("{}:{}{suffix}", event.detail_type(), new.ticket_id),
        entity_id: new.order_id.to_string(),
        version: Some(new.version),
        event,
    };
    let mut announced = Vec::new();
    if old.is_none() {
        let opened = TicketOpened {
            ticket_id: new.ticket_id.clone(),
            order_id: new.order_id,
            kind: new.kind,
            lines: new.lines.clone(),
            needs_review: !new.review.is_empty(),
        };
        announced.push(keyed("", DomainEvent::TicketOpened(opened)));
    }
    for deadline in new.deadlines.iter().filter(|d| d.breached_at.is_some()) {
        let was = old
            .as_ref()
            .and_then(|o| o.deadlines.iter().find(|d| d.kind == deadline.kind && d.due_at == deadline.due_at));
        if was.is_some_and(|d| d.breached_at.is_some()) {
            continue;
        }
        let breached = SlaBreached {
            ticket_id: new.ticket_id.clone(),
            order_id: new.order_id,
            kind: new.kind,
            deadline: deadline.kind,
            due_at: deadline.due_at,
        };
        let suffix = format!(":{:?}:{}", deadline.kind, deadline.due_at.unix_timestamp());
        announced.push(keyed(&suffix, DomainEvent::SlaBreached(breached)));
    }
    let was_closed = old.as_ref().is_some_and(|o| o.status == TicketStatus::Closed);
    if new.status == TicketStatus::Closed && !was_closed {
        let resolved = TicketResolved {
            ticket_id: new.ticket_id.clone(),
            order_id: new.order_id,
            kind: new.kind,
            closure: new.closure,
            lines: new.lines.clone(),
            replacement: if new.closure == Some(Closure::Replaced) { new.replacement.clone() } else { Vec::new() },
            outbound_shipment: new.outbound.clone(),
        };
        announced.push(keyed("", DomainEvent::TicketResolved(resolved)));
        if let (Some(Closure::Refunded), Some(refund)) = (new.closure, &new.refund) {
            let request = RefundRequested {
                order_id: new.order_id.to_string(),
                payment_id: refund.payment_id.clone(),
                amount_minor: refund.amount_minor,
                currency: refund.currency.clone(),
                reason: format!("after-sales ticket {}", new.ticket_id),
                lines: Vec::new(),
            };
            announced.push(keyed("", DomainEvent::RefundRequested(request)));
        }
    }
    announced
}
