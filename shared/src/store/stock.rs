//! Stock per (SKU, warehouse) and the warehouse catalogue. Staff writes are conditional too: a
//! count cannot name an unknown warehouse, an adjustment cannot take stock below zero.

use super::{from_item, key, keys, n, s, to_item, Store, StoreError};
use crate::domain::{Sku, StockLevels, Warehouse, WarehouseCatalogue, WarehouseId};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, ReturnValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockItem {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    /// Units that can be reserved now.
    pub available: i64,
    /// Units held for orders awaiting payment or review.
    pub reserved: i64,
    /// Units paid for (and, for cash on delivery, units in a shipment).
    #[serde(default)]
    pub sold: i64,
    /// Units found missing at picking and written off, with the reasons in the audit log.
    #[serde(default)]
    pub written_off: i64,
    /// Where the SKU lies in the warehouse; pick lists are ordered by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Error)]
pub enum AdjustError {
    #[error("no such warehouse")]
    UnknownWarehouse,
    #[error("no stock record for this SKU in this warehouse")]
    NotFound,
    #[error("the adjustment would take available stock below zero (available {available})")]
    WouldGoNegative { available: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Available units for every (SKU, warehouse) pair, in ceil(pairs / 100) round trips.
    pub async fn stock_levels(&self, skus: &[Sku], warehouses: &[WarehouseId]) -> Result<StockLevels, StoreError> {
        #[derive(Deserialize)]
        struct Level {
            sku: Sku,
            warehouse_id: WarehouseId,
            available: i64,
        }
        let wanted: Vec<(String, String)> =
            skus.iter().flat_map(|sku| warehouses.iter().map(move |wh| keys::stock(sku, wh))).collect();
        let mut levels = StockLevels::new();
        for item in self.batch_get(&wanted, true).await?.into_values() {
            let level: Level = from_item(item, "stock level")?;
            levels.insert((level.sku, level.warehouse_id), level.available);
        }
        Ok(levels)
    }

    /// Every warehouse's stock of one SKU.
    pub async fn stock_of(&self, sku: &Sku) -> Result<Vec<StockItem>, StoreError> {
        // The SKU's partition also holds its catalogue item: only the warehouses' rows are stock.
        self.query_items(keys::sku_partition(sku), Some("WH#"), "stock").await
    }

    /// A stocktake: set the available units of (SKU, warehouse), creating the record if needed.
    /// Reserved units are untouched; they belong to orders.
    pub async fn set_available(
        &self,
        sku: &Sku,
        warehouse: &WarehouseId,
        available: i64,
        bin: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<StockItem, AdjustError> {
        let (pk, sk) = keys::stock(sku, warehouse);
        let mut set = Update::builder().table_name(&self.table).set_key(Some(key(pk, sk))).update_expression(format!(
            "SET available = :available, reserved = if_not_exists(reserved, :zero), sku = :sku, \
                 warehouse_id = :wh, entity = :entity, updated_at = :now{}",
            if bin.is_some() { ", bin = :bin" } else { "" }
        ));
        if let Some(bin) = bin {
            set = set.expression_attribute_values(":bin", s(bin));
        }
        let set = set
            .expression_attribute_values(":available", n(available))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":sku", s(sku.as_str()))
            .expression_attribute_values(":wh", s(warehouse.as_str()))
            .expression_attribute_values(":entity", s("Stock"))
            .expression_attribute_values(":now", s(now.format(&Rfc3339).expect("UTC formats")))
            .build()
            .expect("update has table, key and expression");
        let (wpk, wsk) = keys::warehouse(warehouse);
        let warehouse_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(wpk, wsk)))
            .condition_expression("attribute_exists(PK)")
            .build()
            .expect("check has table, key and condition");
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(warehouse_exists).build())
            .transact_items(TransactWriteItem::builder().update(set).build())
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(err) => {
                return Err(match err.into_service_error() {
                    TransactWriteItemsError::TransactionCanceledException(_) => AdjustError::UnknownWarehouse,
                    other => StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string()).into(),
                })
            }
        }
        let (pk, sk) = keys::stock(sku, warehouse);
        self.get(pk, sk, "stock").await?.ok_or(AdjustError::NotFound)
    }

    /// Add `delta` (negative to remove) to the available units, never below zero.
    pub async fn adjust_available(
        &self,
        sku: &Sku,
        warehouse: &WarehouseId,
        delta: i64,
        now: OffsetDateTime,
    ) -> Result<StockItem, AdjustError> {
        let (pk, sk) = keys::stock(sku, warehouse);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression("SET available = available + :delta, updated_at = :now")
            .condition_expression("attribute_exists(PK) AND available >= :floor")
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":floor", n((-delta).max(0)))
            .expression_attribute_values(":now", s(now.format(&Rfc3339).expect("UTC formats")))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match result {
            Ok(output) => from_item(output.attributes.unwrap_or_default(), "stock").map_err(Into::into),
            Err(err) => match err.into_service_error() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
                    match e.item.map(|item| from_item::<StockItem>(item, "stock")).transpose()? {
                        Some(old) => Err(AdjustError::WouldGoNegative { available: old.available }),
                        None => Err(AdjustError::NotFound),
                    }
                }
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string()).into()),
            },
        }
    }

    pub async fn put_warehouse(&self, warehouse: &Warehouse) -> Result<(), StoreError> {
        let (pk, sk) = keys::warehouse(&warehouse.warehouse_id);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(warehouse, pk, sk, "Warehouse")))
            .send()
            .await
            .map_err(StoreError::aws)?;
        Ok(())
    }

    pub async fn warehouses(&self) -> Result<WarehouseCatalogue, StoreError> {
        Ok(WarehouseCatalogue::new(self.query_partition(keys::WAREHOUSE_PARTITION.to_owned(), "warehouse").await?))
    }

    pub(crate) async fn query_partition<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.query_items(pk, None, what).await
    }

    /// Every item of partition `pk` (those whose sort key starts with `sk_prefix`, if given).
    pub(crate) async fn query_items<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut values = HashMap::from([(":pk".to_owned(), s(pk))]);
        let condition = match sk_prefix {
            Some(prefix) => {
                values.insert(":prefix".to_owned(), s(prefix.to_owned()));
                "PK = :pk AND begins_with(SK, :prefix)"
            }
            None => "PK = :pk",
        };
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::aws)?;
            for item in output.items.unwrap_or_default() {
                found.push(from_item(item, what)?);
            }
            match output.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(found),
            }
        }
    }
}
