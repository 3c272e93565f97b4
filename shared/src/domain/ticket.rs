//! An after-sales ticket: what the customer asks after delivery (a return, an exchange, a refund
//! only, a repair, a complaint, a not-received claim), its state machine, and the service-level
//! deadlines it keeps. Pure: the handlers read, decide here, and write conditionally.
//!
//! | status | ways out (trigger) |
//! |---|---|
//! | `OPEN` | approved → `AWAITING_RETURN` (return, exchange, repair) or `CLOSED` (refund only: refunded; complaint: answered); rejected → `CLOSED` (staff); withdrawn → `CLOSED` (customer) |
//! | `AWAITING_RETURN` | goods in at the warehouse → `RECEIVED` (warehouse); withdrawn → `CLOSED` (customer) |
//! | `RECEIVED` | QC passed → `CLOSED` (refunded, replaced or repaired), QC failed → `CLOSED` (rejected, goods sent back) (warehouse) |
//! | `CLOSED` | final |
//!
//! Every deadline not met by its time is breached once (the SLA sweeper); a breach does not move
//! the ticket, it tells staff.

use super::{CustomerId, OrderId, Sku};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketKind {
    Return,
    Exchange,
    RefundOnly,
    Repair,
    Complaint,
    NotReceived,
}

impl TicketKind {
    /// Whether the goods come back (so a unit can be in one such ticket at a time).
    pub fn takes_goods_back(self) -> bool {
        matches!(self, Self::Return | Self::Exchange | Self::Repair)
    }

    /// Whether money may go back.
    pub fn may_refund(self) -> bool {
        matches!(self, Self::Return | Self::RefundOnly | Self::NotReceived)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// Changed their mind: the no-reason window.
    NoReason,
    Faulty,
    Damaged,
    WrongItem,
    NotAsDescribed,
    Late,
    Service,
    Other,
}

impl ReasonCode {
    pub fn is_no_reason(self) -> bool {
        self == Self::NoReason
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatus {
    Open,
    AwaitingReturn,
    Received,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Closure {
    Refunded,
    Replaced,
    Repaired,
    Answered,
    Rejected,
    Withdrawn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SlaKind {
    FirstResponse,
    Plan,
    Resolution,
    Qc,
}

/// One promise the ticket keeps: met by its time, or breached once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub kind: SlaKind,
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub met_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub breached_at: Option<OffsetDateTime>,
}

impl Deadline {
    fn new(kind: SlaKind, due_at: OffsetDateTime) -> Self {
        Self { kind, due_at, met_at: None, breached_at: None }
    }

    pub fn is_pending(&self) -> bool {
        self.met_at.is_none() && self.breached_at.is_none()
    }
}

/// The hours each promise is given, from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaHours {
    pub first_response: u32,
    pub major_first_response: u32,
    pub major_plan: u32,
    pub not_received_resolution: u32,
}

/// The deadlines a ticket opened at `opened_at` keeps: a first response for every ticket (4 h
/// for a major complaint, else the normal hours) and a plan for a major complaint; a resolution
/// for a not-received claim. QC's is set when the goods arrive ([`qc_deadline`]).
pub fn opening_deadlines(kind: TicketKind, major: bool, opened_at: OffsetDateTime, hours: SlaHours) -> Vec<Deadline> {
    let after = |h: u32| opened_at + Duration::hours(i64::from(h));
    let major = major && kind == TicketKind::Complaint;
    let mut deadlines = vec![Deadline::new(
        SlaKind::FirstResponse,
        after(if major { hours.major_first_response } else { hours.first_response }),
    )];
    if major {
        deadlines.push(Deadline::new(SlaKind::Plan, after(hours.major_plan)));
    }
    if kind == TicketKind::NotReceived {
        deadlines.push(Deadline::new(SlaKind::Resolution, after(hours.not_received_resolution)));
    }
    deadlines
}

/// QC is due `qc_days` after the goods were received.
pub fn qc_deadline(received_at: OffsetDateTime, qc_days: u32) -> Deadline {
    Deadline::new(SlaKind::Qc, received_at + Duration::days(i64::from(qc_days)))
}

/// Units of one SKU the ticket is about, at the price the order paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLine {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

/// Why risk control sends a refund to manual review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    FirstOrder,
    RefundRateHigh,
    AmountAboveLimit,
    FlaggedCustomer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub ticket_id: String,
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub kind: TicketKind,
    pub reason: ReasonCode,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<TicketLine>,
    /// Keys of the photos uploaded for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// A complaint flagged major (media exposure, say).
    #[serde(default)]
    pub major: bool,
    pub status: TicketStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closure: Option<Closure>,
    /// Why it needs a person's decision before any refund; empty: none needed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub review: Vec<ReviewReason>,
    pub deadlines: Vec<Deadline>,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: u64,
}

impl Ticket {
    /// What its lines were paid.
    pub fn value_minor(&self) -> Option<i64> {
        self.lines
            .iter()
            .try_fold(0i64, |sum, l| l.unit_price_minor.checked_mul(i64::from(l.quantity))?.checked_add(sum))
    }

