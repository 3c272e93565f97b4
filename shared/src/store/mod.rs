//! The DynamoDB adapter: one table, typed key prefixes, three sparse indexes (expiring holds,
//! waiting orders, the audit trail by day).
//! `docs/data-model.md` lists every item and the access pattern each key serves.
//!
//! Every state change here is a conditional write, so concurrent or repeated callers cannot
//! oversell, double-reserve or resurrect an order: the condition decides, the loser is told.

mod archive;
mod audit;
mod catalogue;
mod dashboard;
mod decisions;
mod erasure;
mod holds;
mod idempotency;
mod keyring;
mod orders;
mod payment_review;
mod payments;
mod policy;
mod refunds;
mod risk;
mod shipments;
mod stock;
mod stock_moves;
mod stock_shards;
mod stocktake;
mod tickets;
mod tracking;
mod verification;
pub mod waiting;

pub use archive::{AfterSalesMonth, ArchivedAs};
pub use audit::{AuditCursor, AuditRecord, AuditTrail, AUDIT_PAGE_MAX};
pub use catalogue::{IntakeContext, PolicyDocument, SaveError, Versioned};
pub use dashboard::{Counted, STAGE_COUNTED_FOR};
pub use erasure::{Erasure, ErasureRequest};
pub use holds::{DueHold, ExpireOutcome, Page};
pub use idempotency::{Claim, IdempotencyRecord};
pub use orders::{CancelCause, CancelError, Hold, HoldStatus, ReserveError};
pub use payment_review::SettledBy;
pub use payments::{InboxStatus, OrderChange, PaymentKey, PaymentRecord, Resolution, ResolveError};
pub use risk::{month_of, RiskKeys, SaveRulesError, SeenCounters};
pub use shipments::{FulfilmentFacts, ShipmentWrite};
pub use stock::{AdjustError, StockItem};
pub use stock_shards::ShardLayouts;
pub use stocktake::StockChange;
pub use tickets::{AfterSalesUnits, AfterSalesView};
pub use tracking::{OpenAlert, PollBudget};
pub use verification::ResendRefused;

use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use thiserror::Error;

pub type Item = HashMap<String, AttributeValue>;

/// Name of the sparse index of holds still awaiting payment, ordered by expiry.
pub const EXPIRING_HOLDS_INDEX: &str = "expiring-holds";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("dynamodb call failed: {0}")]
    Aws(String),
    #[error("item {0} does not match its type: {1}")]
    Corrupt(String, String),
    #[error("{0} kept changing while a save was applied")]
    Contended(String),
}

impl StoreError {
    pub(crate) fn aws<E>(err: aws_sdk_dynamodb::error::SdkError<E>) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string())
    }
}

