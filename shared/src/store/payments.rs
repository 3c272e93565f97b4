//! Payment events: the inbox the webhook writes, which is also the ledger reconciliation reads.
//! One item per provider event, keyed by the day the provider created it and its id, so a
//! redelivery of the same event lands on the same item.
//!
//! The inbox item is also the message: the table's stream carries its insertion to payment
//! processing (PaymentEventReceived). The processor resolves an event in one transaction with the
//! order change it causes; the inbox item's condition (still RECEIVED) makes that happen once
//! however many deliveries race, and the stream announces the outcome from that one change.

use super::orders::{one, status, timestamp, NEXT_VERSION};
use super::{cancellation_codes, from_item, keys, s, to_item, Store, StoreError};
use crate::domain::payment::PaymentEvent;
pub use crate::domain::payment::PaymentKey;
use crate::domain::{Allocation, OrderId, OrderStatus};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InboxStatus {
    Received,
    /// Arrived while its order was still RECEIVED: kept until the order moves on.
    Parked,
    Processed,
}

impl InboxStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Received => "RECEIVED",
            Self::Parked => "PARKED",
            Self::Processed => "PROCESSED",
        }
    }
}

/// What a payment event did, as reconciliation counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// Paid an order awaiting payment: its held units are sold.
    Paid,
    /// Paid an expired or cancelled order whose units could be reserved again.
    LatePaid,
    /// Amount or currency differ from the order: flagged for review.
    Mismatched { expected_minor: i64, expected_currency: String },
    /// The order was paid by this very payment already (a second delivery of another event).
    AlreadyApplied,
    /// The order was paid by another payment: this one is a duplicate charge.
    DuplicateCharge,
    /// The payment cannot be served (late with no stock, order rejected…): refund it.
    RefundRequired { reason: String },
    /// No order of ours has this id: kept for staff.
    UnknownOrder,
    /// The provider reports a failed or cancelled payment.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub event: PaymentEvent,
    pub status: InboxStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

pub(super) fn table_key(key: &PaymentKey) -> (String, String) {
    keys::payment(&key.day, &key.event_id)
}

/// The order change a resolution makes, if any: transaction items beside the inbox update.
pub type OrderChange = Vec<TransactWriteItem>;

#[derive(Debug)]
pub enum ResolveError {
    /// Another delivery resolved the event first.
    AlreadyResolved,
    /// The order moved on since it was read: decide again.
    OrderChanged,
    Store(StoreError),
}

