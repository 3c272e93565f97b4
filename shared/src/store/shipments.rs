//! Shipments and pick waves in the table. A shipment's item sits in its order's partition
//! (`ORDER#<id>` / `SHIPMENT#nnn`), so the order and its shipments are read in one query. A
//! shipment is written whole, conditional on the version it was read at: two pickers, a picker
//! and a cancel, a hand-over and a shortage answer cannot both win. The writes that go with a
//! shipment's move (stock, the order, its sibling shipments) are built here and committed with
//! it in one transaction by the fulfilment handlers.
//!
//! Waiting shipments sit in the sparse `waiting-orders` index: PENDING ones in `PICK#<warehouse>`
//! by promised dispatch time (for waves), SHORTAGE and BACKORDERED ones in `SHIPDUE#nnn` by the
//! time the sweeper must act.

use super::orders::{one, status, timestamp, NEXT_VERSION};
use super::{from_item, key, keys, n, s, to_item, Item, Store, StoreError};
use crate::domain::wave::Wave;
use crate::domain::{
    CatalogueItem, Order, OrderId, OrderStatus, Shipment, ShipmentId, ShipmentStatus, Sku, WarehouseId,
};
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};
use std::collections::HashMap;
use time::OffsetDateTime;

/// What fulfilment reads to make shipments: catalogue items (barcodes, sizes, flags) and stock
/// items (bins), in one `BatchGetItem`.
#[derive(Debug, Default)]
pub struct FulfilmentFacts {
    pub catalogue: HashMap<Sku, CatalogueItem>,
    pub bins: HashMap<(Sku, WarehouseId), String>,
}

/// A shipment to write: new (`seen` is `None`) or as changed from the shipment as it was read.
#[derive(Debug, Clone, Copy)]
pub struct ShipmentWrite<'a> {
    pub shipment: &'a Shipment,
    pub seen: Option<&'a Shipment>,
}

/// The order is in the status and has the shipments (or none) it was read with.
fn shipments_condition(order: &Order) -> &'static str {
    match order.shipments {
        Some(_) => "#status = :seen AND shipments = :count",
        None => "#status = :seen AND attribute_not_exists(shipments)",
    }
}

impl Store {
    fn shipment_item(&self, shipment: &Shipment) -> Item {
        let (pk, sk) = keys::shipment(&shipment.shipment_id);
        let mut item = to_item(shipment, pk, sk, "Shipment");
        let bucket = || keys::shipment_due_bucket(shipment.order_id.bucket(self.expiry_buckets));
        let waiting = match shipment.status {
            ShipmentStatus::Pending => {
                Some((keys::pick_queue(&shipment.warehouse), shipment.dispatch_by.unix_timestamp()))
            }
            ShipmentStatus::Shortage => shipment.shortage.as_ref().map(|s| (bucket(), s.answer_by.unix_timestamp())),
            ShipmentStatus::Backordered => {
                shipment.backorder_until.map(|date| (bucket(), date.midnight().assume_utc().unix_timestamp()))
            }
            // A parcel on its way: when the tracking poller must look at it next.
            ShipmentStatus::HandedOver => {
                shipment.tracking.as_ref().and_then(|t| t.next_check_at).map(|at| {
                    (keys::tracking_bucket(shipment.order_id.bucket(self.expiry_buckets)), at.unix_timestamp())
                })
            }
            _ => None,
        };
        if let Some((queue, until)) = waiting {
            item.insert(super::waiting::QUEUE.to_owned(), s(queue));
            item.insert(super::waiting::UNTIL.to_owned(), n(until));
        }
        item
    }

    /// The audit record of a staff change to a parcel (subject `shipments/<id>`): its status
    /// before and after, and what the change adds (`detail`, merged into the after).
    pub fn shipment_audit(
        &self,
        actor: &str,
        action: &str,
        (seen, changed): (&Shipment, &Shipment),
        detail: serde_json::Value,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let subject = format!("shipments/{}", changed.shipment_id);
        let before = serde_json::json!({ "status": seen.status });
        let mut after = serde_json::json!({ "status": changed.status });
        if let (Some(after), serde_json::Value::Object(detail)) = (after.as_object_mut(), detail) {
            after.extend(detail);
        }
        self.audit_record(actor, action, &subject, Some(&before), Some(&after), now)
    }

