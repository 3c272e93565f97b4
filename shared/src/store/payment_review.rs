//! Payments that cannot be applied as they come. A payment whose amount or currency differ from
//! the order's puts the order in PAYMENT_MISMATCH with the payment under review; staff accept it
//! or refund it, or a correct payment follows and settles it (and the first is refunded). A
//! payment for an order still RECEIVED is parked until reservation has decided the order.

use super::orders::{one, status, timestamp, NEXT_VERSION};
use super::payments::{table_key, InboxStatus};
use super::{keys, n, s, OrderChange, PaymentKey, Resolution, Store, StoreError};
use crate::domain::payment::PaymentUnderReview;
use crate::domain::{Allocation, Order, OrderId, OrderStatus};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use time::OffsetDateTime;

/// Who settled a mismatched payment.
pub enum SettledBy<'a> {
    /// Staff accepted the amount received as payment.
    Accepted,
    /// A further payment of the exact amount arrived.
    FurtherPayment { payment_id: &'a str },
}

/// The SET clause that records the payment under review (`:ruled`, a one-item list; `:none`, an
/// empty one) as ruled on, when it leaves review.
pub(super) const RULED: &str = "ruled_payments = list_append(if_not_exists(ruled_payments, :none), :ruled)";

impl Store {
    /// AWAITING_PAYMENT → PAYMENT_MISMATCH, with the payment under review on the order. The units
    /// stay held for review, out of the expiring-holds index so the sweeper does not release
    /// what staff are looking at.
    pub fn mismatch_change(&self, id: OrderId, review: &PaymentUnderReview, now: OffsetDateTime) -> OrderChange {
        let order = self
            .update(keys::order(id))
            .update_expression(format!(
                "SET #status = :to, payment_id = :payment, payment_under_review = :review, updated_at = :now {NEXT_VERSION}"
            ))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", status(OrderStatus::PaymentMismatch))
            .expression_attribute_values(":from", status(OrderStatus::AwaitingPayment))
            .expression_attribute_values(":payment", s(review.payment_id.as_str()))
            .expression_attribute_values(":review", super::attr(review))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one())
            .build()
            .expect("update has table, key and expression");
        vec![TransactWriteItem::builder().update(order).build(), self.hold_transition(id, "HELD", "HELD", true)]
    }

    /// PAYMENT_MISMATCH → PAID by a payment: the held units are sold, and the payment that was
    /// under review (if another) is to be refunded. `paid_minor` is what was accepted, when it
    /// is not the order's total (staff accepted the amount received).
    pub fn settle_mismatch_change(
        &self,
        order: &Order,
        review: &PaymentUnderReview,
        allocations: &[Allocation],
        by: &SettledBy<'_>,
        now: OffsetDateTime,
    ) -> OrderChange {
        let (payment_id, paid_minor) = match by {
            SettledBy::Accepted => (review.payment_id.as_str(), Some(review.amount_minor)),
            SettledBy::FurtherPayment { payment_id } => (*payment_id, None),
        };
        let mut update = self
            .update(keys::order(order.order_id))
            .condition_expression("#status = :from AND payment_under_review.payment_id = :reviewed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", status(OrderStatus::Paid))
            .expression_attribute_values(":from", status(OrderStatus::PaymentMismatch))
            .expression_attribute_values(":reviewed", s(review.payment_id.as_str()))
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":ruled", AttributeValue::L(vec![s(review.payment_id.as_str())]))
            .expression_attribute_values(":payment", s(payment_id))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one());
        let mut set = format!("SET #status = :to, payment_id = :payment, updated_at = :now, {RULED}");
        if let Some(paid) = paid_minor.filter(|paid| *paid != order.total_minor) {
            set.push_str(", paid_minor = :paid");
            update = update.expression_attribute_values(":paid", n(paid));
        }
        let update = update
            .update_expression(format!("{set} REMOVE payment_under_review {NEXT_VERSION}"))
            .build()
            .expect("update has table, key and expression");
        let mut items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.hold_transition(order.order_id, "HELD", "COMMITTED", true),
        ];
        items.extend(allocations.iter().map(|a| self.stock_move(a, "reserved", "sold", now)));
        if let SettledBy::FurtherPayment { .. } = by {
            let reason = "a correct payment followed this one: refund it";
            items.push(self.rule_on_mismatched(
                &review.key,
                &Resolution::RefundRequired { reason: reason.into() },
                now,
            ));
            items.push(self.month_bump(order.customer_id.as_str(), "refunds", now));
        } else {
            items.push(self.rule_on_mismatched(&review.key, &Resolution::Paid, now));
        }
        items
    }

    /// The ruling on a payment that was MISMATCHED: paid after all (accepted), or to be refunded.
    /// Conditional on it still being under review, so it is ruled on once.
    pub fn rule_on_mismatched(&self, key: &PaymentKey, ruling: &Resolution, now: OffsetDateTime) -> TransactWriteItem {
        let update = self
            .update(table_key(key))
            .update_expression("SET resolution = :ruling, ruled_at = :now")
            .condition_expression("resolution.kind = :mismatched")
            .expression_attribute_values(":ruling", super::attr(ruling))
            .expression_attribute_values(":mismatched", s("MISMATCHED"))
            .expression_attribute_values(":now", timestamp(now))
            .build()
            .expect("update has table, key and expression");
        TransactWriteItem::builder().update(update).build()
    }

    /// Keep a payment for an order still RECEIVED: the inbox item PARKED, its key on the order,
    /// both only while the order is RECEIVED. When the order moves on, the stream announces
    /// ParkedPaymentsDue and the processor applies it. False when the order (or the event)
    /// moved on meanwhile.
    pub async fn park_payment(
        &self,
        key: &PaymentKey,
        order: OrderId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let inbox = self
            .update(table_key(key))
            .update_expression("SET #status = :parked, parked_at = :now")
            .condition_expression("#status = :received")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":parked", s(InboxStatus::Parked.as_str()))
            .expression_attribute_values(":received", s(InboxStatus::Received.as_str()))
            .expression_attribute_values(":now", timestamp(now))
            .build()
            .expect("update has table, key and expression");
        let on_order = self
            .update(keys::order(order))
            .update_expression(format!(
                "SET parked_payments = list_append(if_not_exists(parked_payments, :none), :key), updated_at = :now {NEXT_VERSION}"
            ))
            .condition_expression("#status = :received")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":key", AttributeValue::L(vec![super::attr(key)]))
            .expression_attribute_values(":received", status(OrderStatus::Received))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one())
            .build()
            .expect("update has table, key and expression");
        self.write_all(vec![
            TransactWriteItem::builder().update(inbox).build(),
            TransactWriteItem::builder().update(on_order).build(),
        ])
        .await
    }
}
