//! A parcel on its way: the checkpoints the courier reported (pushed or polled), the status they
//! add up to, the alerts its delays raise and clear, a customer's "signed but not received"
//! claim, and a cash-on-delivery collection. It lives on the shipment (`Shipment::tracking`), so
//! a parcel's every change is the shipment's conditional write and its events come from the
//! stream. Everything here is pure: the handlers read, call these, and write.

use super::logistics_policy::LogisticsPolicy;
use super::values::Invalid;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The courier's codes, normalised; the raw code is kept beside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrackingStatus {
    InfoReceived,
    InTransit,
    OutForDelivery,
    AvailableForPickup,
    AttemptFailed,
    Delivered,
    Exception,
    ReturnedToSender,
    Lost,
}

impl TrackingStatus {
    /// The courier has the parcel (anything past the label).
    pub fn collected(self) -> bool {
        self != Self::InfoReceived
    }

    /// Nothing more is expected of the courier.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::ReturnedToSender | Self::Lost)
    }
}

/// Who signed for a delivered parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    Customer,
    Other,
}

/// Where a delivered parcel was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryPlace {
    Door,
    PickupPoint,
    Locker,
    Reception,
    Neighbour,
}

impl DeliveryPlace {
    /// Places where someone other than the customer signs for the parcel.
    pub fn signed_by_others(self) -> bool {
        matches!(self, Self::Neighbour | Self::Reception)
    }
}

/// One event of the courier's: when, where, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub status: TrackingStatus,
    pub raw_code: String,
    pub place: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<Recipient>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_at: Option<DeliveryPlace>,
}

impl Checkpoint {
    /// The same event pushed and polled has the same time and raw code: it is stored once.
    pub fn key(&self) -> (i64, &str) {
        (self.at.unix_timestamp(), self.raw_code.as_str())
    }

    pub fn validate(&self, now: OffsetDateTime) -> Result<(), Invalid> {
        let token = |s: &str, max: usize| !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control);
        if !token(&self.raw_code, 40) {
            return Err(Invalid::new("checkpoint-invalid", "raw_code is 1 to 40 printable characters"));
        }
        if self.place.len() > 120 || self.place.chars().any(char::is_control) {
            return Err(Invalid::new("checkpoint-invalid", "place is at most 120 printable characters"));
        }
        // A courier's clock may run a little ahead; a checkpoint from the future beyond that is
        // wrong and would hide every later update.
        if self.at > now + time::Duration::minutes(15) {
            return Err(Invalid::new("checkpoint-in-future", "at is more than 15 minutes ahead"));
        }
        Ok(())
    }
}

/// The delays and anomalies the source documents name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertKind {
    /// Handed over, not collected by the courier in time (72 h).
    NotCollected,
    /// Collected, then no tracking update in time (24 h).
    NoUpdate,
    /// Delivered, but signed by someone else or left where the customer did not choose.
    AbnormalSignOff,
    /// A not-received claim unresolved in time (48 h).
    ClaimOverdue,
}

impl AlertKind {
    pub const ALL: [AlertKind; 4] = [Self::NotCollected, Self::NoUpdate, Self::AbnormalSignOff, Self::ClaimOverdue];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotCollected => "NOT_COLLECTED",
            Self::NoUpdate => "NO_UPDATE",
            Self::AbnormalSignOff => "ABNORMAL_SIGN_OFF",
            Self::ClaimOverdue => "CLAIM_OVERDUE",
        }
    }

    /// The notification service's template for the customer's message about this alert.
    pub fn customer_template(self) -> &'static str {
        match self {
            Self::NotCollected => "parcel-not-collected",
            Self::NoUpdate => "parcel-delayed",
            Self::AbnormalSignOff => "parcel-signed-off-elsewhere",
            Self::ClaimOverdue => "claim-taking-longer",
        }
    }
}

/// One raising of an alert: raised once while its condition holds, cleared when it ends. The
/// same condition arising again later is a new alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelAlert {
    /// `<KIND>-<n>`: unique within the parcel.
    pub id: String,
    pub kind: AlertKind,
    #[serde(with = "time::serde::rfc3339")]
    pub raised_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub cleared_at: Option<OffsetDateTime>,
    /// When a delivery of ParcelStuck claimed the chase (the claim lapses if it never ends).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub chase_started_at: Option<OffsetDateTime>,
    /// When the courier was chased and the customer told.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub chased_at: Option<OffsetDateTime>,
}

/// How staff settle a not-received claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClaimResolution {
    /// Send the goods again (after-sales makes the new shipment).
    Reship,
    /// Refund this much of what was paid.
    Refund { amount_minor: i64 },
    /// Pay this much on top, the goods not in question.
    Compensation { amount_minor: i64 },
}

