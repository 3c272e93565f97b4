//! Orders and their stock holds: read, reserve, reject and cancel. Reserving and releasing touch
//! the order, its hold and every stock item in one `TransactWriteItems`, so the three never
//! disagree. Every write of an order moves its `version` on by one ([`NEXT_VERSION`]): the
//! events the relay derives from the change name that version.

use super::{attr, cancellation_codes, key, keys, n, s, to_item, Store, StoreError};
use crate::domain::{Allocation, Order, OrderId, OrderStatus, ShortLine};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldStatus {
    /// Units reserved, awaiting payment (or review); in the expiring-holds index.
    Held,
    /// Units back in stock (expired or cancelled); out of the index.
    Released,
    /// Paid: units sold.
    Committed,
}

/// What one order holds, where, and until when. While `HELD` it carries `expiry_bucket`, which
/// puts it in the sparse expiring-holds index; releasing it removes the attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub order_id: OrderId,
    pub hold_status: HoldStatus,
    pub allocations: Vec<Allocation>,
    /// Unix seconds: the index's sort key. None for a hold that does not expire (an approved
    /// cash-on-delivery order's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_bucket: Option<String>,
}

#[derive(Debug, Error)]
pub enum ReserveError {
    /// The order is no longer RECEIVED: reserved, rejected or cancelled by someone else.
    #[error("order is no longer awaiting reservation")]
    OrderNotReceived,
    /// No such order in the table.
    #[error("order not in the table")]
    OrderMissing,
    /// These allocations (indices into the request) found too little stock.
    #[error("stock too low for {0:?}")]
    Short(Vec<usize>),
    /// Another transaction touched the same items; try again.
    #[error("transaction conflict")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who a cancel is down to: the customer's cancels count against them in risk scoring, the
/// system's (a reservation that never decided) do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelCause {
    /// Asked for, or brought about (a code never entered, wrong codes, a failed payment).
    Customer,
    /// The system could not serve the order in time.
    System,
}

#[derive(Debug, Error)]
pub enum CancelError {
    /// The order moved on while we looked at it; read it again.
    #[error("order status changed concurrently")]
    StatusChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The update clause every write of an order carries, with `:one` bound to 1.
pub(crate) const NEXT_VERSION: &str = "ADD version :one";

pub(crate) fn one() -> AttributeValue {
    n(1)
}

/// A new order's item, with the attributes of the waiting-orders index when it waits (see
/// [`super::waiting`]) and of the customer's orders (see [`super::erasure`]).
pub(crate) fn order_item(order: &Order, buckets: u32) -> super::Item {
    let (pk, sk) = keys::order(order.order_id);
    let mut item = to_item(order, pk, sk, "Order");
    item.insert(super::erasure::CUSTOMER.to_owned(), s(order.customer_id.as_str()));
    if let Some((queue, until)) = super::waiting::entry(order, buckets, order.received_at) {
        item.insert(super::waiting::QUEUE.to_owned(), s(queue));
        item.insert(super::waiting::UNTIL.to_owned(), n(until));
    }
    item
}

pub(crate) fn timestamp(t: OffsetDateTime) -> AttributeValue {
    s(t.format(&Rfc3339).expect("UTC timestamps format"))
}

pub(crate) fn status(value: OrderStatus) -> AttributeValue {
    s(value.as_str())
}

impl Store {
    pub async fn order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let (pk, sk) = keys::order(id);
        self.get(pk, sk, "order").await
    }

    pub async fn hold(&self, id: OrderId) -> Result<Option<Hold>, StoreError> {
        let (pk, sk) = keys::hold(id);
        self.get(pk, sk, "hold").await
    }

