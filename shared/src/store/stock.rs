//! Stock per (SKU, warehouse) and the warehouse catalogue (staff's saves audited). Staff's
//! changes to the counts are [`super::stocktake`]'s.

use super::{from_item, keys, s, Store, StoreError};
use crate::domain::{Sku, Warehouse, WarehouseCatalogue, WarehouseId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use thiserror::Error;
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
    /// When the stock is split ([`crate::domain::stock_shards`]): how many shards take
    /// reservations. The counters above are then the sums over every item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// When the stock is split: each item's available units, by shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub available_by_shard: Vec<i64>,
    /// How many items (the SKU's own and its shards, current or former) hold this stock.
    #[serde(default, skip_serializing)]
    pub(crate) shard_items: Option<u32>,
}

#[derive(Debug, Error)]
pub enum AdjustError {
    #[error("no such warehouse")]
    UnknownWarehouse,
    #[error("no stock record for this SKU in this warehouse")]
    NotFound,
    #[error("the adjustment would take available stock below zero (available {available})")]
    WouldGoNegative { available: i64 },
    #[error("the stock is split over shards: merge them first")]
    Split,
    #[error("the count kept changing while the change was applied")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Every warehouse's stock of one SKU.
    pub async fn stock_of(&self, sku: &Sku) -> Result<Vec<StockItem>, StoreError> {
        // The SKU's partition also holds its catalogue item: only the warehouses' rows are stock.
        let own: Vec<StockItem> = self.query_items(keys::sku_partition(sku), Some("WH#"), "stock").await?;
        let mut figures = Vec::with_capacity(own.len());
        for item in own {
            figures.push(self.summed_over_shards(item).await?);
        }
        Ok(figures)
    }

    /// Save a warehouse (new or replaced), audited with what it replaced.
    pub async fn save_warehouse(
        &self,
        warehouse: &Warehouse,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let subject = format!("warehouses/{}", warehouse.warehouse_id);
        let change = super::audit::Change { actor, action: "warehouse.save", subject: &subject, now };
        self.replace_audited(keys::warehouse(&warehouse.warehouse_id), "Warehouse", warehouse, change).await
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
        let query = (self.client.query())
            .table_name(&self.table)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .consistent_read(true);
        Self::all_pages(query).await?.into_iter().map(|item| from_item(item, what)).collect()
    }
}
