//! A split SKU's stock items: reading their levels, the layouts reservation spreads over, and
//! the transactions that split, rebalance, gather and merge them (each conserves the available
//! units it moves; [`crate::domain::stock_shards`] decides the moves).
//!
//! The SKU's own item (`SKU#<sku>` / `WH#<warehouse>`) keeps the layout: `shards` (how many take
//! reservations), `shard_items` (how many items exist; it never shrinks, since a former shard may
//! still hold units reserved or sold through it) and `pooled` (set once split, for good).

use super::stock::{AdjustError, StockItem};
use super::stock_moves::AVAILABLE;
use super::{from_item, key, keys, n, orders::timestamp, s, Store, StoreError};
use crate::domain::{ShardLevels, Sku, StockLevels, WarehouseId};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use time::OffsetDateTime;

/// Reads and tries of one split or merge before the caller is told to retry.
const ATTEMPTS: usize = 5;

/// Which shards take reservations, per split (SKU, warehouse).
pub type ShardLayouts = HashMap<(Sku, WarehouseId), u32>;

#[derive(Deserialize)]
struct OwnItem {
    sku: Sku,
    warehouse_id: WarehouseId,
    available: i64,
    #[serde(default)]
    shards: Option<u32>,
    #[serde(default)]
    shard_items: Option<u32>,
}

#[derive(Deserialize)]
struct Layout {
    sku: Sku,
    warehouse_id: WarehouseId,
    shards: u32,
}

impl Store {
    /// Available units of every (SKU, warehouse) pair, summed over its items.
    pub async fn stock_levels(&self, skus: &[Sku], warehouses: &[WarehouseId]) -> Result<StockLevels, StoreError> {
        let levels = self.shard_levels(skus, warehouses).await?;
        Ok(levels.into_iter().map(|(pair, level)| (pair, level.total())).collect())
    }

    /// Each (SKU, warehouse) pair's available units by item: one `BatchGetItem` per hundred
    /// pairs, and one more per hundred shards only when some pair is split.
    pub async fn shard_levels(
        &self,
        skus: &[Sku],
        warehouses: &[WarehouseId],
    ) -> Result<HashMap<(Sku, WarehouseId), ShardLevels>, StoreError> {
        let wanted: Vec<(String, String)> =
            skus.iter().flat_map(|sku| warehouses.iter().map(move |wh| keys::stock(sku, wh))).collect();
        let mut own = Vec::new();
        for item in self.batch_get(&wanted, true).await?.into_values() {
            own.push(from_item::<OwnItem>(item, "stock level")?);
        }
        let shard_keys: Vec<(String, String)> = (own.iter())
            .flat_map(|o| (1..o.shard_items.unwrap_or(1)).map(|k| keys::stock_shard(&o.sku, &o.warehouse_id, k)))
            .collect();
        let shards = if shard_keys.is_empty() { HashMap::new() } else { self.batch_get(&shard_keys, true).await? };
        let available_at = |key: (String, String)| -> Result<i64, StoreError> {
            #[derive(Deserialize)]
            struct Available {
                available: i64,
            }
            let item = shards.get(&key).cloned();
            Ok(item.map(|i| from_item::<Available>(i, "stock shard")).transpose()?.map_or(0, |a| a.available))
        };
        let mut levels = HashMap::with_capacity(own.len());
        for o in own {
            let mut available = vec![o.available];
            for k in 1..o.shard_items.unwrap_or(1) {
                available.push(available_at(keys::stock_shard(&o.sku, &o.warehouse_id, k))?);
            }
            levels.insert((o.sku, o.warehouse_id), ShardLevels::new(o.shards.unwrap_or(1), available));
        }
        Ok(levels)
    }

    /// One (SKU, warehouse) pair's available units by item; None when it has no stock record.
    pub(crate) async fn shard_levels_of(
        &self,
        sku: &Sku,
        warehouse: &WarehouseId,
    ) -> Result<Option<ShardLevels>, StoreError> {
        let levels = self.shard_levels(std::slice::from_ref(sku), std::slice::from_ref(warehouse)).await?;
        Ok(levels.into_values().next())
    }

