//! The end of a hold: found due through the sparse expiring-holds index and released. A payment
//! commits the same hold (`payments.rs`); the two race, and conditions decide which wins, so an
//! order ends paid with its stock sold or expired with its stock returned, never both.

use super::orders::{one, status, timestamp, Hold, HoldStatus, NEXT_VERSION};
use super::{cancellation_codes, from_item, keys, n, s, Item, Store, StoreError, EXPIRING_HOLDS_INDEX};
use crate::domain::{Allocation, OrderStatus};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;
use time::OffsetDateTime;

/// A due entry of the expiring-holds index.
pub type DueHold = Hold;

/// One page of an index query: what came back and whether more is due behind it.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpireOutcome {
    /// This call released the hold and expired the order.
    Expired(Vec<Allocation>),
    /// The hold was no longer held (paid or cancelled meanwhile).
    NotHeld,
}

fn transact_error(err: TransactWriteItemsError) -> StoreError {
    StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string())
}

impl Store {
    async fn query_index(
        &self,
        index: &str,
        bucket_attr: &str,
        bucket: String,
        sort_attr: &str,
        up_to: i64,
        limit: i32,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#bucket = :bucket AND #sort <= :up_to")
            .expression_attribute_names("#bucket", bucket_attr)
            .expression_attribute_names("#sort", sort_attr)
            .expression_attribute_values(":bucket", s(bucket))
            .expression_attribute_values(":up_to", n(up_to))
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::aws)?;
        let more = output.last_evaluated_key.is_some_and(|k| !k.is_empty());
        Ok((output.items.unwrap_or_default(), more))
    }

    /// Holds in `bucket` due at `now`, oldest first. Entries leave the index once handled, so
    /// the next page is simply the next query.
    pub async fn due_holds(&self, bucket: u32, now: OffsetDateTime, limit: i32) -> Result<Page<DueHold>, StoreError> {
        let (items, more) = self
            .query_index(
                EXPIRING_HOLDS_INDEX,
                "expiry_bucket",
                keys::expiry_bucket(bucket),
                "expires_at",
                now.unix_timestamp(),
                limit,
            )
            .await?;
        let items = items.into_iter().map(|item| from_item(item, "hold")).collect::<Result<_, _>>()?;
        Ok(Page { items, more })
    }

    /// Release a due hold and expire its order, in one transaction conditional on the hold
    /// still being held and due and the order still unpaid. The hold leaves the index with it;
    /// OrderExpired comes from the stream.
    pub async fn expire_hold(&self, hold: &Hold, now: OffsetDateTime) -> Result<ExpireOutcome, StoreError> {
        let order_update = self
            .update(keys::order(hold.order_id))
            .update_expression(format!("SET #status = :expired, updated_at = :now {NEXT_VERSION}"))
            .condition_expression("#status IN (:awaiting_payment, :awaiting_review)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expired", status(OrderStatus::Expired))
            .expression_attribute_values(":awaiting_payment", status(OrderStatus::AwaitingPayment))
            .expression_attribute_values(":awaiting_review", status(OrderStatus::AwaitingReview))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one())
            .build()
            .expect("update has table, key and expression");
        let hold_release = self
            .update(keys::hold(hold.order_id))
            .update_expression("SET hold_status = :released, released_at = :now REMOVE expiry_bucket")
            .condition_expression("hold_status = :held AND expires_at <= :now_unix")
            .expression_attribute_values(":released", s("RELEASED"))
            .expression_attribute_values(":held", s("HELD"))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":now_unix", n(now.unix_timestamp()))
            .build()
            .expect("update has table, key and expression");
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(order_update).build())
            .transact_items(TransactWriteItem::builder().update(hold_release).build());
        for allocation in &hold.allocations {
            request = request.transact_items(self.stock_move(allocation, "reserved", "available", now));
        }
        match request.send().await {
            Ok(_) => Ok(ExpireOutcome::Expired(hold.allocations.clone())),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let codes = cancellation_codes(c.cancellation_reasons());
                    if codes.get(1) == Some(&"ConditionalCheckFailed") {
                        Ok(ExpireOutcome::NotHeld)
                    } else {
                        Err(StoreError::Aws(format!("expiry refused by order or stock: {codes:?}")))
                    }
                }
                other => Err(transact_error(other)),
            },
        }
    }
}

impl Hold {
    pub fn is_held(&self) -> bool {
        self.hold_status == HoldStatus::Held
    }
}
