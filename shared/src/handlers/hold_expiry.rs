//! Function hold-expiry (EventBridge schedule, every minute): release unpaid holds whose time
//! has come, and announce again orders stuck in RECEIVED.
//!
//! Work per run is bounded (a number of holds and a time budget), and the index is the
//! continuation: a handled hold leaves it, so the next run starts where this one stopped. An
//! expired hold leaves the index only after its OrderExpired is published, so a run that stops
//! between the release and the publish loses no event, and the release condition (still held)
//! means nothing is released twice.

use super::Common;
use crate::domain::OrderStatus;
use crate::events::{DomainEvent, OrderCancelled, OrderExpired, OrderReceived};
use crate::store::{CancelError, DueHold, ExpireOutcome, HoldStatus, StoreError};
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

#[derive(Debug, Clone, Copy)]
pub struct ExpirySettings {
    /// At most this many holds per run; the rest wait for the next run.
    pub max_holds_per_run: usize,
    /// Holds read per index query.
    pub page_size: i32,
    /// Release transactions in flight at once, per bucket.
    pub concurrency_per_bucket: usize,
    /// An order RECEIVED this long is announced again, then after twice as long, and so on.
    pub received_backoff: Duration,
    pub max_received_backoff: Duration,
    pub max_received_per_run: usize,
}

impl Default for ExpirySettings {
    fn default() -> Self {
        Self {
            max_holds_per_run: 20_000,
            page_size: 100,
            concurrency_per_bucket: 4,
            received_backoff: Duration::minutes(2),
            max_received_backoff: Duration::hours(1),
            max_received_per_run: 1_000,
        }
    }
}

#[derive(Clone)]
pub struct ExpiryDeps {
    pub common: Common,
    pub settings: ExpirySettings,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Holds released (and orders expired) by this run.
    pub expired: usize,
    /// OrderExpired events published (includes ones a previous run released but did not announce).
    pub announced: usize,
    /// Due holds someone else had handled (paid, cancelled) by the time this run got to them.
    pub already_handled: usize,
    /// Holds or announcements that failed; they stay in the index for the next run.
    pub failed: usize,
    /// Stuck RECEIVED orders announced again.
    pub republished: usize,
    /// Due work was left for the next run (budget reached).
    pub more_due: bool,
}

/// One run. `deadline` is when the run must stop starting new work (the Lambda deadline minus a
/// margin); `None` runs until the holds bound or until nothing is due.
pub async fn sweep(deps: &ExpiryDeps, deadline: Option<Instant>) -> Result<SweepReport, StoreError> {
    let now = deps.common.clock.now();
    let budget = AtomicUsize::new(deps.settings.max_holds_per_run);
    let buckets = deps.common.store.buckets();
    let runs = (0..buckets).map(|bucket| sweep_bucket(deps, bucket, now, &budget, deadline));
    let mut report = SweepReport::default();
    for result in futures::future::join_all(runs).await {
        let part = result?;
        report.expired += part.expired;
        report.announced += part.announced;
        report.already_handled += part.already_handled;
        report.failed += part.failed;
        report.more_due |= part.more_due;
    }
    report.republished = republish_stuck_received(deps, now).await?;
    info!(?report, "sweep finished");
    Ok(report)
}

fn out_of_time(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Take up to `want` units from the shared budget; how many were granted.
fn take(budget: &AtomicUsize, want: usize) -> usize {
    let mut granted = 0;
    let _ = budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
        granted = left.min(want);
        Some(left - granted)
    });
    granted
}

