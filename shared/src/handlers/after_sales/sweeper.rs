//! The SLA sweeper, run by the scheduled sweeper (function `hold-expiry`, every minute): every
//! ticket with a pending deadline due is read from the `SLA#nnn` buckets of the waiting index and
//! written back with the deadline breached, on condition it is still the version read. A
//! breached deadline is no longer pending, so the ticket leaves the due range (or moves to the
//! overdue bucket) in the same write: each deadline is breached once, and SlaBreached comes from
//! the stream.

use crate::handlers::Common;
use crate::store::StoreError;
use time::OffsetDateTime;
use tracing::warn;

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
