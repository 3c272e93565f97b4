//! Orders waiting on something that must happen, and the sparse `waiting-orders` index that
//! finds them: orders awaiting reservation (bucket `RESERVE#nnn`, by the reservation deadline,
//! for the sweeper to cancel an order reservation never decided), orders awaiting step-up
//! verification (bucket `VERIFY#nnn`, by the code's expiry, for the sweeper to cancel when the
//! code runs out) and orders in the manual review queue (bucket `REVIEW`, by arrival, for staff).
//! Every transition out of those statuses removes the order from the index.

use super::orders::{one, status, timestamp, NEXT_VERSION};
use super::{from_item, keys, n, s, Store, StoreError};
use crate::domain::{Order, OrderId, OrderStatus, RESERVATION_DEADLINE};
use time::OffsetDateTime;

pub const INDEX: &str = "waiting-orders";
/// The index's partition attribute: `RESERVE#nnn`, `VERIFY#nnn` or `REVIEW`.
pub(crate) const QUEUE: &str = "waiting_queue";
/// The index's sort attribute, unix seconds: when the wait must end (for review: since when).
pub(crate) const UNTIL: &str = "waiting_until";

/// Where `order` waits, if it does: (bucket, sort key). `since` is when it entered its status.
pub(crate) fn entry(order: &Order, buckets: u32, since: OffsetDateTime) -> Option<(String, i64)> {
    let bucket = order.order_id.bucket(buckets);
    match order.status {
        OrderStatus::Received => {
            Some((keys::reservation_bucket(bucket), (since + RESERVATION_DEADLINE).unix_timestamp()))
        }
        OrderStatus::PendingVerification => Some((
            keys::verification_bucket(bucket),
            order.verification.as_ref().map_or(since.unix_timestamp(), |v| v.expires_at),
        )),
        OrderStatus::PendingReview | OrderStatus::Frozen => {
            Some((keys::REVIEW_BUCKET.to_owned(), order.received_at.unix_timestamp()))
        }
        _ => None,
    }
}

impl Store {
    /// A held order (verified, or approved by staff) goes on to reservation: RECEIVED, out of
    /// the risk queue and into the reservation bucket with its deadline from now, so the sweeper
    /// cancels it (and a payment parked on it is refunded) if reservation never decides it. Its
    /// OrderReceived comes from the stream.
    pub async fn release_to_received(
        &self,
        id: OrderId,
        from: OrderStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.release_with(id, from, now, Vec::new()).await
    }

    /// Staff approved an order risk held: as [`Store::release_to_received`], audited.
    pub async fn approve_after_review(
        &self,
        order: &Order,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let audit = self.audit_of_order(actor, "order.review-approve", order, OrderStatus::Received, now);
        self.release_with(order.order_id, order.status, now, vec![audit]).await
    }

    async fn release_with(
        &self,
        id: OrderId,
        from: OrderStatus,
        now: OffsetDateTime,
        also: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let bucket = keys::reservation_bucket(id.bucket(self.expiry_buckets));
        let deadline = (now + RESERVATION_DEADLINE).unix_timestamp();
        self.update_if_with(
            keys::order(id),
            &format!(
                "SET #status = :received, updated_at = :now, {QUEUE} = :queue, {UNTIL} = :until \
                 REMOVE verification {NEXT_VERSION}"
            ),
            "#status = :from",
            &[("#status", "status")],
            vec![
                (":received", status(OrderStatus::Received)),
                (":from", status(from)),
                (":now", timestamp(now)),
                (":queue", s(bucket)),
                (":until", n(deadline)),
                (":one", one()),
            ],
            also,
        )
        .await
    }

    /// Staff rejected an order risk held: REJECTED, out of the review queue; audited.
    pub async fn reject_after_review(
        &self,
        order: &Order,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let audit = self.audit_of_order(actor, "order.review-reject", order, OrderStatus::Rejected, now);
        let (id, from) = (order.order_id, order.status);
        self.update_if_with(
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
            vec![audit],
        )
        .await
    }

    /// Items waiting in `bucket` (up to `up_to`, when given), soonest first.
    pub(crate) async fn waiting_page<T: serde::de::DeserializeOwned>(
        &self,
        bucket: String,
        up_to: Option<i64>,
        limit: i32,
    ) -> Result<Vec<T>, StoreError> {
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
                .expression_attribute_names("#at", UNTIL)
                .expression_attribute_values(":at", n(at)),
            None => query.key_condition_expression("#queue = :queue"),
        };
        let output = query.send().await.map_err(StoreError::aws)?;
        output.items.unwrap_or_default().into_iter().map(|item| from_item(item, "waiting item")).collect()
    }

    /// Orders held by risk for staff, oldest first.
    pub async fn review_queue(&self, limit: i32) -> Result<Vec<Order>, StoreError> {
        self.waiting_page(keys::REVIEW_BUCKET.to_owned(), None, limit).await
    }

    /// How many orders wait in the review queue now (held or frozen by risk): the count of its
    /// index bucket, which holds exactly them, not a read of the orders.
    pub async fn review_queue_length(&self) -> Result<i64, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX)
            .key_condition_expression("#queue = :queue")
            .expression_attribute_names("#queue", QUEUE)
            .expression_attribute_values(":queue", s(keys::REVIEW_BUCKET));
        Self::count_of(query).await
    }

    /// Orders in `bucket` whose verification code expired by `now`, for the sweeper to cancel.
    pub async fn unverified_due(&self, bucket: u32, now: OffsetDateTime, limit: i32) -> Result<Vec<Order>, StoreError> {
        self.waiting_page(keys::verification_bucket(bucket), Some(now.unix_timestamp()), limit).await
    }

    /// Orders in `bucket` still RECEIVED past their reservation deadline, for the sweeper to
    /// cancel: their reservation never decided (its message went to the dead-letter queue).
    pub async fn unreserved_due(&self, bucket: u32, now: OffsetDateTime, limit: i32) -> Result<Vec<Order>, StoreError> {
        self.waiting_page(keys::reservation_bucket(bucket), Some(now.unix_timestamp()), limit).await
    }
}
