//! Orders risk control holds, and the sparse `risk-queue` index that finds them: orders awaiting
//! step-up verification (bucket `VERIFY#nnn`, by the code's expiry, for the sweeper to cancel
//! when the code runs out) and orders in the manual review queue (bucket `REVIEW`, by arrival,
//! for staff). Leaving risk's hands removes the order from the index.

use super::orders::{one, status, timestamp, NEXT_VERSION};
use super::{attr, from_item, keys, n, s, Store, StoreError};
use crate::domain::{Order, OrderId, OrderStatus, Verification};
use time::OffsetDateTime;

pub const INDEX: &str = "risk-queue";
/// The index's partition attribute: `VERIFY#nnn` or `REVIEW`.
pub(crate) const QUEUE: &str = "risk_queue";
/// The index's sort attribute, unix seconds.
pub(crate) const QUEUE_AT: &str = "risk_queue_at";

/// Where `order` sits in the risk queue, if risk holds it: (bucket, sort key).
pub(crate) fn entry(order: &Order, buckets: u32) -> Option<(String, i64)> {
    match order.status {
        OrderStatus::PendingVerification => Some((
            keys::verification_bucket(order.order_id.bucket(buckets)),
            order.verification.as_ref().map_or(order.received_at.unix_timestamp(), |v| v.expires_at),
        )),
        OrderStatus::PendingReview | OrderStatus::Frozen => {
            Some((keys::REVIEW_BUCKET.to_owned(), order.received_at.unix_timestamp()))
        }
        _ => None,
    }
}

impl Store {
    /// A held order (verified, or approved by staff) goes on to reservation: RECEIVED, out of
    /// the risk queue. Its OrderReceived comes from the stream.
    pub async fn release_to_received(
        &self,
        id: OrderId,
        from: OrderStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.update_if(
            keys::order(id),
            &format!("SET #status = :received, updated_at = :now REMOVE verification, {QUEUE} {NEXT_VERSION}"),
            "#status = :from",
            &[("#status", "status")],
            vec![
                (":received", status(OrderStatus::Received)),
                (":from", status(from)),
                (":now", timestamp(now)),
                (":one", one()),
            ],
        )
        .await
    }

    /// Staff rejected an order risk held: REJECTED, out of the review queue.
    pub async fn reject_after_review(
        &self,
        id: OrderId,
        from: OrderStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.update_if(
            keys::order(id),
            &format!("SET #status = :rejected, updated_at = :now REMOVE {QUEUE} {NEXT_VERSION}"),
            "#status = :from",
            &[("#status", "status")],
            vec![
                (":rejected", status(OrderStatus::Rejected)),
                (":from", status(from)),
                (":now", timestamp(now)),
                (":one", one()),
            ],
        )
        .await
    }

    /// One wrong verification code: `attempts_left` goes down, once per attempt seen.
    pub async fn spend_verification_attempt(&self, id: OrderId, seen_attempts_left: u32) -> Result<bool, StoreError> {
        self.update_if(
            keys::order(id),
            &format!("SET verification.attempts_left = :left {NEXT_VERSION}"),
            "#status = :pending AND verification.attempts_left = :seen",
            &[("#status", "status")],
            vec![
                (":left", n(seen_attempts_left.saturating_sub(1))),
                (":seen", n(seen_attempts_left)),
                (":pending", status(OrderStatus::PendingVerification)),
                (":one", one()),
            ],
        )
        .await
    }

    /// Swap the verification (a new code) if it is still the one seen.
    pub async fn replace_verification(
        &self,
        id: OrderId,
        seen: &Verification,
        next: &Verification,
    ) -> Result<bool, StoreError> {
        self.update_if(
            keys::order(id),
            &format!("SET verification = :next {NEXT_VERSION}"),
            "#status = :pending AND verification.code_hash = :seen",
            &[("#status", "status")],
            vec![
                (":next", attr(next)),
                (":seen", s(seen.code_hash.as_str())),
                (":pending", status(OrderStatus::PendingVerification)),
                (":one", one()),
            ],
        )
        .await
    }

    async fn risk_queue_page(&self, bucket: String, up_to: Option<i64>, limit: i32) -> Result<Vec<Order>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX)
            .expression_attribute_names("#queue", QUEUE)
            .expression_attribute_values(":queue", s(bucket))
            .limit(limit);
        query = match up_to {
            Some(at) => query
                .key_condition_expression("#queue = :queue AND #at <= :at")
                .expression_attribute_names("#at", QUEUE_AT)
                .expression_attribute_values(":at", n(at)),
            None => query.key_condition_expression("#queue = :queue"),
        };
        let output = query.send().await.map_err(StoreError::aws)?;
        output.items.unwrap_or_default().into_iter().map(|item| from_item(item, "order")).collect()
    }

    /// Orders held by risk for staff, oldest first.
    pub async fn review_queue(&self, limit: i32) -> Result<Vec<Order>, StoreError> {
        self.risk_queue_page(keys::REVIEW_BUCKET.to_owned(), None, limit).await
    }

    /// Orders in `bucket` whose verification code expired by `now`, for the sweeper to cancel.
    pub async fn unverified_due(&self, bucket: u32, now: OffsetDateTime, limit: i32) -> Result<Vec<Order>, StoreError> {
        self.risk_queue_page(keys::verification_bucket(bucket), Some(now.unix_timestamp()), limit).await
    }
}
