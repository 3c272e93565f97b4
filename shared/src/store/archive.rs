//! The end of after-sales. A delivered order waits in the `waiting-orders` index (bucket
//! `ARCHIVE#nnn`, sorted by when it was delivered), written there by the delivery itself; the
//! sweeper reads the orders whose window has passed and archives each with nothing of its
//! after-sales pending, or puts it off an hour while something is. Archiving moves the order to ARCHIVED and
//! counts it into its month's after-sales figures (`STATS#AFTERSALES` / `MONTH#yyyy-mm`) in one
//! transaction, on condition that neither the order nor its tickets moved since they were read.

use super::orders::{one, status, timestamp, NEXT_VERSION};
use super::tickets::AfterSalesUnits;
use super::waiting::{QUEUE, UNTIL};
use super::{keys, n, s, Store, StoreError};
use crate::domain::{Order, OrderId, OrderStatus};
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub(crate) fn archive_bucket(bucket: u32) -> String {
    format!("ARCHIVE#{bucket:03}")
}

fn month_key(month: &str) -> (String, String) {
    ("STATS#AFTERSALES".to_owned(), format!("MONTH#{month}"))
}

/// A month's archived orders and how many of them had after-sales.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterSalesMonth {
    /// Orders whose after-sales ended this month.
    #[serde(default)]
    pub archived: u64,
    /// Of those, orders with a ticket or a not-received claim.
    #[serde(default)]
    pub with_after_sales: u64,
    /// Of those, orders some ticket refunded.
    #[serde(default)]
    pub refunded: u64,
}

impl AfterSalesMonth {
    /// Orders with after-sales per hundred archived, to one decimal; none before the first.
    pub fn rate_pct(&self) -> Option<f64> {
        (self.archived > 0).then(|| (self.with_after_sales as f64 * 1000.0 / self.archived as f64).round() / 10.0)
    }
}

/// What an archived order counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchivedAs {
    pub with_after_sales: bool,
    pub refunded: bool,
}

impl Store {
    /// Delivered orders of `bucket` delivered by `delivered_by`, oldest first.
    pub async fn archive_due(
        &self,
        bucket: u32,
        delivered_by: OffsetDateTime,
        limit: i32,
    ) -> Result<Vec<Order>, StoreError> {
        self.waiting_page(archive_bucket(bucket), Some(delivered_by.unix_timestamp()), limit).await
    }

    /// The order is looked at again once `delivered_by` has reached `again`: false when it
    /// moved meanwhile (the next run reads it afresh).
    pub async fn archive_later(&self, order: &Order, again: OffsetDateTime) -> Result<bool, StoreError> {
        self.update_if(
            keys::order(order.order_id),
            &format!("SET {UNTIL} = :again {NEXT_VERSION}"),
            "version = :seen",
            &[],
            vec![(":again", n(again.unix_timestamp())), (":seen", n(order.version)), (":one", one())],
        )
        .await
    }

    /// Archive `order` at `now` as `counted` into `month` (`yyyy-mm`): the order ARCHIVED and
    /// waiting for its personal data's erasure at `erase_at`, the month's figures counted, on
    /// condition the order and its after-sales units (which every ticket opened or ended
    /// writes) are as read.
    pub async fn archive(
        &self,
        order: &Order,
        units: &AfterSalesUnits,
        counted: ArchivedAs,
        (month, now, erase_at): (&str, OffsetDateTime, OffsetDateTime),
    ) -> Result<bool, StoreError> {
        let archived = self
            .update(keys::order(order.order_id))
            .update_expression(format!(
                "SET #status = :archived, archived_at = :now, updated_at = :now, {QUEUE} = :erase, {UNTIL} = :erase_at {NEXT_VERSION}"
            ))
            .condition_expression("#status = :delivered AND version = :seen")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":archived", status(OrderStatus::Archived))
            .expression_attribute_values(":delivered", status(OrderStatus::Delivered))
            .expression_attribute_values(":seen", n(order.version))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":erase", s(super::erasure::erase_bucket(order.order_id.bucket(self.buckets()))))
            .expression_attribute_values(":erase_at", n(erase_at.unix_timestamp()))
            .expression_attribute_values(":one", one())
            .build()
            .expect("update has table, key and expression");
        let (pk, sk) = month_key(month);
        let counts = Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::key(pk, sk)))
            .update_expression("ADD archived :one, with_after_sales :with, refunded :refunded")
            .expression_attribute_values(":one", one())
            .expression_attribute_values(":with", n(u8::from(counted.with_after_sales)))
            .expression_attribute_values(":refunded", n(u8::from(counted.refunded)))
            .build()
            .expect("update has table, key and expression");
        let writes = vec![
            TransactWriteItem::builder().update(archived).build(),
            TransactWriteItem::builder().update(counts).build(),
            self.after_sales_units_unchanged(order.order_id, units),
        ];
        self.write_all(writes).await
    }

    fn after_sales_units_unchanged(&self, order: OrderId, units: &AfterSalesUnits) -> TransactWriteItem {
        let (pk, sk) = super::tickets::units_key(order);
        let check = ConditionCheck::builder().table_name(&self.table).set_key(Some(super::key(pk, sk)));
        let check = match units.version {
            0 => check.condition_expression("attribute_not_exists(PK)"),
            seen => check.condition_expression("version = :seen").expression_attribute_values(":seen", n(seen)),
        };
        TransactWriteItem::builder().condition_check(check.build().expect("check has table, key and condition")).build()
    }

    /// A month's after-sales figures (`month` as `yyyy-mm`); zeros before the first archive.
    pub async fn after_sales_month(&self, month: &str) -> Result<AfterSalesMonth, StoreError> {
        let (pk, sk) = month_key(month);
        Ok(self.get(pk, sk, "after-sales month").await?.unwrap_or_default())
    }
}

/// The index entry a delivery writes: the order's bucket, sorted by when it was delivered.
pub(crate) fn archive_entry(order: OrderId, buckets: u32, delivered_at: OffsetDateTime) -> (String, i64) {
    (archive_bucket(order.bucket(buckets)), delivered_at.unix_timestamp())
}
