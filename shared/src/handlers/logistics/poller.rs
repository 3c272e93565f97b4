//! Function tracking-poller (schedule, every minute): the parcels whose next check is due (the
//! `TRACK#nnn` buckets of the waiting index, soonest first, at most the policy's bound per run:
//! the index is the continuation, so what one run leaves the next finds first). Each due parcel
//! whose poll is due is polled through the Courier port, within its courier's rate: calls paced
//! at the per-second rate and granted from the per-day budget; the others are rescheduled. Every
//! parcel looked at has its alerts re-evaluated, so an alert is raised at the first run after its
//! threshold. The first run of a month reviews the month before ([`super::kpi`]).

use super::{change_parcel, kpi, LogisticsDeps, LogisticsError, ParcelChange};
use crate::domain::tracking::Checkpoint;
use crate::domain::{CourierId, Shipment};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;
use tracing::{info, warn};

/// What a poll found, and when to poll next.
type Poll = (OffsetDateTime, Vec<Checkpoint>);

/// Parcels rescheduled at once (not polled: no courier rate applies).
const RESCHEDULE_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct PollerSettings {
    /// The part of a run spent polling: a courier gets at most its per-second rate times this.
    /// With the writes after it, a run stays inside the function's 60 s timeout.
    pub poll_seconds: u32,
}