impl From<StoreError> for ResolveError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl Store {
    /// Store a provider event in the inbox. `Err(existing)` when it was stored before.
    pub async fn record_payment_event(
        &self,
        event: &PaymentEvent,
        now: OffsetDateTime,
    ) -> Result<Result<(), PaymentRecord>, StoreError> {
        let record =
            PaymentRecord { event: event.clone(), status: InboxStatus::Received, resolution: None, received_at: now };
        let k = PaymentKey::of(event);
        let (pk, sk) = table_key(&k);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&record, pk, sk, "Payment")))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(err) => match err.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
                    let item = e.item.ok_or_else(|| StoreError::Aws("duplicate without its item".into()))?;
                    Ok(Err(from_item(item, "payment record")?))
                }
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string())),
            },
        }
    }

    pub async fn payment_record(&self, key: &PaymentKey) -> Result<Option<PaymentRecord>, StoreError> {
        let (pk, sk) = table_key(key);
        self.get(pk, sk, "payment record").await
    }

    /// Resolve an event still `from` (RECEIVED, or PARKED) together with the order change it
    /// causes, once.
    pub async fn resolve_payment(
        &self,
        key: &PaymentKey,
        from: InboxStatus,
        resolution: &Resolution,
        change: OrderChange,
        now: OffsetDateTime,
    ) -> Result<(), ResolveError> {
        let inbox = self
            .update(table_key(key))
            .update_expression("SET #status = :processed, resolution = :resolution, processed_at = :now")
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":processed", s(InboxStatus::Processed.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":resolution", super::attr(resolution))
            .expression_attribute_values(":now", timestamp(now))
            .build()
            .expect("update has table, key and expression");
        let mut request =
            self.client.transact_write_items().transact_items(TransactWriteItem::builder().update(inbox).build());
        for item in change {
            request = request.transact_items(item);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let codes = cancellation_codes(c.cancellation_reasons());
                    if codes.first() == Some(&"ConditionalCheckFailed") {
                        Err(ResolveError::AlreadyResolved)
                    } else {
                        Err(ResolveError::OrderChanged)
                    }
                }
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string()).into()),
            },
        }
    }

    /// The order from `from` to `to` by `payment_id`. Whatever payment was under review is no
    /// longer once the order moves on.
    fn order_transition(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        payment_id: &str,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let update = self
            .update(keys::order(id))
            .update_expression(format!(
                "SET #status = :to, payment_id = :payment, updated_at = :now REMOVE payment_under_review {NEXT_VERSION}"
            ))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", status(to))
            .expression_attribute_values(":from", status(from))
            .expression_attribute_values(":payment", s(payment_id))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one())
            .build()
            .expect("update has table, key and expression");
        TransactWriteItem::builder().update(update).build()
    }

    pub(super) fn hold_transition(&self, id: OrderId, from: &str, to: &str, leave_index: bool) -> TransactWriteItem {
        let remove = if leave_index { " REMOVE expiry_bucket" } else { "" };
        let update = self
            .update(keys::hold(id))
            .update_expression(format!("SET hold_status = :to{remove}"))
            .condition_expression("hold_status = :from")
            .expression_attribute_values(":to", s(to))
            .expression_attribute_values(":from", s(from))
            .build()
            .expect("update has table, key and expression");
        TransactWriteItem::builder().update(update).build()
    }

    /// AWAITING_PAYMENT → PAID, hold committed, units reserved → sold.
    pub fn pay_change(
        &self,
        id: OrderId,
        allocations: &[Allocation],
        payment_id: &str,
        now: OffsetDateTime,
    ) -> OrderChange {
        let mut items = vec![
            self.order_transition(id, OrderStatus::AwaitingPayment, OrderStatus::Paid, payment_id, now),
            self.hold_transition(id, "HELD", "COMMITTED", true),
        ];
        items.extend(allocations.iter().map(|a| self.stock_move(a, "reserved", "sold", now)));
        items
    }

    /// EXPIRED or CANCELLED → PAID: the released units are taken again straight to sold, under
    /// the same `available >= q` condition as any reservation.
    pub fn late_pay_change(
        &self,
        id: OrderId,
        seen: OrderStatus,
        allocations: &[Allocation],
        payment_id: &str,
        now: OffsetDateTime,
    ) -> OrderChange {
        let mut items = vec![
            self.order_transition(id, seen, OrderStatus::Paid, payment_id, now),
            self.hold_transition(id, "RELEASED", "COMMITTED", true),
        ];
        items.extend(allocations.iter().map(|a| self.stock_move(a, "available", "sold", now)));
        items
    }

    pub fn refund_required_change(
        &self,
        id: OrderId,
        seen: OrderStatus,
        payment_id: &str,
        now: OffsetDateTime,
    ) -> OrderChange {
        vec![self.order_transition(id, seen, OrderStatus::RefundRequired, payment_id, now)]
    }

    /// Record a failed attempt on an order still awaiting payment; its hold stays.
    pub fn failure_change(&self, id: OrderId, reason: &str, now: OffsetDateTime) -> OrderChange {
        let update = self
            .update(keys::order(id))
            .update_expression(
                "SET last_payment_failure = :reason, updated_at = :now ADD payment_failures :one, version :one",
            )
            .condition_expression("#status = :awaiting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one())
            .expression_attribute_values(":awaiting", status(OrderStatus::AwaitingPayment))
            .build()
            .expect("update has table, key and expression");
        vec![TransactWriteItem::builder().update(update).build()]
    }

    /// Every payment event of one day, for reconciliation.
    pub async fn payments_of_day(&self, day: &str) -> Result<Vec<PaymentRecord>, StoreError> {
        self.query_partition(keys::payment_day(day), "payment record").await
    }
}