impl ClaimResolution {
    /// What the resolution pays the customer, if it pays.
    pub fn amount_minor(self) -> Option<i64> {
        match self {
            Self::Reship => None,
            Self::Refund { amount_minor } | Self::Compensation { amount_minor } => Some(amount_minor),
        }
    }
}

/// "Signed but not received": opened by the customer on a delivered parcel, resolved by staff
/// within the policy's hours. After-sales will open these as tickets of kind not-received, on
/// this one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotReceivedClaim {
    pub claim_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub resolve_by: OffsetDateTime,
    pub opened_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<ClaimResolution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
}

/// The courier's report that it collected the cash for a cash-on-delivery parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashCollection {
    pub report_id: String,
    pub amount_minor: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub collected_at: OffsetDateTime,
}

/// A parcel's tracking, from its label to the end of its delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub handed_over_at: Option<OffsetDateTime>,
    /// Delivery promised by (hand-over plus the policy's days for the speed), set at the first
    /// look after the hand-over and kept.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub promised_by: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TrackingStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_code: Option<String>,
    /// By event time, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoints: Vec<Checkpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub collected_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<ParcelAlert>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<NotReceivedClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CashCollection>,
    /// When staff declared it lost: LOST from then on.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub declared_lost_at: Option<OffsetDateTime>,
    /// Where the customer said the parcel may be left; none chosen: the policy's default places.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chosen_places: Vec<DeliveryPlace>,
    /// The customer said they have it (clears an abnormal sign-off).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub receipt_confirmed_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub next_poll_at: Option<OffsetDateTime>,
    /// When the poller must look again (a poll or a threshold); none when nothing can happen
    /// without an outside event. Indexed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub next_check_at: Option<OffsetDateTime>,
}

/// Checkpoints kept per parcel: far more than any real parcel has; beyond it the oldest go.
pub const MAX_CHECKPOINTS: usize = 100;

/// The raw code of the checkpoint staff record when they declare a parcel lost.
pub const DECLARED_LOST: &str = "DECLARED_LOST";

impl Tracking {
    /// Handed to the courier at `now`: the poller looks at once to set the parcel's schedule.
    pub fn hand_over(&mut self, now: OffsetDateTime) {
        self.handed_over_at = Some(now);
        self.next_poll_at = Some(now);
        self.next_check_at = Some(now);
    }

    pub fn is_final(&self) -> bool {
        self.status.is_some_and(TrackingStatus::is_final)
    }

    /// Record `incoming`, each checkpoint once, whatever the order they come in; the status
    /// follows the latest by event time and never leaves DELIVERED except for a return. Answers
    /// how many were new.
    pub fn record(&mut self, incoming: &[Checkpoint]) -> usize {
        let mut added = 0;
        for checkpoint in incoming {
            if self.checkpoints.iter().any(|c| c.key() == checkpoint.key()) {
                continue;
            }
            let at = self.checkpoints.partition_point(|c| c.at <= checkpoint.at);
            self.checkpoints.insert(at, checkpoint.clone());
            added += 1;
        }
        self.trim();
        if added > 0 {
            self.fold();
        }
        added
    }

    /// Staff declared the parcel lost (the courier admits it, or is silent past all chasing):
    /// recorded as a checkpoint of their own, and the status stays LOST whatever the courier
    /// reports after, since the order has been settled as undelivered.
    pub fn declare_lost(&mut self, now: OffsetDateTime) {
        self.declared_lost_at = Some(now);
        let lost = Checkpoint {
            at: now,
            status: TrackingStatus::Lost,
            raw_code: DECLARED_LOST.into(),
            place: String::new(),
            signed_by: None,
            left_at: None,
        };
        if self.record(&[lost]) == 0 {
            self.fold();
        }
    }

    /// Over the cap, the oldest checkpoints go, except those the status is folded from (the
    /// first collection, every delivery, return and loss, and the latest), so trimming never
    /// changes the status, the collection or the delivery.
    fn trim(&mut self) {
        while self.checkpoints.len() > MAX_CHECKPOINTS {
            let first_collected = self.checkpoints.iter().position(|c| c.status.collected());
            let last = self.checkpoints.len() - 1;
            let droppable = (0..last).find(|&i| Some(i) != first_collected && !self.checkpoints[i].status.is_final());
            match droppable {
                Some(i) => drop(self.checkpoints.remove(i)),
                None => break,
            }
        }
    }