/// The table, and what the adapter needs to know about it.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
    expiry_buckets: u32,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>, expiry_buckets: u32) -> Self {
        Self { client, table: table.into(), expiry_buckets: expiry_buckets.max(1) }
    }

    pub fn buckets(&self) -> u32 {
        self.expiry_buckets
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Many items by key in as few `BatchGetItem` calls as DynamoDB allows (100 keys each, and
    /// the unprocessed ones again), keyed by (PK, SK); strongly consistent when `consistent`.
    pub(crate) async fn batch_get(
        &self,
        wanted: &[(String, String)],
        consistent: bool,
    ) -> Result<HashMap<(String, String), Item>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let keys: Vec<Item> = wanted.iter().map(|(pk, sk)| key(pk.clone(), sk.clone())).collect();
        let mut found = HashMap::new();
        for chunk in keys.chunks(100) {
            let request = KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())).consistent_read(consistent);
            let mut pending = Some(request.build().expect("keys are set"));
            while let Some(request) = pending.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(StoreError::aws)?;
                for item in output.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    let pk = item.get("PK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                    let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                    found.insert((pk, sk), item);
                }
                pending =
                    output.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys().is_empty());
            }
        }
        Ok(found)
    }

    /// Write `items` in one transaction: true when it applied, false when a condition did not
    /// hold (or a concurrent transaction touched an item): the caller reads again and decides.
    pub(crate) async fn write_all(
        &self,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(err) => match err.into_service_error() {
                E::TransactionCanceledException(_) | E::TransactionInProgressException(_) => Ok(false),
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string())),
            },
        }
    }

    /// The transaction's put of `item`, on the condition that no item has its key yet.
    pub(crate) fn put_if_absent(&self, item: Item) -> aws_sdk_dynamodb::types::TransactWriteItem {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("put has table and item");
        aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build()
    }

    /// Put `item` if it is not there: false when it was. [`Store::commit`] makes a lone put one
    /// conditional write.
    pub(crate) async fn create(&self, item: Item) -> Result<bool, StoreError> {
        self.commit(vec![self.put_if_absent(item)]).await
    }

    /// `update` (counters' `ADD`s, say) applied once per `mark`: the mark is put if absent, kept
    /// until `keep_until` (its TTL), in one transaction with the update, so a repeated mark
    /// changes nothing and an applied update is never without its mark.
    pub(crate) async fn apply_once(
        &self,
        mark: (String, String),
        keep_until: time::OffsetDateTime,
        update: aws_sdk_dynamodb::types::Update,
    ) -> Result<Once, StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
        use aws_sdk_dynamodb::types::TransactWriteItem;
        let mut marked = key(mark.0, mark.1);
        marked.insert("ttl".to_owned(), n(keep_until.unix_timestamp()));
        let items = vec![self.put_if_absent(marked), TransactWriteItem::builder().update(update).build()];
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Once::Applied),
            Err(err) => match err.into_service_error() {
                // The mark is the transaction's first item: its condition failing means applied
                // before; any other cancellation is another writer on an item at that moment.
                E::TransactionCanceledException(cancelled)
                    if cancellation_codes(cancelled.cancellation_reasons()).first()
                        == Some(&"ConditionalCheckFailed") =>
                {
                    Ok(Once::Before)
                }
                E::TransactionCanceledException(_) | E::TransactionInProgressException(_) => Ok(Once::Contended),
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string())),
            },
        }
    }

    /// How many items `query` selects, over all its pages, without reading them out (`Select
    /// COUNT`): a length, such as a queue's, from a partition that holds exactly its members.
    pub(crate) async fn count_of(
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<i64, StoreError> {
        let (mut count, mut start) = (0, None);
        loop {
            let page = query
                .clone()
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::aws)?;
            count += i64::from(page.count);
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(count);
            }
        }
    }

    /// Every item `query` selects, over all its pages.
    pub(crate) async fn all_pages(
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let (mut items, mut start) = (Vec::new(), None);
        loop {
            let page = query.clone().set_exclusive_start_key(start).send().await.map_err(StoreError::aws)?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// A conditional `UpdateItem`: true when it applied, false when its condition did not hold.
    pub(crate) async fn update_if(
        &self,
        key: (String, String),
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        self.update_if_with(key, update, condition, names, values, Vec::new()).await
    }

    /// As [`Store::update_if`], in one transaction with `also` (an audit record, say) when
    /// there is any: all are written or none.
    pub(crate) async fn update_if_with(
        &self,
        (pk, sk): (String, String),
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
        mut also: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        if !also.is_empty() {
            let mut change = self.update((pk, sk)).update_expression(update).condition_expression(condition);
            for (name, attribute) in names {
                change = change.expression_attribute_names(*name, *attribute);
            }
            for (name, value) in values {
                change = change.expression_attribute_values(name, value);
            }
            let change = change.build().expect("update has table, key and expression");
            also.insert(0, aws_sdk_dynamodb::types::TransactWriteItem::builder().update(change).build());
            return self.write_all(also).await;
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression(update)
            .condition_expression(condition);
        for (name, attribute) in names {
            request = request.expression_attribute_names(*name, *attribute);
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(StoreError::aws(err)),
        }
    }
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn key(pk: String, sk: String) -> Item {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))])
}

