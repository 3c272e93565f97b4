//! Staff's changes to stock counts, each audited in its own transaction with the count before
//! and after: a stocktake sets the available units, an adjustment adds or removes some. Each
//! writes only if the count is still the one read (reservations change it all the time), and
//! reads again when it was not, a few times.

use super::stock::{AdjustError, StockItem};
use super::{cancellation_codes, key, keys, n, s, Store, StoreError};
use crate::domain::{Sku, WarehouseId};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Reads and tries per change before the caller is told to retry.
const ATTEMPTS: usize = 5;

/// A staff change to one stock count.
pub struct StockChange<'a> {
    pub actor: &'a str,
    /// Why (an adjustment's reason), kept in the audit record.
    pub reason: Option<&'a str>,
    pub now: OffsetDateTime,
}

impl Store {
    /// A stocktake: set the available units of (SKU, warehouse), creating the record if needed
    /// (the warehouse must exist). Reserved units are untouched; they belong to orders.
    pub async fn set_available(
        &self,
        sku: &Sku,
        warehouse: &WarehouseId,
        available: i64,
        bin: Option<&str>,
        change: StockChange<'_>,
    ) -> Result<StockItem, AdjustError> {
        for _ in 0..ATTEMPTS {
            let before = self.stock_item(sku, warehouse).await?;
            let bin = bin.map(str::to_owned).or_else(|| before.as_ref().and_then(|b| b.bin.clone()));
            let after = json!({ "available": available, "bin": bin });
            if self
                .write_count(
                    sku,
                    warehouse,
                    before.as_ref(),
                    available,
                    bin.as_deref(),
                    "stock.stocktake",
                    after,
                    &change,
                )
                .await?
            {
                return self.stock_figure(sku, warehouse).await;
            }
        }
        Err(AdjustError::Contended)
    }

    /// Add `delta` (negative to remove) to the available units, never below zero.
    pub async fn adjust_available(
        &self,
        sku: &Sku,
        warehouse: &WarehouseId,
        delta: i64,
        change: StockChange<'_>,
    ) -> Result<StockItem, AdjustError> {
        for _ in 0..ATTEMPTS {
            let before = self.stock_item(sku, warehouse).await?.ok_or(AdjustError::NotFound)?;
            let available = before.available.checked_add(delta).filter(|a| *a >= 0);
            let available = available.ok_or(AdjustError::WouldGoNegative { available: before.available })?;
            let after = json!({ "available": available, "delta": delta, "reason": change.reason });
            let bin = before.bin.clone();
            if self
                .write_count(sku, warehouse, Some(&before), available, bin.as_deref(), "stock.adjust", after, &change)
                .await?
            {
                return self.stock_figure(sku, warehouse).await;
            }
        }
        Err(AdjustError::Contended)
    }

    /// The SKU's own item, which holds every available unit unless the stock is split: a count
    /// set on it would then not be the SKU's count, so that is refused until a merge.
    async fn stock_item(&self, sku: &Sku, warehouse: &WarehouseId) -> Result<Option<StockItem>, AdjustError> {
        let (pk, sk) = keys::stock(sku, warehouse);
        let own: Option<StockItem> = self.get(pk, sk, "stock").await?;
        if let Some(own) = own.as_ref().filter(|o| o.shard_items.unwrap_or(1) > 1) {
            let level = self.shard_levels_of(sku, warehouse).await?.ok_or(AdjustError::NotFound)?;
            if level.active() > 1 || level.total() != own.available.max(0) {
                return Err(AdjustError::Split);
            }
        }
        Ok(own)
    }

    /// Set the count, if it is still `before`'s, with its audit record; false when it changed
    /// meanwhile.
    #[allow(clippy::too_many_arguments)]
    async fn write_count(
        &self,
        sku: &Sku,
        warehouse: &WarehouseId,
        before: Option<&StockItem>,
        available: i64,
        bin: Option<&str>,
        action: &str,
        after: serde_json::Value,
        change: &StockChange<'_>,
    ) -> Result<bool, AdjustError> {
        let (pk, sk) = keys::stock(sku, warehouse);
        let mut set = Update::builder().table_name(&self.table).set_key(Some(key(pk, sk))).update_expression(format!(
            "SET available = :available, reserved = if_not_exists(reserved, :zero), sku = :sku, \
                 warehouse_id = :wh, entity = :entity, updated_at = :now{}",
            if bin.is_some() { ", bin = :bin" } else { "" }
        ));
        if let Some(bin) = bin {
            set = set.expression_attribute_values(":bin", s(bin));
        }
        set = match before {
            Some(seen) => {
                set.condition_expression("available = :seen").expression_attribute_values(":seen", n(seen.available))
            }
            None => set.condition_expression("attribute_not_exists(PK)"),
        };
        let set = set
            .expression_attribute_values(":available", n(available))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":sku", s(sku.as_str()))
            .expression_attribute_values(":wh", s(warehouse.as_str()))
            .expression_attribute_values(":entity", s("Stock"))
            .expression_attribute_values(":now", s(change.now.format(&Rfc3339).expect("UTC formats")))
            .build()
            .expect("update has table, key and expression");
        let (wpk, wsk) = keys::warehouse(warehouse);
        let warehouse_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(wpk, wsk)))
            .condition_expression("attribute_exists(PK)")
            .build()
            .expect("check has table, key and condition");
        let subject = format!("stock/{sku}/{warehouse}");
        let before = before.map(|b| json!({ "available": b.available, "bin": b.bin }));
        let audit = self.audit_record(change.actor, action, &subject, before.as_ref(), Some(&after), change.now);
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(warehouse_exists).build())
            .transact_items(TransactWriteItem::builder().update(set).build())
            .transact_items(audit)
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(true),
            // In request order: the warehouse check, the count, the record.
            Err(TransactWriteItemsError::TransactionCanceledException(e)) => {
                match cancellation_codes(e.cancellation_reasons()).as_slice() {
                    ["ConditionalCheckFailed", ..] => Err(AdjustError::UnknownWarehouse),
                    [_, "ConditionalCheckFailed", ..] => Ok(false),
                    codes if codes.contains(&"TransactionConflict") => Ok(false),
                    codes => Err(StoreError::Aws(format!("stock change cancelled: {codes:?}")).into()),
                }
            }
            Err(TransactWriteItemsError::TransactionInProgressException(_)) => Ok(false),
            Err(other) => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string()).into()),
        }
    }
}