    /// The soonest deadline still pending: when the sweeper must look at it next.
    pub fn next_deadline(&self) -> Option<OffsetDateTime> {
        self.deadlines.iter().filter(|d| d.is_pending()).map(|d| d.due_at).min()
    }

    /// Mark every pending deadline due by `now` breached; the kinds breached now.
    pub fn breach_due(&mut self, now: OffsetDateTime) -> Vec<SlaKind> {
        let due = self.deadlines.iter_mut().filter(|d| d.is_pending() && d.due_at <= now);
        due.map(|d| {
            d.breached_at = Some(now);
            d.kind
        })
        .collect()
    }

    /// A promise kept at `now` (a first response, a plan, the resolution, QC done).
    pub fn meet(&mut self, kind: SlaKind, now: OffsetDateTime) {
        for deadline in self.deadlines.iter_mut().filter(|d| d.kind == kind && d.met_at.is_none()) {
            deadline.met_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOURS: SlaHours =
        SlaHours { first_response: 24, major_first_response: 4, major_plan: 24, not_received_resolution: 48 };

    fn ticket(kind: TicketKind, major: bool) -> Ticket {
        let opened_at = OffsetDateTime::UNIX_EPOCH;
        Ticket {
            ticket_id: "t".into(),
            order_id: OrderId::generate(),
            customer_id: CustomerId::parse("c1").unwrap(),
            kind,
            reason: ReasonCode::Service,
            text: String::new(),
            lines: Vec::new(),
            evidence: Vec::new(),
            major,
            status: TicketStatus::Open,
            closure: None,
            review: Vec::new(),
            deadlines: opening_deadlines(kind, major, opened_at, HOURS),
            opened_at,
            updated_at: opened_at,
            version: 1,
        }
    }

    #[test]
    fn a_major_complaint_breaches_its_first_response_at_four_hours_and_not_a_second_before() {
        let mut major = ticket(TicketKind::Complaint, true);
        let four = OffsetDateTime::UNIX_EPOCH + Duration::hours(4);
        assert!(major.breach_due(four - Duration::seconds(1)).is_empty());
        assert_eq!(major.breach_due(four), [SlaKind::FirstResponse]);
        assert!(major.breach_due(four).is_empty(), "once per deadline");
        assert_eq!(major.next_deadline(), Some(OffsetDateTime::UNIX_EPOCH + Duration::hours(24)), "the plan is next");
    }

    #[test]
    fn a_met_deadline_is_never_breached() {
        let mut normal = ticket(TicketKind::Complaint, false);
        normal.meet(SlaKind::FirstResponse, OffsetDateTime::UNIX_EPOCH + Duration::hours(1));
        assert!(normal.breach_due(OffsetDateTime::UNIX_EPOCH + Duration::hours(30)).is_empty());
        assert_eq!(normal.next_deadline(), None);
    }

    #[test]
    fn a_not_received_claim_must_be_resolved_in_48_hours() {
        let claim = ticket(TicketKind::NotReceived, false);
        let resolution = claim.deadlines.iter().find(|d| d.kind == SlaKind::Resolution).unwrap();
        assert_eq!(resolution.due_at, OffsetDateTime::UNIX_EPOCH + Duration::hours(48));
        assert_eq!(ticket(TicketKind::Return, true).deadlines.len(), 1, "only complaints are major");
    }
}