pub(crate) fn to_item<T: serde::Serialize>(value: &T, pk: String, sk: String, entity: &str) -> Item {
    let mut item: Item = serde_dynamo::to_item(value).expect("domain values always serialise");
    item.extend(key(pk, sk));
    item.insert("entity".to_owned(), s(entity));
    item
}

/// The inverse of [`to_item`]: the key and type attributes the store added are dropped, so a
/// domain type that refuses unknown fields reads back as it was written.
pub(crate) fn from_item<T: serde::de::DeserializeOwned>(mut item: Item, what: &str) -> Result<T, StoreError> {
    for added in ["PK", "SK", "entity", audit::REVISION, erasure::CUSTOMER] {
        item.remove(added);
    }
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(what.to_owned(), e.to_string()))
}

pub(crate) fn attr<T: serde::Serialize>(value: &T) -> AttributeValue {
    serde_dynamo::to_attribute_value(value).expect("domain values always serialise")
}

/// What [`Store::apply_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Once {
    Applied,
    /// The mark was there: applied before.
    Before,
    /// Another writer held one of the items at that moment; nothing was written.
    Contended,
}

/// What a cancelled transaction said about each of its items, in request order.
pub(crate) fn cancellation_codes(reasons: &[CancellationReason]) -> Vec<&str> {
    reasons.iter().map(|r| r.code().unwrap_or("None")).collect()
}

pub(crate) mod keys {
    use crate::domain::{OrderId, Sku, WarehouseId};

