//! Transaction items that move units between the counters of one stock item, and between the
//! shards of one (SKU, warehouse).
//!
//! A move out of `available` is conditional on that item having the units: that condition is
//! what keeps any item, and so the sum over a split SKU's items, from overselling. A move out of
//! another counter (reserved, sold) is conditional too, except on the items of a split SKU
//! (`pooled`): there those counters are only meaningful summed over the items, since a parcel's
//! units leave the SKU's own item whichever shard reserved them.

use super::orders::timestamp;
use super::{keys, n, Store};
use crate::domain::{Allocation, ShardLevels, Sku, WarehouseId};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use time::OffsetDateTime;

/// The counter whose units can be sold; the only one kept per shard.
pub(crate) const AVAILABLE: &str = "available";

impl Store {
    /// Move an allocation's units from one counter to another, on the item that reserved them.
    pub(crate) fn stock_move(
        &self,
        allocation: &Allocation,
        from: &str,
        to: &str,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let (sku, warehouse) = (&allocation.sku, &allocation.warehouse);
        let key = keys::stock_shard(sku, warehouse, allocation.shard);
        self.counter_move(key, allocation.quantity.get(), (from, to), now)
    }

    /// Move `quantity` units of (SKU, warehouse) from one of its stock counters to another, on
    /// the SKU's own item, on condition that the first holds them.
    pub fn stock_shift(
        &self,
        sku: &Sku,
        warehouse: &WarehouseId,
        quantity: u32,
        counters: (&str, &str),
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        self.counter_move(keys::stock(sku, warehouse), quantity, counters, now)
    }

    /// Take `quantity` available units of (SKU, warehouse) into counter `to`, from the first item
    /// of `levels` that has them all; from the SKU's own item when it is not split or none has
    /// them (its condition then refuses the take).
    pub fn stock_take(
        &self,
        (sku, warehouse): (&Sku, &WarehouseId),
        quantity: u32,
        to: &str,
        levels: Option<&ShardLevels>,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let shard = levels.and_then(|l| l.pick(i64::from(quantity), 0)).unwrap_or(0);
        self.counter_move(keys::stock_shard(sku, warehouse, shard), quantity, (AVAILABLE, to), now)
    }

    fn counter_move(
        &self,
        key: (String, String),
        quantity: u32,
        (from, to): (&str, &str),
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        // A pooled item may not have the counter yet (its units were reserved or sold on another
        // shard): it counts from zero, and may go below it; the sum over the items is right.
        let mut update = self.update(key).update_expression(
            "SET #from = if_not_exists(#from, :zero) - :q, #to = if_not_exists(#to, :zero) + :q, updated_at = :now",
        );
        update = if from == AVAILABLE {
            update.condition_expression("#from >= :q")
        } else {
            (update.condition_expression("#from >= :q OR pooled = :pooled"))
                .expression_attribute_values(":pooled", AttributeValue::Bool(true))
        };
        let update = update
            .expression_attribute_names("#from", from)
            .expression_attribute_names("#to", to)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":q", n(quantity))
            .expression_attribute_values(":now", timestamp(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("update has table, key and expression");
        TransactWriteItem::builder().update(update).build()
    }

    /// Add `delta` (negative to take) to one shard's available units: on condition that it has
    /// them when taking, and that the item exists when adding.
    pub(crate) fn shard_move(
        &self,
        (sku, warehouse, shard): (&Sku, &WarehouseId, u32),
        delta: i64,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let update = self
            .update(keys::stock_shard(sku, warehouse, shard))
            .update_expression("SET available = available + :delta, updated_at = :now")
            .condition_expression(if delta < 0 { "available >= :taken" } else { "attribute_exists(available)" })
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":now", timestamp(now));
        let update = if delta < 0 { update.expression_attribute_values(":taken", n(-delta)) } else { update };
        TransactWriteItem::builder().update(update.build().expect("update has table, key and expression")).build()
    }
}
