//! After-sales' share of the scheduled sweeper (function `hold-expiry`, every minute):
//!
//! - SLAs: every ticket with a pending deadline due is read from the `SLA#nnn` buckets of the
//!   waiting index and written back with the deadline breached, on condition it is still the
//!   version read. A breached deadline is no longer pending, so the ticket leaves the due range
//!   (or moves to the overdue bucket) in the same write: each deadline is breached once, and
//!   SlaBreached comes from the stream.
//! - Archive: every delivered order whose after-sales window (the longer of the no-reason and
//!   quality windows) has passed is archived once its tickets are all closed, its parcels back to
//!   the customer ended and its not-received claims resolved (OrderArchived from the stream),
//!   counted into its month's after-sales rate; one with any of those pending is looked at again
//!   an hour later.
//! - Retention: an archived order keeps its personal data for the policy's
//!   `personal_data_days`, then the sweeper erases it, audited as the retention's. An order its
//!   customer asked to erase is erased once it is done with (looked at every hour).

use crate::domain::ticket::{Closure, TicketStatus};
use crate::domain::{OrderStatus, Shipment};
use crate::handlers::Common;
use crate::store::{AfterSalesView, ArchivedAs, Erasure, StoreError};
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

/// How long an order with a ticket still open waits before it is looked at again.
const ARCHIVE_RECHECK: Duration = Duration::hours(1);

/// Breach every deadline due at `now`, up to `per_bucket` tickets per bucket and run; how many
/// tickets had a deadline breached.
pub async fn breach_due(common: &Common, now: OffsetDateTime, per_bucket: i32) -> Result<usize, StoreError> {
    let store = &common.store;
    let mut breached = 0;
    for bucket in 0..store.buckets() {
        for mut ticket in store.sla_due(bucket, now, per_bucket).await? {
            let seen = ticket.version;
            if ticket.breach_due(now).is_empty() {
                continue;
            }
            ticket.updated_at = now;
            // A ticket changed since the index was read is looked at again next run.
            if store.write_all(vec![store.put_ticket(&mut ticket, Some(seen))]).await? {
                breached += 1;
            } else {
                warn!(ticket_id = %ticket.ticket_id, "ticket changed while its deadline was breached; next run");
            }
        }
    }
    Ok(breached)
}

/// Archive every order whose after-sales is over at `now`, up to `per_bucket` per bucket and
/// run; how many were archived. An order that cannot be read or written is left for the next
/// run without holding up the others.
pub async fn archive_due(common: &Common, now: OffsetDateTime, per_bucket: i32) -> Result<usize, StoreError> {
    let store = &common.store;
    let policy = store.after_sales_policy().await?.unwrap_or_default();
    let span = policy.after_sales_span();
    let retention = Duration::days(i64::from(policy.personal_data_days));
    let month = crate::handlers::logistics::kpi::month_of(now);
    let mut archived = 0;
    for bucket in 0..store.buckets() {
        for due in store.archive_due(bucket, now - span, per_bucket).await? {
            match archive_one(store, due.order_id, (&month, now), span, retention).await {
                Ok(true) => archived += 1,
                Ok(false) => {}
                Err(err) => warn!(order_id = %due.order_id, error = %err, "archive failed; next run"),
            }
        }
    }
    Ok(archived)
}

/// Archive the order if nothing of its after-sales is pending (tickets open, parcels going back
/// to the customer, not-received claims unresolved); else look again an hour on.
async fn archive_one(
    store: &crate::store::Store,
    order_id: crate::domain::OrderId,
    (month, now): (&str, OffsetDateTime),
    span: Duration,
    retention: Duration,
) -> Result<bool, StoreError> {
    let view = store.after_sales_of(order_id).await?;
    let Some(order) = view.order.as_ref().filter(|o| o.status == OrderStatus::Delivered) else { return Ok(false) };
    let pending = view.tickets.iter().any(|t| t.status != TicketStatus::Closed)
        || view.shipments.iter().any(Shipment::after_sales_pending);
    if pending {
        store.archive_later(order, now - span + ARCHIVE_RECHECK).await?;
        return Ok(false);
    }
    let done = store.archive(order, &view.units, counted_as(&view), (month, now, now + retention)).await?;
    if done {
        info!(order_id = %order_id, "after-sales over: archived");
    } else {
        warn!(order_id = %order_id, "order or its tickets moved while archived; next run");
    }
    Ok(done)
}

/// The actor the audit trail names for erasures at the end of retention.
pub const RETENTION_ACTOR: &str = "system:retention";
/// The actor the audit trail names for erasures a customer asked for, once their order is done with.
pub const REQUEST_ACTOR: &str = "system:erasure-request";
/// How long an order a customer asked about, not done with yet, waits to be looked at again.
pub const ERASURE_RECHECK: Duration = Duration::hours(1);

/// Erase the personal data of every archived order whose retention ended by `now`, and of every
/// order a customer asked about that is done with, up to `per_bucket` per bucket and run; how
/// many were erased. An order that moved meanwhile is read afresh next run.
pub async fn erase_due(common: &Common, now: OffsetDateTime, per_bucket: i32) -> Result<usize, StoreError> {
    let store = &common.store;
    let retention = Erasure { actor: RETENTION_ACTOR, reason: "retention ended", now };
    let mut erased = 0;
    for bucket in 0..store.buckets() {
        for order in store.erasure_due(bucket, now, per_bucket).await? {
            erased += usize::from(erase_logged(store, &order, retention, None).await);
        }
        for asked in store.erasure_requests_due(bucket, now, per_bucket).await? {
            let erasure = Erasure { actor: REQUEST_ACTOR, reason: &asked.reason, now };
            match store.order(asked.order_id).await? {
                Some(order) if order.personal.is_some() && !order.done_with(now) => {
                    store.erasure_request_later(asked.order_id, now + ERASURE_RECHECK).await?;
                }
                Some(order) => erased += usize::from(erase_logged(store, &order, erasure, Some(asked.order_id)).await),
                None => store.drop_erasure_request(asked.order_id).await?,
            }
        }
    }
    Ok(erased)
}

/// Erase one order (and the request that `asked`, if one did); whether it was. A failure waits for the
/// next run without holding up the others.
async fn erase_logged(
    store: &crate::store::Store,
    order: &crate::domain::Order,
    erasure: Erasure<'_>,
    asked: Option<crate::domain::OrderId>,
) -> bool {
    let had_data = order.personal.is_some();
    match store.erase_personal(order, erasure, asked).await {
        Ok(done) if !done => warn!(order_id = %order.order_id, "order moved while erased; next run"),
        Ok(_) => return had_data,
        Err(err) => warn!(order_id = %order.order_id, error = %err, "erasure failed; next run"),
    }
    false
}

/// After-sales is a ticket or a not-received claim; refunded, a ticket or a claim that paid.
fn counted_as(view: &AfterSalesView) -> ArchivedAs {
    let claimed = view.shipments.iter().any(|s| s.tracking.as_ref().is_some_and(|t| t.claim.is_some()));
    let claim_paid = view.shipments.iter().filter_map(Shipment::claim_refund_minor).any(|m| m > 0);
    ArchivedAs {
        with_after_sales: !view.tickets.is_empty() || claimed,
        refunded: claim_paid || view.tickets.iter().any(|t| t.closure == Some(Closure::Refunded)),
    }
}
