//! Couriers' KPIs: monthly counters kept from events (never by scanning parcels), and the
//! month-end review that suspends the bottom of the ranking in the fulfilment policy, so courier
//! choice skips them. Months are calendar months in UTC, named `YYYY-MM`.

use super::{LogisticsDeps, LogisticsError};
use crate::domain::logistics_policy::bottom_couriers;
use crate::domain::tracking::TrackingStatus;
use crate::domain::CourierId;
use crate::events::fulfilment::ShipmentDispatched;
use crate::events::logistics::{NotReceivedClaimOpened, ParcelDeliveryEnded};
use crate::handlers::BusEnvelope;
use crate::store::SaveError;
use time::OffsetDateTime;
use tracing::{info, warn};

/// Who the month-end review acts as in the policy's audit trail.
pub const REVIEWER: &str = "logistics:month-end-review";

pub fn month_of(at: OffsetDateTime) -> String {
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

/// The month before `at`'s.
pub fn previous_month(at: OffsetDateTime) -> String {
    let first = at.replace_day(1).expect("day 1 exists");
    month_of(first - time::Duration::days(1))
}

/// Count one event into its courier's month, once per event id.
pub(super) async fn count(deps: &LogisticsDeps, event_id: &str, envelope: BusEnvelope) -> Result<(), LogisticsError> {
    if event_id.is_empty() {
        return Err(LogisticsError::Malformed("event without event_id".into()));
    }
    let malformed = LogisticsError::Malformed;
    let (courier, at, counts): (CourierId, OffsetDateTime, Vec<(&str, u64)>) = match envelope.detail_type.as_str() {
        "ShipmentDispatched" => {
            let dispatched: ShipmentDispatched = envelope.detail_of(&["ShipmentDispatched"]).map_err(malformed)?;
            // Events from before the field existed count in the month they are processed.
            let at = dispatched.handed_over_at.unwrap_or_else(|| deps.common.clock.now());
            (dispatched.courier, at, vec![("handed_over", 1)])
        }
        "ParcelDeliveryEnded" => {
            let ended: ParcelDeliveryEnded = envelope.detail_of(&["ParcelDeliveryEnded"]).map_err(malformed)?;
            let counts = match ended.status {
                TrackingStatus::Delivered => vec![("delivered", 1), ("delivered_on_time", u64::from(ended.on_time))],
                TrackingStatus::Lost => vec![("lost", 1)],
                _ => return Ok(()),
            };
            (ended.parcel.courier, ended.at, counts)
        }
        "NotReceivedClaimOpened" => {
            let claim: NotReceivedClaimOpened = envelope.detail_of(&["NotReceivedClaimOpened"]).map_err(malformed)?;
            (claim.parcel.courier, claim.opened_at, vec![("complaints", 1)])
        }
        other => return Err(LogisticsError::Malformed(format!("unexpected detail-type {other}"))),
    };
    let now = deps.common.clock.now();
    let counted = deps.common.store.count_for_courier(event_id, &courier, &month_of(at), &counts, now).await?;
    if !counted {
        info!(event_id, "event counted before");
    }
    Ok(())
}

/// At the first run of a month, review the month before: suspend the bottom couriers by the
/// policy's score. Runs once per month (the review's marker is written last, so a review cut
/// short is made again, to the same result).
pub async fn review_last_month(deps: &LogisticsDeps, now: OffsetDateTime) -> Result<Vec<CourierId>, LogisticsError> {
    let store = &deps.common.store;
    let month = previous_month(now);
    if store.kpi_reviewed(&month).await? {
        return Ok(Vec::new());
    }
    let policy = deps.policy(now).await?;
    let months = store.courier_months(&month).await?;
    let bottom = bottom_couriers(&months, &policy.scoring);
    if !bottom.is_empty() {
        suspend(deps, &bottom, now).await?;
    }
    store.record_kpi_review(&month, &bottom, now).await?;
    info!(month, suspended = ?bottom, "courier month reviewed");
    Ok(bottom)
}

/// Mark `couriers` suspended in the fulfilment policy (a versioned, audited save; retried when
/// staff saved meanwhile).
async fn suspend(deps: &LogisticsDeps, couriers: &[CourierId], now: OffsetDateTime) -> Result<(), LogisticsError> {
    let store = &deps.common.store;
    for _ in 0..deps.max_attempts {
        let mut policy = store.fulfilment_policy().await?.unwrap_or_default();
        let mut changed = false;
        for rule in policy.couriers.iter_mut().filter(|r| couriers.contains(&r.id) && !r.suspended) {
            rule.suspended = true;
            changed = true;
        }
        if !changed {
            return Ok(());
        }
        match store.save_policy(&policy, REVIEWER, now).await {
            Ok(_) => return Ok(()),
            Err(SaveError::VersionConflict { .. }) => warn!("fulfilment policy changed during the review; again"),
            Err(SaveError::Store(e)) => return Err(e.into()),
        }
    }
    Err(LogisticsError::Contended(deps.max_attempts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_month_before_crosses_the_year() {
        assert_eq!(previous_month(datetime!(2027-01-01 00:00 UTC)), "2026-12");
        assert_eq!(previous_month(datetime!(2026-11-30 23:59 UTC)), "2026-10");
        assert_eq!(month_of(datetime!(2026-11-30 23:59 UTC)), "2026-11");
    }
}
