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

pub use super::sla::{opening_deadlines, qc_deadline, return_deadline, Deadline, SlaHours, SlaKind};
use super::values::Invalid;
use super::{Allocation, CourierId, CustomerId, OrderId, ShipmentId, Sku};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A ticket's id: its order and its number within the order (`<order id>-T<n>`), so every route
/// that names a ticket finds its order's partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketId {
    pub order_id: OrderId,
    pub number: u32,
}

/// Tickets one order may have: enough for every line twice over, not a flood.
pub const MAX_TICKETS_PER_ORDER: u32 = 50;

impl TicketId {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let malformed = || Invalid::new("ticket-id-malformed", "a ticket id is <order id>-T<number>");
        let (order, number) = value.rsplit_once("-T").ok_or_else(malformed)?;
        let order_id = OrderId::parse(order).map_err(|_| malformed())?;
        let number: u32 = number.parse().map_err(|_| malformed())?;
        if !(1..=MAX_TICKETS_PER_ORDER).contains(&number) || number.to_string().len() != value.len() - order.len() - 2 {
            return Err(malformed());
        }
        Ok(Self { order_id, number })
    }
}

impl std::fmt::Display for TicketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-T{}", self.order_id, self.number)
    }
}

impl TryFrom<String> for TicketId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).map_err(|e| e.detail)
    }
}

impl From<TicketId> for String {
    fn from(value: TicketId) -> String {
        value.to_string()
    }
}

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

    /// Kinds about particular units: a unit is in one open ticket of these at a time.
    pub fn takes_units(self) -> bool {
        matches!(self, Self::Return | Self::Exchange | Self::RefundOnly | Self::Repair)
    }

    /// Whether money may go back (so risk review applies).
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

/// Units of one SKU the ticket is about, at the price the order paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLine {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

/// Staff's answer to an open ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub approved: bool,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The waybill the customer sends the goods back with, booked through the courier port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnWaybill {
    pub courier: CourierId,
    pub number: String,
    pub label_url: String,
}

/// A warehouse user's quality check of returned goods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QcResult {
    pub passed: bool,
    pub notes: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<String>,
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRefund {
    /// The payment the money goes back to (`cod:<order>` for cash on delivery).
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
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
    pub ticket_id: TicketId,
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
    /// The order's risk score at intake, shown to staff beside the review reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<u32>,
    /// The parcel the goods came in (goods-back kinds): the return goes to its warehouse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<ShipmentId>,
    pub deadlines: Vec<Deadline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_waybill: Option<ReturnWaybill>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub received_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qc: Option<QcResult>,
    /// The money to give back, fixed when the refund is decided: announced once as
    /// RefundRequested when the ticket closes refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<TicketRefund>,
    /// An exchange's replacement units, reserved when it was approved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replacement: Vec<Allocation>,
    /// The parcel taking goods back to the customer after QC: an exchange's replacement, a
    /// repaired item, or goods that failed the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<ShipmentId>,
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

    /// The soonest deadline not met (breached ones included): what staff should answer first.
    pub fn nearest_unmet(&self) -> Option<OffsetDateTime> {
        self.deadlines.iter().filter(|d| d.met_at.is_none()).map(|d| d.due_at).min()
    }

    /// Closed at `now` with `closure`: every promise still open is kept by the closing itself.
    pub fn close(&mut self, closure: Closure, now: OffsetDateTime) {
        self.status = TicketStatus::Closed;
        self.closure = Some(closure);
        for deadline in self.deadlines.iter_mut().filter(|d| d.met_at.is_none() && d.breached_at.is_none()) {
            deadline.met_at = Some(now);
        }
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
    use time::Duration;

    #[test]
    fn a_ticket_id_reads_back_as_written_and_nothing_else_reads() {
        let id = TicketId { order_id: OrderId::generate(), number: 7 };
        assert_eq!(TicketId::parse(&id.to_string()), Ok(id.clone()));
        for bad in
            [format!("{}-T0", id.order_id), format!("{}-T07", id.order_id), format!("{}-7", id.order_id), "x-T1".into()]
        {
            assert!(TicketId::parse(&bad).is_err(), "{bad}");
        }
    }

    const HOURS: SlaHours =
        SlaHours { first_response: 24, major_first_response: 4, major_plan: 24, not_received_resolution: 48 };

    fn ticket(kind: TicketKind, major: bool) -> Ticket {
        let opened_at = OffsetDateTime::UNIX_EPOCH;
        Ticket {
            ticket_id: TicketId { order_id: OrderId::generate(), number: 1 },
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
            risk_score: None,
            shipment_id: None,
            deadlines: opening_deadlines(kind, major, opened_at, HOURS),
            decision: None,
            return_waybill: None,
            received_at: None,
            qc: None,
            refund: None,
            replacement: Vec::new(),
            outbound: None,
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