    /// The put of a shipment: a new one must not exist; a changed one must still be at the
    /// version it was read at, and is written one version on.
    pub fn put_shipment(&self, write: ShipmentWrite<'_>) -> TransactWriteItem {
        let mut shipment = write.shipment.clone();
        let put = Put::builder().table_name(&self.table);
        let put = match write.seen {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(seen) => {
                // The domain's state machine is the only source of transitions: in the tests
                // (debug builds) a move it does not list stops the test where it is written.
                debug_assert!(
                    seen.status == shipment.status || seen.status.can_become(shipment.status),
                    "{} may not move from {} to {}",
                    shipment.shipment_id,
                    seen.status.as_str(),
                    shipment.status.as_str()
                );
                shipment.version = seen.version + 1;
                put.condition_expression("version = :seen").expression_attribute_values(":seen", n(seen.version))
            }
        };
        let put = put.set_item(Some(self.shipment_item(&shipment))).build().expect("put has table and item");
        TransactWriteItem::builder().put(put).build()
    }

    /// A sibling shipment must still be at the version read: a move that depends on the others'
    /// statuses (the order shipped when the last is handed over) is decided on a true picture.
    pub fn shipment_unchanged(&self, shipment: &Shipment) -> TransactWriteItem {
        let (pk, sk) = keys::shipment(&shipment.shipment_id);
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", n(shipment.version))
            .build()
            .expect("check has table, key and condition");
        TransactWriteItem::builder().condition_check(check).build()
    }

