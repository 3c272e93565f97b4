//! Erasing an order's personal data: the sealed fields and the phone's hint leave the order
//! item, in one transaction with the audit record of who erased them and why. With the fields
//! gone, the data keys that sealed them (shared with other orders) open nothing of this order.
//!
//! Archived orders wait for it in the `waiting-orders` index (bucket `ERASE#nnn`, by when their
//! retention ends), put there by the archive itself. A customer's orders are found through the
//! sparse `orders-by-customer` index (`customer_orders`, written on every new order).

use super::orders::{one, timestamp, NEXT_VERSION};
use super::waiting::{QUEUE, UNTIL};
use super::{keys, n, s, Store, StoreError};
use crate::domain::{CustomerId, Order, OrderId};
use serde_json::json;
use time::OffsetDateTime;

/// The index of a customer's orders, and its partition attribute.
pub const BY_CUSTOMER: &str = "orders-by-customer";
pub(crate) const CUSTOMER: &str = "customer_orders";

pub(crate) fn erase_bucket(bucket: u32) -> String {
    format!("ERASE#{bucket:03}")
}

/// Who erases, why, and when: what the audit record says.
#[derive(Debug, Clone, Copy)]
pub struct Erasure<'a> {
    pub actor: &'a str,
    pub reason: &'a str,
    pub now: OffsetDateTime,
}

impl Erasure<'_> {
    fn record(&self, store: &Store, action: &str, order: &Order) -> aws_sdk_dynamodb::types::TransactWriteItem {
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

impl Store {
    /// Archived orders of `bucket` whose retention ended by `now`, oldest first.
    pub async fn erasure_due(&self, bucket: u32, now: OffsetDateTime, limit: i32) -> Result<Vec<Order>, StoreError> {
        self.waiting_page(erase_bucket(bucket), Some(now.unix_timestamp()), limit).await
    }

    /// Erase `order`'s personal data, if it is still the version read (false when it moved).
    pub async fn erase_personal(&self, order: &Order, erasure: Erasure<'_>) -> Result<bool, StoreError> {
        let update = format!(
            "SET phone_hint = :erased, personal_erased_at = :now, updated_at = :now \
             REMOVE personal, erasure_requested_at, {QUEUE}, {UNTIL} {NEXT_VERSION}"
        );
        let values =
            vec![(":erased", s("")), (":now", timestamp(erasure.now)), (":seen", n(order.version)), (":one", one())];
        let audit = erasure.record(self, "personal-data.erase", order);
        self.update_if_with(keys::order(order.order_id), &update, "version = :seen", &[], values, vec![audit]).await
    }

    /// Mark an order still under way for erasure once archived, if it is still the version read.
    pub async fn request_erasure(&self, order: &Order, erasure: Erasure<'_>) -> Result<bool, StoreError> {
        let values = vec![(":now", timestamp(erasure.now)), (":seen", n(order.version)), (":one", one())];
        let update = format!("SET erasure_requested_at = :now {NEXT_VERSION}");
        let audit = erasure.record(self, "personal-data.erase-requested", order);
        self.update_if_with(keys::order(order.order_id), &update, "version = :seen", &[], values, vec![audit]).await
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
}
