//! Function hold-expiry (EventBridge schedule, every minute): release unpaid holds whose time
//! has come; cancel orders whose step-up verification code ran out unused, and orders
//! reservation never decided by their deadline (their message was dead-lettered); settle
//! shortages nobody answered and backorders whose date came (fulfilment's); breach after-sales
//! deadlines not kept ([`super::after_sales::sweeper`]).
//!
//! Work per run is bounded (a number of holds and a time budget), and the index is the
//! continuation: a released hold leaves the expiring-holds index in the same transaction, so the
//! next run starts where this one stopped, and the release condition (still held) means nothing
//! is released twice. OrderExpired and OrderCancelled come from the table's stream.

use super::Common;
use crate::domain::Order;
use crate::store::{CancelCause, CancelError, DueHold, ExpireOutcome, StoreError};
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use time::OffsetDateTime;
use tracing::{info, warn};

#[derive(Debug, Clone, Copy)]
pub struct ExpirySettings {
    /// At most this many holds per run; the rest wait for the next run.
    pub max_holds_per_run: usize,
    /// Holds read per index query.
    pub page_size: i32,
    /// Release transactions in flight at once, per bucket.
    pub concurrency_per_bucket: usize,
    /// At most this many overdue orders (unverified, unreserved) cancelled per run, each kind.
    pub max_overdue_per_run: usize,
}

impl Default for ExpirySettings {
    fn default() -> Self {
        Self { max_holds_per_run: 20_000, page_size: 100, concurrency_per_bucket: 4, max_overdue_per_run: 1_000 }
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
    /// Due holds someone else had handled (paid, cancelled) by the time this run got to them.
    pub already_handled: usize,
    /// Holds whose release failed; they stay in the index for the next run.
    pub failed: usize,
    /// Orders cancelled because their verification code ran out unused.
    pub unverified_cancelled: usize,
    /// Orders cancelled because reservation had not decided them by their deadline.
    pub unreserved_cancelled: usize,
    /// Shipments whose shortage went unanswered (the policy's default applied) or whose
    /// backorder date came.
    pub shortages_settled: usize,
    /// After-sales tickets with a service-level deadline breached by this run.
    pub sla_breached: usize,
    /// Delivered orders whose after-sales ended (archived) in this run.
    pub archived: usize,
    /// Archived orders whose personal data was erased (retention ended) in this run.
    pub personal_erased: usize,
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
        report.already_handled += part.already_handled;
        report.failed += part.failed;
        report.more_due |= part.more_due;
    }
    let store = &deps.common.store;
    report.unverified_cancelled =
        cancel_overdue(deps, now, CancelCause::Customer, |bucket, limit| store.unverified_due(bucket, now, limit))
            .await?;
    report.unreserved_cancelled =
        cancel_overdue(deps, now, CancelCause::System, |bucket, limit| store.unreserved_due(bucket, now, limit))
            .await?;
    // The policy is read once per run: a run is a minute apart.
    let fulfilment = super::fulfilment::FulfilmentCore::new(deps.common.clone());
    let per_bucket = i32::try_from(deps.settings.max_overdue_per_run).unwrap_or(i32::MAX).min(100);
    report.shortages_settled = super::fulfilment::sweep_due(&fulfilment, per_bucket).await?;
    report.sla_breached = super::after_sales::sweeper::breach_due(&deps.common, now, per_bucket).await?;
    report.archived = super::after_sales::sweeper::archive_due(&deps.common, now, per_bucket).await?;
    report.personal_erased = super::after_sales::sweeper::erase_due(&deps.common, now, per_bucket).await?;
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
        let outcomes: Vec<(DueHold, Result<ExpireOutcome, StoreError>)> = futures::stream::iter(page.items)
            .map(|hold| async move {
                let outcome = store.expire_hold(&hold, now).await;
                (hold, outcome)
            })
            .buffer_unordered(deps.settings.concurrency_per_bucket.max(1))
            .collect()
            .await;
        let mut progress = 0;
        for (hold, outcome) in outcomes {
            match outcome {
                Ok(ExpireOutcome::Expired(_)) => {
                    report.expired += 1;
                    progress += 1;
                }
                Ok(ExpireOutcome::NotHeld) => {
                    report.already_handled += 1;
                    progress += 1;
                }
                Err(err) => {
                    warn!(order_id = %hold.order_id, error = %err, "hold not released; next run retries");
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

/// Orders past their deadline in one kind of bucket of the waiting-orders index, cancelled
/// (nothing was held yet), a page per bucket, at most `max_overdue_per_run`.
async fn cancel_overdue<'a, F, Fut>(
    deps: &ExpiryDeps,
    now: OffsetDateTime,
    cause: CancelCause,
    due: F,
) -> Result<usize, StoreError>
where
    F: Fn(u32, i32) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Order>, StoreError>> + 'a,
{
    let store = &deps.common.store;
    let mut cancelled = 0;
    for bucket in 0..store.buckets() {
        let room = deps.settings.max_overdue_per_run.saturating_sub(cancelled);
        if room == 0 {
            break;
        }
        for order in due(bucket, deps.settings.page_size.min(room as i32)).await? {
            match store.cancel(&order, cause, now).await {
                Ok(_) => {
                    info!(order_id = %order.order_id, status = order.status.as_str(), ?cause, "overdue order cancelled");
                    cancelled += 1;
                }
                Err(CancelError::StatusChanged) => {}
                Err(CancelError::Store(err)) => return Err(err),
            }
        }
    }
    Ok(cancelled)
}