    /// Every split (SKU, warehouse) and how many of its shards take reservations.
    pub async fn shard_layouts(&self) -> Result<ShardLayouts, StoreError> {
        let layouts: Vec<Layout> = self.query_partition(keys::STOCK_SHARDS_PARTITION.to_owned(), "layout").await?;
        Ok(layouts.into_iter().map(|l| ((l.sku, l.warehouse_id), l.shards)).collect())
    }

    /// The SKU's own item as staff see it: for a split SKU, its counters summed over every item.
    pub(crate) async fn summed_over_shards(&self, mut own: StockItem) -> Result<StockItem, StoreError> {
        let items = own.shard_items.unwrap_or(1);
        if items <= 1 {
            return Ok(own);
        }
        let wanted: Vec<_> = (1..items).map(|k| keys::stock_shard(&own.sku, &own.warehouse_id, k)).collect();
        let mut found = self.batch_get(&wanted, true).await?;
        own.available_by_shard = vec![own.available];
        for key in wanted {
            let Some(item) = found.remove(&key) else {
                own.available_by_shard.push(0);
                continue;
            };
            let shard: StockItem = from_item(item, "stock shard")?;
            own.available_by_shard.push(shard.available);
            own.available += shard.available;
            own.reserved += shard.reserved;
            own.sold += shard.sold;
            own.written_off += shard.written_off;
        }
        own.shards = Some(own.shards.unwrap_or(1));
        Ok(own)
    }

