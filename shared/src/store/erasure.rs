//! Erasing an order's personal data: the sealed fields and the phone's hint leave the order
//! item, in one transaction with the audit record of who erased them and why. With the fields
//! gone, the data keys that sealed them (shared with other orders) open nothing of this order.
//!
//! What waits for an erasure, in the `waiting-orders` index: archived orders (bucket `ERASE#nnn`,
//! by when their retention ends, put there by the archive itself), and a customer's request for
//! an order that is not done with yet (its own item `ERASURE#<order>` / `REQUEST`, bucket
//! `ERASE-ASKED#nnn`, by when to look again). A customer's orders are found through the sparse
//! `orders-by-customer` index (`customer_orders`, written on every new order).

use super::orders::{one, timestamp, NEXT_VERSION};
use super::waiting::{QUEUE, UNTIL};
use super::{keys, n, s, Store, StoreError};
use crate::domain::{CustomerId, Order, OrderId};
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

/// The index of a customer's orders, and its partition attribute.
pub const BY_CUSTOMER: &str = "orders-by-customer";
pub(crate) const CUSTOMER: &str = "customer_orders";

pub(crate) fn erase_bucket(bucket: u32) -> String {
    format!("ERASE#{bucket:03}")
}

fn asked_bucket(bucket: u32) -> String {
    format!("ERASE-ASKED#{bucket:03}")
}

fn request_key(order: OrderId) -> (String, String) {
    (format!("ERASURE#{order}"), "REQUEST".to_owned())
}

/// Who erases, why, and when: what the audit record says.
#[derive(Debug, Clone, Copy)]
pub struct Erasure<'a> {
    pub actor: &'a str,
    pub reason: &'a str,
    pub now: OffsetDateTime,
}

impl Erasure<'_> {
    fn record(&self, store: &Store, action: &str, order: &Order) -> TransactWriteItem {
        let fields: Vec<&String> = order.personal.iter().flat_map(|sealed| sealed.fields.keys()).collect();
        let subject = format!("orders/{}", order.order_id);
        let before = json!({ "fields": fields });
        store.audit_record(
            self.actor,
            action,
            &subject,
            Some(&before),
            Some(&json!({ "reason": self.reason })),
            self.now,
        )
    }
}

/// A customer's erasure request for one order not done with yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRequest {
    pub order_id: OrderId,
    pub asked_by: String,
    pub reason: String,
}

impl Store {
    /// Archived orders of `bucket` whose retention ended by `now`, oldest first.
    pub async fn erasure_due(&self, bucket: u32, now: OffsetDateTime, limit: i32) -> Result<Vec<Order>, StoreError> {
        self.waiting_page(erase_bucket(bucket), Some(now.unix_timestamp()), limit).await
    }

    /// Erase `order`'s personal data if it is still the version read (false when it moved),
    /// with its audit record; and the request that asked for it, if one did. An order with
    /// nothing left to erase only leaves the index, and records nothing.
    pub async fn erase_personal(
        &self,
        order: &Order,
        erasure: Erasure<'_>,
        asked: Option<OrderId>,
    ) -> Result<bool, StoreError> {
        let update = format!(
            "SET phone_hint = :erased, personal_erased_at = :now, updated_at = :now \
             REMOVE personal, {QUEUE}, {UNTIL} {NEXT_VERSION}"
        );
        let values =
            vec![(":erased", s("")), (":now", timestamp(erasure.now)), (":seen", n(order.version)), (":one", one())];
        let mut also = Vec::new();
        if order.personal.is_some() {
            also.push(erasure.record(self, "personal-data.erase", order));
        }
        if let Some(id) = asked {
            let (pk, sk) = request_key(id);
            let delete = Delete::builder().table_name(&self.table).set_key(Some(super::key(pk, sk)));
            also.push(TransactWriteItem::builder().delete(delete.build().expect("delete has table and key")).build());
        }
        self.update_if_with(keys::order(order.order_id), &update, "version = :seen", &[], values, also).await
    }

    /// Ask for `order`'s erasure once it is done with, looked at from `look_at` on: false when
    /// it was asked for already. Audited with the request.
    pub async fn request_erasure(
        &self,
        order: &Order,
        erasure: Erasure<'_>,
        look_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let request = ErasureRequest {
            order_id: order.order_id,
            asked_by: erasure.actor.to_owned(),
            reason: erasure.reason.to_owned(),
        };
        let (pk, sk) = request_key(order.order_id);
        let mut item = super::to_item(&request, pk, sk, "ErasureRequest");
        item.insert(QUEUE.to_owned(), s(asked_bucket(order.order_id.bucket(self.buckets()))));
        item.insert(UNTIL.to_owned(), n(look_at.unix_timestamp()));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)");
        let writes = vec![
            TransactWriteItem::builder().put(put.build().expect("put has table and item")).build(),
            erasure.record(self, "personal-data.erase-requested", order),
        ];
        self.write_all(writes).await
    }

    /// Erasure requests of `bucket` due to be looked at by `now`.
    pub async fn erasure_requests_due(
        &self,
        bucket: u32,
        now: OffsetDateTime,
        limit: i32,
    ) -> Result<Vec<ErasureRequest>, StoreError> {
        self.waiting_page(asked_bucket(bucket), Some(now.unix_timestamp()), limit).await
    }

    /// Look at the request again at `again`.
    pub async fn erasure_request_later(&self, order: OrderId, again: OffsetDateTime) -> Result<bool, StoreError> {
        let update = format!("SET {UNTIL} = :again");
        let values = vec![(":again", n(again.unix_timestamp()))];
        self.update_if(request_key(order), &update, "attribute_exists(PK)", &[], values).await
    }

    /// Whether an erasure of `order` was asked for and is pending.
    pub async fn erasure_requested(&self, order: OrderId) -> Result<bool, StoreError> {
        let (pk, sk) = request_key(order);
        Ok(self.raw_item(pk, sk).await?.is_some())
    }

    /// Drop a request whose order is gone or has nothing left to erase.
    pub async fn drop_erasure_request(&self, order: OrderId) -> Result<(), StoreError> {
        let (pk, sk) = request_key(order);
        (self.client.delete_item())
            .table_name(&self.table)
            .set_key(Some(super::key(pk, sk)))
            .send()
            .await
            .map_err(StoreError::aws)?;
        Ok(())
    }

    /// The ids of every order `customer` placed, oldest first.
    pub async fn orders_of_customer(&self, customer: &CustomerId) -> Result<Vec<OrderId>, StoreError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let page = (self.client.query())
                .table_name(&self.table)
                .index_name(BY_CUSTOMER)
                .key_condition_expression("#customer = :customer")
                .expression_attribute_names("#customer", CUSTOMER)
                .expression_attribute_values(":customer", s(customer.as_str()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::aws)?;
            for item in page.items() {
                let id = item.get("order_id").and_then(|v| v.as_s().ok()).and_then(|v| OrderId::parse(v).ok());
                ids.push(id.ok_or_else(|| StoreError::Corrupt("customer's order".into(), "no order id".into()))?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(ids);
            }
        }
    }

    /// The audit record of a customer's erasure request as a whole, whatever it found.
    pub async fn record_erasure_request(
        &self,
        actor: &str,
        customer: &CustomerId,
        outcome: &impl Serialize,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let after = json!({ "reason": reason, "orders": outcome });
        self.record_alone(actor, "customer.erasure-request", &format!("customers/{customer}"), &after, now).await
    }
}
