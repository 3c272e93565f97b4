//! Idempotency records for order intake: the record is written complete, with the answer it
//! gives, in the same transaction that creates the order (the 202 is known before the write), on
//! the condition that the key is new or expired. A repeat finds the record and replays its
//! answer; a retry after a failure either finds it (the first attempt committed) or writes it (it
//! did not). A TTL cleans records up.

use super::{from_item, key, keys, n, to_item, Item, Store, StoreError};
use crate::domain::{Order, OrderId};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 of the canonical request body: the same key with another body is refused.
    pub request_hash: String,
    pub order_id: OrderId,
    /// Unix seconds; DynamoDB's TTL removes the record some time after.
    pub ttl: i64,
    /// The answer every repeat replays.
    pub response_status: u16,
    pub response_body: String,
}

#[derive(Debug)]
pub enum Claim {
    /// The key was new (or long expired): the record and the order were written together.
    Created,
    /// The key is known; here is its record.
    Existing(IdempotencyRecord),
    /// A concurrent write held the same key or counters: read again and try again.
    Contended,
    /// A counter moved since the context was read (another order of the customer or device):
    /// score again on the new counts.
    CountersMoved,
}

impl Store {
    /// Write `record` under `key_hash` and store `order`, in one transaction with `also` (the
    /// order's risk counters). `Existing` when the key was taken (by an earlier or a concurrent
    /// attempt).
    pub async fn claim_key_and_create_order(
        &self,
        key_hash: &str,
        record: &IdempotencyRecord,
        order: &Order,
        also: Vec<TransactWriteItem>,
    ) -> Result<Claim, StoreError> {
        let now_unix = order.received_at.unix_timestamp();
        let (pk, sk) = keys::idempotency(key_hash);
        let claim = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(record, pk, sk, "Idempotency")))
            .condition_expression("attribute_not_exists(PK) OR #ttl < :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(now_unix))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("put has table and item");
        let create = Put::builder()
            .table_name(&self.table)
            .set_item(Some(super::orders::order_item(order, self.expiry_buckets)))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("put has table and item");
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(claim).build())
            .transact_items(TransactWriteItem::builder().put(create).build());
        let result = also.into_iter().fold(result, |request, item| request.transact_items(item)).send().await;
        match result {
            Ok(_) => Ok(Claim::Created),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons = cancelled.cancellation_reasons();
                    if let Some(item) = reasons.first().and_then(|r| r.item()).cloned() {
                        return Ok(Claim::Existing(from_item(item, "idempotency record")?));
                    }
                    // A conflict with a concurrent first attempt: its record, once it committed (an
                    // expired one is as good as absent: the next try takes the key over).
                    if let Some(record) = self.idempotency_record(key_hash).await?.filter(|r| r.ttl >= now_unix) {
                        return Ok(Claim::Existing(record));
                    }
                    let codes = super::cancellation_codes(reasons);
                    // Items 0 and 1 are the record and the order; the counters follow.
                    if codes.iter().skip(2).any(|c| *c == "ConditionalCheckFailed") {
                        Ok(Claim::CountersMoved)
                    } else if codes.contains(&"TransactionConflict") {
                        Ok(Claim::Contended)
                    } else {
                        Err(StoreError::Aws(format!("order not created: {codes:?}")))
                    }
                }
                TransactWriteItemsError::TransactionInProgressException(_) => Ok(Claim::Contended),
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string())),
            },
        }
    }

    pub async fn idempotency_record(&self, key_hash: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (pk, sk) = keys::idempotency(key_hash);
        self.get(pk, sk, "idempotency record").await
    }

    pub(crate) async fn get<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: String,
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        self.raw_item(pk, sk).await?.map(|item: Item| from_item(item, what)).transpose()
    }

    /// The item at the key as stored, read strongly consistent.
    pub(crate) async fn raw_item(&self, pk: String, sk: String) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::aws)?;
        Ok(output.item)
    }
}