    pub(crate) fn update(&self, (pk, sk): (String, String)) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder().table_name(&self.table).set_key(Some(key(pk, sk)))
    }

    /// Reserve every allocation, write the hold, and move the order from RECEIVED to `next`, all
    /// or nothing, in one round trip whatever the number of lines. `allocations[i]` serves the
    /// order's line `i`, so the order's lines learn their warehouse without being read first.
    /// A hold with no `hold_expires_at` stays out of the expiring-holds index.
    pub async fn reserve(
        &self,
        order_id: OrderId,
        allocations: &[Allocation],
        next: OrderStatus,
        hold_expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), ReserveError> {
        let mut order_update = self
            .update(keys::order(order_id))
            .condition_expression("#status = :received")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lines", "lines")
            .expression_attribute_names("#warehouse", "warehouse")
            .expression_attribute_values(":next", status(next))
            .expression_attribute_values(":received", status(OrderStatus::Received))
            .expression_attribute_values(":now", timestamp(now));
        let mut set = String::from("SET #status = :next, updated_at = :now");
        if let Some(expires) = hold_expires_at {
            set.push_str(", hold_expires_at = :expires");
            order_update = order_update.expression_attribute_values(":expires", timestamp(expires));
        }
        for (i, allocation) in allocations.iter().enumerate() {
            set.push_str(&format!(", #lines[{i}].#warehouse = :wh{i}"));
            order_update =
                order_update.expression_attribute_values(format!(":wh{i}"), s(allocation.warehouse.as_str()));
            if allocation.shard != 0 {
                set.push_str(&format!(", #lines[{i}].stock_shard = :shard{i}"));
                order_update = order_update.expression_attribute_values(format!(":shard{i}"), n(allocation.shard));
            }
        }
        let order_update = order_update
            .update_expression(format!("{set} REMOVE {} {NEXT_VERSION}", super::waiting::QUEUE))
            .expression_attribute_values(":one", one())
            // Tells "decided before" (the item comes back) from "no such order" (nothing does).
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("update has table, key and expression");
        let hold = Hold {
            order_id,
            hold_status: HoldStatus::Held,
            allocations: allocations.to_vec(),
            expires_at: hold_expires_at.map(OffsetDateTime::unix_timestamp),
            expiry_bucket: hold_expires_at.map(|_| keys::expiry_bucket(order_id.bucket(self.expiry_buckets))),
        };
        let (pk, sk) = keys::hold(order_id);
        let hold_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&hold, pk, sk, "Hold")))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("put has table and item");

        const FIXED_ITEMS: usize = 2;
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(order_update).build())
            .transact_items(TransactWriteItem::builder().put(hold_put).build());
        for allocation in allocations {
            request = request.transact_items(self.stock_move(allocation, "available", "reserved", now));
        }
        let err = match request.send().await {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let cancelled = match err.into_service_error() {
            TransactWriteItemsError::TransactionCanceledException(c) => c,
            TransactWriteItemsError::ThrottlingException(_)
            | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
            | TransactWriteItemsError::TransactionInProgressException(_) => return Err(ReserveError::Conflict),
            other => {
                return Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string()).into())
            }
        };
        let codes = cancellation_codes(cancelled.cancellation_reasons());
        if codes.first() == Some(&"ConditionalCheckFailed") {
            let order_seen = cancelled.cancellation_reasons().first().and_then(|r| r.item()).is_some();
            return Err(if order_seen { ReserveError::OrderNotReceived } else { ReserveError::OrderMissing });
        }
        if codes.get(1) == Some(&"ConditionalCheckFailed") {
            return Err(ReserveError::OrderNotReceived);
        }
        let short: Vec<usize> = codes
            .iter()
            .enumerate()
            .skip(FIXED_ITEMS)
            .filter(|(_, code)| **code == "ConditionalCheckFailed")
            .map(|(i, _)| i - FIXED_ITEMS)
            .collect();
        if !short.is_empty() {
            return Err(ReserveError::Short(short));
        }
        if codes
            .iter()
            .any(|c| matches!(*c, "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"))
        {
            return Err(ReserveError::Conflict);
        }
        Err(StoreError::Aws(format!("transaction cancelled: {codes:?}")).into())
    }

    /// RECEIVED → REJECTED, naming the short lines. False when the order had already moved on.
    pub async fn reject(
        &self,
        id: OrderId,
        short_lines: &[ShortLine],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.update_if(
            keys::order(id),
            &format!(
                "SET #status = :rejected, short_lines = :short, updated_at = :now REMOVE {} {NEXT_VERSION}",
                super::waiting::QUEUE
            ),
            "#status = :received",
            &[("#status", "status")],
            vec![
                (":rejected", status(OrderStatus::Rejected)),
                (":received", status(OrderStatus::Received)),
                (":short", attr(&short_lines)),
                (":now", timestamp(now)),
                (":one", one()),
            ],
        )
        .await
    }

    /// Cancel an unpaid order as it was read. If it holds stock, the hold is released and every
    /// unit goes back to available in the same transaction. Returns what was released.
    pub async fn cancel(
        &self,
        order: &Order,
        cause: CancelCause,
        now: OffsetDateTime,
    ) -> Result<Vec<Allocation>, CancelError> {
        let mut request = self.client.transact_write_items();
        for item in self.cancel_change(order, cause, now) {
            request = request.transact_items(item);
        }
        match request.send().await {
            Ok(_) => Ok(if order.status.holds_stock() { order.reserved_allocations() } else { Vec::new() }),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let codes = cancellation_codes(c.cancellation_reasons());
                    if codes.first() == Some(&"ConditionalCheckFailed") || codes.contains(&"TransactionConflict") {
                        Err(CancelError::StatusChanged)
                    } else {
                        // The order still held stock by its status, yet its hold or a stock item
                        // disagreed: never paper over that.
                        Err(StoreError::Aws(format!("cancel refused by hold or stock: {codes:?}")).into())
                    }
                }
                TransactWriteItemsError::ThrottlingException(_)
                | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
                | TransactWriteItemsError::TransactionInProgressException(_) => Err(CancelError::StatusChanged),
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string()).into()),
            },
        }
    }

    /// The writes that cancel `order` as it was read (its status is the condition): the order,
    /// the customer's monthly cancel count (read by the cancel-rate risk rule) when the cancel is
    /// the customer's doing, and, if it held stock, its hold released and every unit back to
    /// available. The order change comes first.
    pub fn cancel_change(&self, order: &Order, cause: CancelCause, now: OffsetDateTime) -> Vec<TransactWriteItem> {
        debug_assert!(order.status.can_become(OrderStatus::Cancelled));
        // A payment under review that goes with the cancel (staff refunded it) is ruled on.
        let ruled = order.payment_under_review.as_ref().map(|review| review.payment_id.as_str());
        let set = match ruled {
            Some(_) => format!("SET #status = :cancelled, updated_at = :now, {}", super::payment_review::RULED),
            None => "SET #status = :cancelled, updated_at = :now".to_owned(),
        };
        let mut order_update = self.update(keys::order(order.order_id));
        if let Some(payment_id) = ruled {
            order_update = order_update
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":ruled", AttributeValue::L(vec![s(payment_id)]));
        }
        let order_update = order_update
            .update_expression(format!("{set} REMOVE {}, payment_under_review {NEXT_VERSION}", super::waiting::QUEUE))
            // An order with shipments is cancelled by fulfilment, which returns their units.
            .condition_expression("#status = :seen AND attribute_not_exists(shipments)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":cancelled", status(OrderStatus::Cancelled))
            .expression_attribute_values(":seen", status(order.status))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one())
            .build()
            .expect("update has table, key and expression");
        let mut items = vec![TransactWriteItem::builder().update(order_update).build()];
        if cause == CancelCause::Customer {
            items.push(self.month_bump(order.customer_id.as_str(), "cancels", now));
        }
        if order.status.holds_stock() {
            let hold_release = self
                .update(keys::hold(order.order_id))
                .update_expression("SET hold_status = :released REMOVE expiry_bucket")
                .condition_expression("hold_status = :held")
                .expression_attribute_values(":released", s("RELEASED"))
                .expression_attribute_values(":held", s("HELD"))
                .build()
                .expect("update has table, key and expression");
            items.push(TransactWriteItem::builder().update(hold_release).build());
            items.extend(order.reserved_allocations().iter().map(|a| self.stock_move(a, "reserved", "available", now)));
        }
        items
    }
}
