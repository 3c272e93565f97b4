//! Service-level deadlines of an after-sales ticket: which a ticket gets when it opens (a first
//! response; a plan for a major complaint; a resolution for a not-received claim) and the QC
//! deadline that starts when returned goods arrive. Every time is UTC; hours and days are
//! elapsed time (24 h each), not business hours.

use super::ticket::TicketKind;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SlaKind {
    FirstResponse,
    Plan,
    Resolution,
    Qc,
    /// The customer's goods are due at the warehouse: past it, staff follow up or reject.
    ReturnBy,
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

/// Approved goods are due back `return_days` after the approval.
pub fn return_deadline(approved_at: OffsetDateTime, return_days: u32) -> Deadline {
    Deadline::new(SlaKind::ReturnBy, approved_at + Duration::days(i64::from(return_days)))
}

/// QC is due `qc_days` after the goods were received.
pub fn qc_deadline(received_at: OffsetDateTime, qc_days: u32) -> Deadline {
    Deadline::new(SlaKind::Qc, received_at + Duration::days(i64::from(qc_days)))
}