    /// Split (SKU, warehouse)'s stock over `shards` items taking reservations, its available
    /// units spread evenly; the same count again rebalances them, 1 merges them back into the
    /// SKU's own item. One audited transaction that conserves the available units; tried again
    /// on a fresh read when orders moved the counts meanwhile.
    pub async fn split_stock(
        &self,
        (sku, warehouse): (&Sku, &WarehouseId),
        shards: u32,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<StockItem, AdjustError> {
        for _ in 0..ATTEMPTS {
            let levels = self.shard_levels_of(sku, warehouse).await?.ok_or(AdjustError::NotFound)?;
            if shards == 1 && levels.by_shard().len() == 1 {
                // Never split: nothing to merge, and the SKU keeps its per-item checks.
                return self.stock_figure(sku, warehouse).await;
            }
            let deltas = levels.spread(shards);
            let mut writes = vec![self.own_layout(sku, warehouse, (shards, deltas.len() as u32), deltas[0], now)];
            for (k, delta) in deltas.iter().enumerate().skip(1) {
                if k >= levels.by_shard().len() {
                    writes.push(self.new_shard((sku, warehouse, k as u32), *delta, now));
                } else if *delta != 0 {
                    writes.push(self.shard_move((sku, warehouse, k as u32), *delta, now));
                }
            }
            writes.push(self.layout_entry(sku, warehouse, shards));
            let after: Vec<i64> =
                (0..deltas.len()).map(|k| levels.by_shard().get(k).copied().unwrap_or(0).max(0) + deltas[k]).collect();
            let before = json!({ "shards": levels.active(), "available_by_shard": levels.by_shard() });
            let after = json!({ "shards": shards, "available_by_shard": after });
            let subject = format!("stock/{sku}/{warehouse}");
            writes.push(self.audit_record(actor, "stock.split", &subject, Some(&before), Some(&after), now));
            if self.write_all(writes).await? {
                return self.stock_figure(sku, warehouse).await;
            }
        }
        Err(AdjustError::Contended)
    }

    /// One (SKU, warehouse)'s stock as staff see it (summed over its items).
    pub(crate) async fn stock_figure(&self, sku: &Sku, warehouse: &WarehouseId) -> Result<StockItem, AdjustError> {
        let (pk, sk) = keys::stock(sku, warehouse);
        let own: StockItem = self.get(pk, sk, "stock").await?.ok_or(AdjustError::NotFound)?;
        Ok(self.summed_over_shards(own).await?)
    }

    /// Move units between the shards of one (SKU, warehouse) (changes summing to zero), so a
    /// line larger than any one shard's units can be reserved from one. False when some shard
    /// no longer had what it was to give.
    pub async fn gather_stock(
        &self,
        (sku, warehouse): (&Sku, &WarehouseId),
        deltas: &[i64],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        debug_assert_eq!(deltas.iter().sum::<i64>(), 0, "a gather conserves the units");
        let writes: Vec<TransactWriteItem> = (deltas.iter().enumerate())
            .filter(|(_, d)| **d != 0)
            .map(|(k, d)| self.shard_move((sku, warehouse, k as u32), *d, now))
            .collect();
        if writes.is_empty() {
            return Ok(true);
        }
        self.write_all(writes).await
    }

    /// The SKU's own item: its layout, and its share of the move.
    fn own_layout(
        &self,
        sku: &Sku,
        warehouse: &WarehouseId,
        (shards, items): (u32, u32),
        delta: i64,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let taking = if delta < 0 { " AND available >= :taken" } else { "" };
        let update = self
            .update(keys::stock(sku, warehouse))
            .update_expression(
                "SET available = available + :delta, shards = :shards, shard_items = :items, pooled = :yes, \
                 updated_at = :now",
            )
            // shard_items never shrinks: a stale read must not hide an item that holds units.
            .condition_expression(format!(
                "attribute_exists(available) AND (attribute_not_exists(shard_items) OR shard_items <= :items){taking}"
            ))
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":shards", n(shards))
            .expression_attribute_values(":items", n(items))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":now", timestamp(now));
        let update = if delta < 0 { update.expression_attribute_values(":taken", n(-delta)) } else { update };
        TransactWriteItem::builder().update(update.build().expect("update has table, key and expression")).build()
    }

    /// A shard item that did not exist, with `delta` units (if a concurrent split made it
    /// first, the units are added to it).
    fn new_shard(
        &self,
        (sku, warehouse, shard): (&Sku, &WarehouseId, u32),
        delta: i64,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let update = self
            .update(keys::stock_shard(sku, warehouse, shard))
            .update_expression(format!(
                "SET {AVAILABLE} = if_not_exists({AVAILABLE}, :zero) + :delta, reserved = if_not_exists(reserved, :zero), \
                 sku = :sku, warehouse_id = :wh, entity = :entity, pooled = :yes, shard_index = :shard, updated_at = :now"
            ))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":sku", s(sku.as_str()))
            .expression_attribute_values(":wh", s(warehouse.as_str()))
            .expression_attribute_values(":entity", s("StockShard"))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":shard", n(shard))
            .expression_attribute_values(":now", timestamp(now));
        TransactWriteItem::builder().update(update.build().expect("update has table, key and expression")).build()
    }

    /// The registry entry reservation reads: present while more than one shard takes orders.
    fn layout_entry(&self, sku: &Sku, warehouse: &WarehouseId, shards: u32) -> TransactWriteItem {
        let (pk, sk) = keys::stock_layout(sku, warehouse);
        if shards <= 1 {
            let delete = Delete::builder().table_name(&self.table).set_key(Some(key(pk, sk)));
            return TransactWriteItem::builder().delete(delete.build().expect("delete has table and key")).build();
        }
        let item = HashMap::from([
            ("PK".to_owned(), s(pk)),
            ("SK".to_owned(), s(sk)),
            ("entity".to_owned(), s("StockLayout")),
            ("sku".to_owned(), s(sku.as_str())),
            ("warehouse_id".to_owned(), s(warehouse.as_str())),
            ("shards".to_owned(), n(shards)),
        ]);
        let put = aws_sdk_dynamodb::types::Put::builder().table_name(&self.table).set_item(Some(item));
        TransactWriteItem::builder().put(put.build().expect("put has table and item")).build()
    }
}