    /// The order must still be in the status and have the shipments it was read with.
    pub fn order_unchanged(&self, order: &Order) -> TransactWriteItem {
        let (pk, sk) = keys::order(order.order_id);
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression(shipments_condition(order))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":seen", status(order.status));
        let check = match order.shipments {
            Some(count) => check.expression_attribute_values(":count", n(count)),
            None => check,
        };
        let check = check.build().expect("check has table, key and condition");
        TransactWriteItem::builder().condition_check(check).build()
    }

    /// The order now has `count` shipments (made, or one more by an exchange from another
    /// warehouse), conditional on its status and the count it was read with.
    pub fn order_shipment_count(&self, order: &Order, count: u32, now: OffsetDateTime) -> TransactWriteItem {
        let condition = match order.shipments {
            None => "#status = :seen AND attribute_not_exists(shipments)",
            Some(_) => "#status = :seen AND shipments = :before",
        };
        let mut update = self
            .update(keys::order(order.order_id))
            .update_expression(format!("SET shipments = :count, updated_at = :now {NEXT_VERSION}"))
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":seen", status(order.status))
            .expression_attribute_values(":count", n(count))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one());
        if let Some(before) = order.shipments {
            update = update.expression_attribute_values(":before", n(before));
        }
        TransactWriteItem::builder().update(update.build().expect("update has table, key and expression")).build()
    }

    /// The order moves on as its shipments ended (SHIPPED), or is cancelled (after payment, with
    /// `refund_due_minor` still to refund); conditional on its status and shipment count. A
    /// cash-on-delivery order's hold, kept until now, is committed by the shipping or released
    /// by the cancel.
    pub fn order_moves(
        &self,
        order: &Order,
        next: OrderStatus,
        refund_due_minor: Option<i64>,
        now: OffsetDateTime,
    ) -> Vec<TransactWriteItem> {
        let mut writes = vec![self.order_status_moves(order, next, refund_due_minor, now)];
        if order.status == OrderStatus::CodApproved {
            let ended = if next == OrderStatus::Shipped { "COMMITTED" } else { "RELEASED" };
            writes.push(self.hold_transition(order.order_id, "HELD", ended, true));
        }
        writes
    }

    fn order_status_moves(
        &self,
        order: &Order,
        next: OrderStatus,
        refund_due_minor: Option<i64>,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let refund = if refund_due_minor.is_some() { ", refund_due_minor = :due" } else { "" };
        let mut update = self
            .update(keys::order(order.order_id))
            .update_expression(format!("SET #status = :next, updated_at = :now{refund} {NEXT_VERSION}"))
            .condition_expression(shipments_condition(order))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":next", status(next))
            .expression_attribute_values(":seen", status(order.status))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one());
        if let Some(due) = refund_due_minor {
            update = update.expression_attribute_values(":due", n(due));
        }
        if let Some(count) = order.shipments {
            update = update.expression_attribute_values(":count", n(count));
        }
        TransactWriteItem::builder().update(update.build().expect("update has table, key and expression")).build()
    }

    /// Commit a fulfilment change: true when every condition held, false when something moved
    /// meanwhile (the caller reads again and decides again). A lone shipment is one conditional
    /// put, not a transaction.
    pub async fn commit(&self, mut items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        if items.len() == 1 && items[0].put().is_some() {
            let put = items.pop().and_then(|i| i.put).expect("checked above");
            let mut request = self
                .client
                .put_item()
                .table_name(put.table_name)
                .set_item(Some(put.item))
                .set_condition_expression(put.condition_expression)
                .set_expression_attribute_values(put.expression_attribute_values);
            request = request.set_expression_attribute_names(put.expression_attribute_names);
            return match request.send().await {
                Ok(_) => Ok(true),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
                Err(e) => Err(StoreError::aws(e)),
            };
        }
        self.write_all(items).await
    }

    /// An order and its shipments, in one strongly consistent query of its partition.
    pub async fn order_and_shipments(&self, id: OrderId) -> Result<(Option<Order>, Vec<Shipment>), StoreError> {
        let (pk, _) = keys::order(id);
        let items: Vec<Item> = self.query_raw(pk).await?;
        let mut order = None;
        let mut shipments = Vec::new();
        for item in items {
            match item.get("entity").and_then(|e| e.as_s().ok()).map(String::as_str) {
                Some("Order") => order = Some(from_item(item, "order")?),
                Some("Shipment") => shipments.push(from_item(item, "shipment")?),
                _ => {}
            }
        }
        shipments.sort_by_key(|s: &Shipment| s.shipment_id.number);
        Ok((order, shipments))
    }

    pub async fn shipment(&self, id: &ShipmentId) -> Result<Option<Shipment>, StoreError> {
        let (pk, sk) = keys::shipment(id);
        self.get(pk, sk, "shipment").await
    }

    /// Catalogue items of `skus` and the bins of `pairs`, in one `BatchGetItem` (per hundred).
    pub async fn fulfilment_facts(
        &self,
        skus: &[Sku],
        pairs: &[(Sku, WarehouseId)],
    ) -> Result<FulfilmentFacts, StoreError> {
        let mut wanted: Vec<(String, String)> = skus.iter().map(keys::catalogue).collect();
        wanted.extend(pairs.iter().map(|(sku, wh)| keys::stock(sku, wh)));
        let mut facts = FulfilmentFacts::default();
        for (_, item) in self.batch_get(&wanted, false).await? {
            match item.get("entity").and_then(|e| e.as_s().ok()).map(String::as_str) {
                Some("CatalogueItem") => {
                    let catalogue: CatalogueItem = from_item(item, "catalogue item")?;
                    facts.catalogue.insert(catalogue.sku.clone(), catalogue);
                }
                Some("Stock") => {
                    let stock: super::StockItem = from_item(item, "stock")?;
                    if let Some(bin) = stock.bin {
                        facts.bins.insert((stock.sku, stock.warehouse_id), bin);
                    }
                }
                _ => {}
            }
        }
        Ok(facts)
    }

    /// Shipments of `warehouse` waiting for a wave, soonest due first.
    pub async fn pending_shipments(&self, warehouse: &WarehouseId, limit: i32) -> Result<Vec<Shipment>, StoreError> {
        self.waiting_page(keys::pick_queue(warehouse), None, limit).await
    }

    /// Shipments in `bucket` whose shortage answer or backorder date is due by `now`.
    pub async fn shipments_due(
        &self,
        bucket: u32,
        now: OffsetDateTime,
        limit: i32,
    ) -> Result<Vec<Shipment>, StoreError> {
        self.waiting_page(keys::shipment_due_bucket(bucket), Some(now.unix_timestamp()), limit).await
    }

    pub fn put_wave(&self, wave: &Wave) -> TransactWriteItem {
        let (pk, sk) = keys::wave(&wave.wave_id);
        self.put_if_absent(to_item(wave, pk, sk, "Wave"))
    }

    pub async fn wave(&self, id: &str) -> Result<Option<Wave>, StoreError> {
        let (pk, sk) = keys::wave(id);
        self.get(pk, sk, "wave").await
    }

    /// The shipments of `ids`, in one `BatchGetItem` (strongly consistent).
    pub async fn shipments(&self, ids: &[ShipmentId]) -> Result<Vec<Shipment>, StoreError> {
        let wanted: Vec<(String, String)> = ids.iter().map(keys::shipment).collect();
        let mut found: Vec<Shipment> = Vec::new();
        for (_, item) in self.batch_get(&wanted, true).await? {
            found.push(from_item(item, "shipment")?);
        }
        found.sort_by(|a, b| a.shipment_id.cmp(&b.shipment_id));
        Ok(found)
    }

    pub(super) async fn query_raw(&self, pk: String) -> Result<Vec<Item>, StoreError> {
        let query = (self.client.query())
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true);
        Self::all_pages(query).await
    }
}