    fn fold(&mut self) {
        if let Some(at) = self.declared_lost_at {
            self.status = Some(TrackingStatus::Lost);
            self.raw_code = Some(DECLARED_LOST.into());
            self.delivered_at = None;
            self.collected_at = self.checkpoints.iter().find(|c| c.status.collected() && c.at <= at).map(|c| c.at);
            return;
        }
        let mut status: Option<&Checkpoint> = None;
        for checkpoint in &self.checkpoints {
            let stays_delivered = status.is_some_and(|s| s.status == TrackingStatus::Delivered)
                && checkpoint.status != TrackingStatus::ReturnedToSender;
            if !stays_delivered {
                status = Some(checkpoint);
            }
        }
        self.status = status.map(|c| c.status);
        self.raw_code = status.map(|c| c.raw_code.clone());
        self.delivered_at = status.filter(|c| c.status == TrackingStatus::Delivered).map(|c| c.at);
        self.collected_at = self.checkpoints.iter().find(|c| c.status.collected()).map(|c| c.at);
    }

    /// The latest checkpoint, by event time.
    pub fn last_update_at(&self) -> Option<OffsetDateTime> {
        self.checkpoints.last().map(|c| c.at)
    }

    /// The checkpoint the parcel was delivered by, if it is delivered.
    pub fn delivery(&self) -> Option<&Checkpoint> {
        let at = self.delivered_at?;
        self.checkpoints.iter().rev().find(|c| c.at == at && c.status == TrackingStatus::Delivered)
    }

    /// Whether `kind`'s condition holds at `now`, and else when it would start to (if nothing
    /// else happens): `Ok(())` holds, `Err(Some(t))` from `t`, `Err(None)` not foreseeably.
    fn condition(
        &self,
        kind: AlertKind,
        policy: &LogisticsPolicy,
        now: OffsetDateTime,
    ) -> Result<(), Option<OffsetDateTime>> {
        let from = |t: OffsetDateTime| if now >= t { Ok(()) } else { Err(Some(t)) };
        let hours = |h: u32| time::Duration::hours(i64::from(h));
        let Some(handed_over) = self.handed_over_at else { return Err(None) };
        match kind {
            AlertKind::NotCollected if self.collected_at.is_none() && !self.is_final() => {
                from(handed_over + hours(policy.not_collected_hours))
            }
            AlertKind::NoUpdate if self.collected_at.is_some() && !self.is_final() => {
                from(self.last_update_at().unwrap_or(handed_over) + hours(policy.no_update_hours))
            }
            AlertKind::AbnormalSignOff if self.status == Some(TrackingStatus::Delivered) => {
                let delivery = self.delivery();
                let signed_by_other = delivery.and_then(|c| c.signed_by) == Some(Recipient::Other);
                let place = delivery.and_then(|c| c.left_at);
                let chosen = if self.chosen_places.is_empty() { &policy.chosen_places } else { &self.chosen_places };
                let unchosen_place = place.is_some_and(|p| !chosen.contains(&p));
                // Someone else signing is what a chosen neighbour or reception desk means.
                let signed_by_other =
                    signed_by_other && !place.is_some_and(|p| chosen.contains(&p) && p.signed_by_others());
                let abnormal = (signed_by_other || unchosen_place) && self.receipt_confirmed_at.is_none();
                if abnormal {
                    Ok(())
                } else {
                    Err(None)
                }
            }
            AlertKind::ClaimOverdue => match &self.claim {
                Some(claim) if claim.resolution.is_none() => from(claim.resolve_by),
                _ => Err(None),
            },
            _ => Err(None),
        }
    }

    /// The open alert of `kind`, if one is.
    pub fn open_alert(&self, kind: AlertKind) -> Option<&ParcelAlert> {
        self.alerts.iter().find(|a| a.kind == kind && a.cleared_at.is_none())
    }

    /// Raise each alert whose condition holds and is not raised yet, clear each raised one whose
    /// condition has ended, and set when to look next (the next poll or threshold).
    pub fn evaluate(&mut self, policy: &LogisticsPolicy, now: OffsetDateTime) {
        let mut next: Option<OffsetDateTime> = self.next_poll_at.filter(|_| !self.is_final());
        for kind in AlertKind::ALL {
            let holds = self.condition(kind, policy, now);
            let open = self.alerts.iter().position(|a| a.kind == kind && a.cleared_at.is_none());
            match (holds, open) {
                (Ok(()), None) => {
                    let n = self.alerts.iter().filter(|a| a.kind == kind).count() + 1;
                    let id = format!("{}-{n}", kind.as_str());
                    self.alerts.push(ParcelAlert {
                        id,
                        kind,
                        raised_at: now,
                        cleared_at: None,
                        chase_started_at: None,
                        chased_at: None,
                    });
                }
                (Err(starts), Some(i)) => {
                    self.alerts[i].cleared_at = Some(now);
                    next = earliest(next, starts);
                }
                (Err(starts), None) => next = earliest(next, starts),
                (Ok(()), Some(_)) => {}
            }
        }
        self.next_check_at = next;
    }
}

fn earliest(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
#[path = "tracking_tests.rs"]
mod tests;
