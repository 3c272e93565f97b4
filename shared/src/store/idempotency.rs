//! Idempotency records for order intake: the proven pattern of a conditional put (absent, or
//! expired), in-progress then completed with the stored response, a lock that goes stale so a
//! crashed attempt can be taken over, and a TTL for cleanup.
//!
//! The record is created in the same transaction as the order, so a claimed key always has its
//! order; a retry that takes over a stale claim finishes that same order instead of making one.

use super::{from_item, key, keys, n, s, to_item, Item, Store, StoreError};
use crate::domain::{Order, OrderId};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdempotencyStatus {
    InProgress,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub status: IdempotencyStatus,
    /// SHA-256 of the canonical request body: the same key with another body is refused.
    pub request_hash: String,
    pub order_id: OrderId,
    /// Unix seconds until which the current attempt owns the record.
    pub locked_until: i64,
    /// Unix seconds; DynamoDB's TTL removes the record some time after.
    pub ttl: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

#[derive(Debug)]
pub enum Claim {
    /// The key was new (or long expired): the record and the order were written together.
    Created,
    /// The key is known; here is its record.
    Existing(IdempotencyRecord),
}

impl Store {
    /// Claim `key_hash` and store `order` in one transaction, with `also` (the order's risk
    /// counters). A RECEIVED order not reserved by `recheck_at` is found again by the sweeper,
    /// which announces it once more.
    pub async fn claim_key_and_create_order(
        &self,
        key_hash: &str,
        record: &IdempotencyRecord,
        order: &Order,
        recheck_at: time::OffsetDateTime,
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
            .set_item(Some(super::orders::order_item(order, self.expiry_buckets, recheck_at)))
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
                    let old = cancelled.cancellation_reasons().first().and_then(|r| r.item()).cloned();
                    match old {
                        Some(item) => Ok(Claim::Existing(from_item(item, "idempotency record")?)),
                        None => self
                            .idempotency_record(key_hash)
                            .await?
                            .map(Claim::Existing)
                            .ok_or_else(|| StoreError::Aws("transaction cancelled without a known cause".into())),
                    }
                }
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string())),
            },
        }
    }

    pub async fn idempotency_record(&self, key_hash: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (pk, sk) = keys::idempotency(key_hash);
        self.get(pk, sk, "idempotency record").await
    }

    /// Take over an in-progress record whose lock ran out. Only one taker wins: the condition
    /// names the exact lock it saw.
    pub async fn take_over_stale_claim(
        &self,
        key_hash: &str,
        seen_locked_until: i64,
        locked_until: i64,
    ) -> Result<bool, StoreError> {
        self.conditional_update(
            key_hash,
            "SET locked_until = :new",
            "#status = :in_progress AND locked_until = :seen",
            &[(":new", n(locked_until)), (":seen", n(seen_locked_until))],
        )
        .await
    }

    /// Give up the lock at once (after a failure we answered with 503), so the client's retry
    /// need not wait for it to go stale.
    pub async fn release_claim(&self, key_hash: &str, locked_until: i64) -> Result<bool, StoreError> {
        self.conditional_update(
            key_hash,
            "SET locked_until = :zero",
            "#status = :in_progress AND locked_until = :mine",
            &[(":zero", n(0)), (":mine", n(locked_until))],
        )
        .await
    }

    /// Store the response the first attempt gave, for every repeat to replay.
    pub async fn complete_claim(&self, key_hash: &str, status: u16, body: &str) -> Result<bool, StoreError> {
        self.conditional_update(
            key_hash,
            "SET #status = :completed, response_status = :code, response_body = :body",
            "#status = :in_progress",
            &[(":completed", s("COMPLETED")), (":code", n(status)), (":body", s(body))],
        )
        .await
    }

    async fn conditional_update(
        &self,
        key_hash: &str,
        update: &str,
        condition: &str,
        values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) -> Result<bool, StoreError> {
        let mut all = vec![(":in_progress", s("IN_PROGRESS"))];
        all.extend(values.iter().cloned());
        self.update_if(keys::idempotency(key_hash), update, condition, &[("#status", "status")], all).await
    }

    pub(crate) async fn get<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: String,
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::aws)?;
        output.item.map(|item: Item| from_item(item, what)).transpose()
    }
}