    pub fn order(id: OrderId) -> (String, String) {
        (format!("ORDER#{id}"), "ORDER".to_owned())
    }
    pub fn hold(id: OrderId) -> (String, String) {
        (format!("ORDER#{id}"), "HOLD".to_owned())
    }
    pub fn stock(sku: &Sku, warehouse: &WarehouseId) -> (String, String) {
        stock_shard(sku, warehouse, 0)
    }
    /// Shard 0 is the SKU's own item; the others are partitions of their own, so each has its
    /// own write capacity (a SKU has no `#`, so these never meet another SKU's keys).
    pub fn stock_shard(sku: &Sku, warehouse: &WarehouseId, shard: u32) -> (String, String) {
        match shard {
            0 => (format!("SKU#{sku}"), format!("WH#{warehouse}")),
            k => (format!("SKU#{sku}#S{k}"), format!("WH#{warehouse}")),
        }
    }
    /// The (SKU, warehouse) pairs whose stock is split, one item each: what reservation reads
    /// to spread its first tries.
    pub const STOCK_SHARDS_PARTITION: &str = "STOCKSHARDS";
    pub fn stock_layout(sku: &Sku, warehouse: &WarehouseId) -> (String, String) {
        (STOCK_SHARDS_PARTITION.to_owned(), format!("{sku}#{warehouse}"))
    }
    pub fn sku_partition(sku: &Sku) -> String {
        format!("SKU#{sku}")
    }
    pub const WAREHOUSE_PARTITION: &str = "WAREHOUSE";
    pub fn warehouse(id: &WarehouseId) -> (String, String) {
        (WAREHOUSE_PARTITION.to_owned(), format!("WH#{id}"))
    }
    pub fn idempotency(key_hash: &str) -> (String, String) {
        (format!("IDEMPOTENCY#{key_hash}"), "IDEMPOTENCY".to_owned())
    }
    pub fn expiry_bucket(bucket: u32) -> String {
        format!("HOLDS#{bucket:03}")
    }
    pub fn payment_day(day: &str) -> String {
        format!("PAYDAY#{day}")
    }
    pub fn payment(day: &str, event_id: &str) -> (String, String) {
        (payment_day(day), format!("EVT#{event_id}"))
    }
    pub fn catalogue(sku: &Sku) -> (String, String) {
        (sku_partition(sku), "CATALOGUE".to_owned())
    }
    pub fn customer_profile(customer: &crate::domain::CustomerId) -> (String, String) {
        (format!("CUSTOMER#{customer}"), "PROFILE".to_owned())
    }
    pub const CONFIG_PARTITION: &str = "CONFIG";
    pub fn hold_policy() -> (String, String) {
        (CONFIG_PARTITION.to_owned(), "HOLD_POLICY".to_owned())
    }
    pub fn fulfilment_policy() -> (String, String) {
        (CONFIG_PARTITION.to_owned(), "FULFILMENT_POLICY".to_owned())
    }
    pub fn shipment(id: &crate::domain::ShipmentId) -> (String, String) {
        (format!("ORDER#{}", id.order_id), format!("SHIPMENT#{:03}", id.number))
    }
    pub fn wave(id: &str) -> (String, String) {
        (format!("WAVE#{id}"), "WAVE".to_owned())
    }
    /// Shipments waiting for a wave in a warehouse, by promised dispatch time.
    pub fn pick_queue(warehouse: &WarehouseId) -> String {
        format!("PICK#{warehouse}")
    }
    /// Shipments waiting for a shortage answer or a backorder date.
    pub fn shipment_due_bucket(bucket: u32) -> String {
        format!("SHIPDUE#{bucket:03}")
    }
    pub const REVIEW_BUCKET: &str = "REVIEW";
    pub fn verification_bucket(bucket: u32) -> String {
        format!("VERIFY#{bucket:03}")
    }
    pub fn reservation_bucket(bucket: u32) -> String {
        format!("RESERVE#{bucket:03}")
    }
    /// Parcels the tracking poller must look at, by when.
    pub fn tracking_bucket(bucket: u32) -> String {
        format!("TRACK#{bucket:03}")
    }
    pub fn courier_push(courier: &crate::domain::CourierId, event_id: &str) -> (String, String) {
        (format!("COURIERPUSH#{courier}#{event_id}"), "PUSH".to_owned())
    }
    pub fn waybill(courier: &crate::domain::CourierId, number: &str) -> (String, String) {
        (format!("WAYBILL#{courier}#{number}"), "WAYBILL".to_owned())
    }
    pub const OPEN_ALERTS_PARTITION: &str = "ALERTS#OPEN";
    pub fn open_alert(raised_at: i64, shipment: &crate::domain::ShipmentId, alert_id: &str) -> (String, String) {
        (OPEN_ALERTS_PARTITION.to_owned(), format!("{raised_at:012}#{shipment}#{alert_id}"))
    }
    pub fn courier_month_partition(month: &str) -> String {
        format!("COURIERKPI#{month}")
    }
    pub fn courier_month(month: &str, courier: &crate::domain::CourierId) -> (String, String) {
        (courier_month_partition(month), format!("COURIER#{courier}"))
    }
    pub fn counted_event(event_id: &str) -> (String, String) {
        (format!("COUNTED#{event_id}"), "COUNTED".to_owned())
    }
    pub fn kpi_review(month: &str) -> (String, String) {
        (format!("KPIREVIEW#{month}"), "KPIREVIEW".to_owned())
    }
    pub fn poll_budget(courier: &crate::domain::CourierId, day: &str) -> (String, String) {
        (format!("POLLS#{courier}#{day}"), "POLLS".to_owned())
    }
    pub fn refund(refund_id: &str) -> (String, String) {
        (format!("REFUND#{refund_id}"), "REFUND".to_owned())
    }
    pub fn payment_refunds(payment_id: &str) -> (String, String) {
        (format!("PAYMENT#{payment_id}"), "REFUNDS".to_owned())
    }
    pub fn after_sales_policy() -> (String, String) {
        (CONFIG_PARTITION.to_owned(), "AFTER_SALES_POLICY".to_owned())
    }
    pub fn logistics_policy() -> (String, String) {
        (CONFIG_PARTITION.to_owned(), "LOGISTICS_POLICY".to_owned())
    }
}