impl Default for PollerSettings {
    fn default() -> Self {
        Self { poll_seconds: 30 }
    }
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PollReport {
    pub due: usize,
    pub polled: usize,
    /// Due for a poll but past the courier's rate or budget: rescheduled.
    pub deferred: usize,
    pub failed: usize,
    pub suspended: Vec<CourierId>,
}

pub async fn run(deps: &LogisticsDeps, settings: &PollerSettings) -> Result<PollReport, LogisticsError> {
    let store = &deps.common.store;
    let now = deps.common.clock.now();
    let mut report = PollReport::default();
    match kpi::review_last_month(deps, now).await {
        Ok(suspended) => report.suspended = suspended,
        Err(e) => warn!(error = %e, "month-end courier review failed; the next run tries again"),
    }
    let policy = deps.policy(now).await?;
    let bound = policy.max_parcels_per_run as usize;
    // Every bucket's soonest, merged by due time: a backlog in one bucket cannot starve the rest.
    let limit = i32::try_from(bound).unwrap_or(i32::MAX);
    let mut due: Vec<Shipment> = Vec::new();
    for bucket in 0..store.buckets() {
        match store.parcels_due(bucket, now, limit).await {
            Ok(parcels) => due.extend(parcels),
            Err(e) => warn!(bucket, error = %e, "bucket not read; the next run reads it"),
        }
    }
    due.sort_by_key(|s| s.tracking.as_ref().and_then(|t| t.next_check_at));
    due.truncate(bound);
    report.due = due.len();
    let mut by_courier: BTreeMap<CourierId, Vec<Shipment>> = BTreeMap::new();
    let mut checks = Vec::new();
    for parcel in due {
        let tracking = parcel.tracking.clone().unwrap_or_default();
        let poll_due = !tracking.is_final() && tracking.next_poll_at.is_none_or(|t| t <= now);
        match (&parcel.courier, poll_due) {
            (Some(choice), true) => by_courier.entry(choice.courier.clone()).or_default().push(parcel),
            _ => checks.push(parcel),
        }
    }
    let courier_runs =
        by_courier.into_iter().map(|(courier, parcels)| poll_courier(deps, settings, courier, parcels, now));
    for outcome in futures::future::join_all(courier_runs).await {
        match outcome {
            Ok((polled, deferred, failed)) => {
                report.polled += polled;
                report.deferred += deferred;
                report.failed += failed;
            }
            // Its parcels stay due; the other couriers' and the alert checks go on.
            Err(e) => warn!(error = %e, "a courier's polls failed; the next run tries again"),
        }
    }
    report.failed += reschedule_all(deps, checks.into_iter().map(|p| (p, None)).collect()).await;
    info!(
        due = report.due,
        polled = report.polled,
        deferred = report.deferred,
        failed = report.failed,
        "tracking poll run"
    );
    Ok(report)
}

/// Poll one courier's due parcels at its per-second rate, as many as its day's budget grants;
/// defer the rest. Answers (polled, deferred, failed).
async fn poll_courier(
    deps: &LogisticsDeps,
    settings: &PollerSettings,
    courier: CourierId,
    parcels: Vec<Shipment>,
    now: OffsetDateTime,
) -> Result<(usize, usize, usize), LogisticsError> {
    let policy = deps.policy(now).await?;
    let limits = policy.limits_of(&courier);
    let per_run = limits.polls_per_second.saturating_mul(settings.poll_seconds) as usize;
    let wanted = u32::try_from(parcels.len().min(per_run)).unwrap_or(u32::MAX);
    let day = now.date().to_string();
    let budget = deps.common.store.claim_polls(&courier, &day, wanted, limits.polls_per_day, now).await?;
    let granted = budget.granted as usize;
    let spacing = Duration::from_secs_f64(1.0 / f64::from(limits.polls_per_second.max(1)));
    let start = tokio::time::Instant::now();
    let (mut polled, mut failed) = (0, 0);
    for (i, parcel) in parcels.iter().take(granted).enumerate() {
        tokio::time::sleep_until(start + spacing.mul_f64(i as f64)).await;
        let waybill = parcel.waybill.as_ref().map(|w| w.number.as_str()).unwrap_or_default();
        let next = match deps.courier.track(&courier, waybill).await {
            Ok(checkpoints) => {
                polled += 1;
                (deps.common.clock.now() + policy.poll_interval(&courier), checkpoints)
            }
            Err(e) => {
                warn!(shipment_id = %parcel.shipment_id, error = %e, "tracking poll failed; polled again later");
                failed += 1;
                (deps.common.clock.now() + time::Duration::minutes(5), Vec::new())
            }
        };
        if let Err(e) = reschedule(deps, parcel, Some(next)).await {
            warn!(shipment_id = %parcel.shipment_id, error = %e, "poll not recorded; the parcel stays due");
            failed += 1;
        }
    }
    // Past the rate: the next run; past the day's budget: tomorrow.
    let deferred_to = if budget.used_today >= limits.polls_per_day {
        (now.date().next_day().expect("a next day")).midnight().assume_utc()
    } else {
        now + time::Duration::minutes(1)
    };
    let deferred = parcels.iter().skip(granted).map(|p| (p.clone(), Some((deferred_to, Vec::new())))).collect();
    failed += reschedule_all(deps, deferred).await;
    Ok((polled, parcels.len() - granted, failed))
}

/// Reschedule parcels a few at a time; one that cannot be written is logged and stays due (the
/// next run finds it first), and the run goes on. Answers how many failed.
async fn reschedule_all(deps: &LogisticsDeps, parcels: Vec<(Shipment, Option<Poll>)>) -> usize {
    let outcomes: Vec<bool> = futures::stream::iter(parcels)
        .map(|(parcel, poll)| async move {
            let outcome = reschedule(deps, &parcel, poll).await;
            if let Err(e) = &outcome {
                warn!(shipment_id = %parcel.shipment_id, error = %e, "parcel not rescheduled; it stays due");
            }
            outcome.is_err()
        })
        .buffer_unordered(RESCHEDULE_CONCURRENCY)
        .collect()
        .await;
    outcomes.into_iter().filter(|failed| *failed).count()
}

/// Record what a poll found (if it polled), set the next poll, and re-evaluate the alerts.
async fn reschedule(deps: &LogisticsDeps, parcel: &Shipment, poll: Option<Poll>) -> Result<(), LogisticsError> {
    change_parcel::<(), _>(deps, &parcel.shipment_id, |view, mut tracking| {
        if let Some((next_poll, checkpoints)) = &poll {
            let valid: Vec<Checkpoint> = checkpoints.iter().filter(|c| c.validate(view.now).is_ok()).cloned().collect();
            tracking.record(&valid);
            tracking.next_poll_at = Some(*next_poll);
        }
        ParcelChange::Change { tracking: Box::new(tracking), extra: Vec::new(), audit: Vec::new() }
    })
    .await?
    .ok();
    Ok(())
}