async fn sweep_bucket(
    deps: &ExpiryDeps,
    bucket: u32,
    now: OffsetDateTime,
    budget: &AtomicUsize,
    deadline: Option<Instant>,
) -> Result<SweepReport, StoreError> {
    let store = &deps.common.store;
    let mut report = SweepReport::default();
    loop {
        if out_of_time(deadline) {
            report.more_due = true;
            return Ok(report);
        }
        let left = budget.load(Ordering::SeqCst).min(deps.settings.page_size as usize);
        if left == 0 {
            report.more_due = true;
            return Ok(report);
        }
        let mut page = store.due_holds(bucket, now, left as i32).await?;
        if page.items.is_empty() {
            return Ok(report);
        }
        // Other buckets draw on the same budget meanwhile: keep only what is still granted.
        let asked = page.items.len();
        let granted = take(budget, asked);
        page.items.truncate(granted);
        if granted == 0 {
            report.more_due = true;
            return Ok(report);
        }
        let outcomes: Vec<(DueHold, Result<Option<DomainEvent>, StoreError>)> = futures::stream::iter(page.items)
            .map(|hold| async move {
                let outcome = release(deps, &hold, now).await;
                (hold, outcome)
            })
            .buffer_unordered(deps.settings.concurrency_per_bucket.max(1))
            .collect()
            .await;
        let mut to_announce = Vec::new();
        let mut progress = 0;
        for (hold, outcome) in outcomes {
            match outcome {
                Ok(Some(event)) => {
                    if hold.is_held() {
                        report.expired += 1;
                    }
                    to_announce.push((hold, event));
                }
                Ok(None) => {
                    report.already_handled += 1;
                    progress += 1;
                }
                Err(err) => {
                    warn!(order_id = %hold.order_id, error = %err, "hold not released; next run retries");
                    report.failed += 1;
                }
            }
        }
        let events: Vec<DomainEvent> = to_announce.iter().map(|(_, e)| e.clone()).collect();
        let results = deps.common.events.publish_all(&events).await;
        for ((hold, _), published) in to_announce.iter().zip(results) {
            match published {
                Ok(()) => {
                    store.finish_expiry(hold.order_id).await?;
                    report.announced += 1;
                    progress += 1;
                }
                Err(err) => {
                    warn!(order_id = %hold.order_id, error = %err, "OrderExpired not published; next run retries");
                    report.failed += 1;
                }
            }
        }
        // Whatever failed is still due at the head of the index: stop rather than spin on it.
        if progress == 0 {
            report.more_due = true;
            return Ok(report);
        }
        if granted < asked {
            report.more_due = true;
            return Ok(report);
        }
        if !page.more && asked < left {
            return Ok(report);
        }
    }
}

/// Release one due hold; the OrderExpired to announce, or `None` when someone else (payment,
/// cancel) handled it first.
async fn release(deps: &ExpiryDeps, hold: &DueHold, now: OffsetDateTime) -> Result<Option<DomainEvent>, StoreError> {
    let expired = |released| Some(DomainEvent::OrderExpired(OrderExpired { order_id: hold.order_id, released }));
    match hold.hold_status {
        // Released by an earlier run that stopped before announcing it.
        HoldStatus::Released => Ok(expired(hold.allocations.clone())),
        HoldStatus::Committed => Ok(None),
        HoldStatus::Held => match deps.common.store.expire_hold(hold, now).await? {
            ExpireOutcome::Expired(released) => Ok(expired(released)),
            ExpireOutcome::NotHeld => Ok(None),
        },
    }
}

/// Orders still RECEIVED past their recheck time: their OrderReceived may never have reached
/// reservation. Announce them again (reservation is idempotent) and look again later, backing
/// off so a poison order does not flood the bus. Orders whose verification code expired unused
/// are cancelled.
async fn republish_stuck_received(deps: &ExpiryDeps, now: OffsetDateTime) -> Result<usize, StoreError> {
    let store = &deps.common.store;
    let mut stuck = Vec::new();
    for bucket in 0..store.buckets() {
        let page = store.stuck_received(bucket, now, deps.settings.page_size).await?;
        stuck.extend(page.items);
        if stuck.len() >= deps.settings.max_received_per_run {
            break;
        }
    }
    stuck.truncate(deps.settings.max_received_per_run);
    let (unverified, stuck): (Vec<_>, Vec<_>) =
        stuck.into_iter().partition(|s| s.order.status == OrderStatus::PendingVerification);
    for entry in &unverified {
        match store.cancel(&entry.order, now).await {
            Ok(_) => {
                let event = DomainEvent::OrderCancelled(OrderCancelled {
                    order_id: entry.order.order_id,
                    released: Vec::new(),
                });
                if let Err(err) = deps.common.events.publish(&event).await {
                    warn!(order_id = %entry.order.order_id, error = %err, "OrderCancelled not published");
                }
                info!(order_id = %entry.order.order_id, "unverified order cancelled");
            }
            Err(CancelError::StatusChanged) => {}
            Err(CancelError::Store(err)) => return Err(err),
        }
    }
    let events: Vec<DomainEvent> =
        stuck.iter().map(|s| DomainEvent::OrderReceived(OrderReceived::of(&s.order))).collect();
    let results = deps.common.events.publish_all(&events).await;
    let mut republished = 0;
    for (entry, result) in stuck.iter().zip(results) {
        if result.is_err() {
            continue;
        }
        let backoff = (deps.settings.received_backoff * 2i32.saturating_pow(entry.rechecks.min(16)))
            .min(deps.settings.max_received_backoff);
        store.reschedule_recheck(entry.order.order_id, now + backoff, entry.rechecks + 1).await?;
        warn!(order_id = %entry.order.order_id, rechecks = entry.rechecks + 1, "order stuck in RECEIVED announced again");
        republished += 1;
    }
    Ok(republished)
}
