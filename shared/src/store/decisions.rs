//! Staff decisions on orders that wait for a person, each audited in its own transaction: a
//! cash-on-delivery order approved (stock held with no expiry, ready for fulfilment) or rejected
//! (cancelled, stock released), and a mismatched payment accepted (the order paid) or refunded
//! (the order cancelled, stock released, RefundRequested from the payment's record).

use super::orders::{one, status, timestamp, NEXT_VERSION};
use super::{keys, s, CancelCause, Resolution, SettledBy, Store, StoreError};
use crate::domain::payment::PaymentUnderReview;
use crate::domain::{Order, OrderStatus};
use aws_sdk_dynamodb::types::TransactWriteItem;
use serde_json::json;
use time::OffsetDateTime;

impl Store {
    pub(super) fn audit_of_order(
        &self,
        actor: &str,
        action: &str,
        order: &Order,
        to: OrderStatus,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let subject = format!("orders/{}", order.order_id);
        let before = json!({ "status": order.status, "version": order.version });
        let after = json!({ "status": to });
        self.audit_record(actor, action, &subject, Some(&before), Some(&after), now)
    }

    /// AWAITING_REVIEW → COD_APPROVED: the hold stays, out of the expiring-holds index. False
    /// when the order was decided (or expired) meanwhile.
    pub async fn approve_cod(&self, order: &Order, actor: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let id = order.order_id;
        let approve = self
            .update(keys::order(id))
            .update_expression(format!(
                "SET #status = :approved, updated_at = :now REMOVE hold_expires_at {NEXT_VERSION}"
            ))
            .condition_expression("#status = :review")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":approved", status(OrderStatus::CodApproved))
            .expression_attribute_values(":review", status(OrderStatus::AwaitingReview))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one())
            .build()
            .expect("update has table, key and expression");
        let keep_hold = self
            .update(keys::hold(id))
            .update_expression("REMOVE expiry_bucket, expires_at")
            .condition_expression("hold_status = :held")
            .expression_attribute_values(":held", s("HELD"))
            .build()
            .expect("update has table, key and expression");
        self.write_all(vec![
            TransactWriteItem::builder().update(approve).build(),
            TransactWriteItem::builder().update(keep_hold).build(),
            self.audit_of_order(actor, "order.cod-approve", order, OrderStatus::CodApproved, now),
        ])
        .await
    }

    /// AWAITING_REVIEW → CANCELLED by staff: the stock goes back. Not counted against the
    /// customer's cancel rate: it was not their doing.
    pub async fn reject_cod(&self, order: &Order, actor: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut items = self.cancel_change(order, CancelCause::System, now);
        items.push(self.audit_of_order(actor, "order.cod-reject", order, OrderStatus::Cancelled, now));
        self.write_all(items).await
    }

    /// PAYMENT_MISMATCH → PAID: staff accept the amount received as payment.
    pub async fn accept_mismatched_payment(
        &self,
        order: &Order,
        review: &PaymentUnderReview,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let hold =
            self.hold(order.order_id).await?.ok_or_else(|| StoreError::Aws("order under review has no hold".into()))?;
        let mut items = self.settle_mismatch_change(order, review, &hold.allocations, &SettledBy::Accepted, now);
        items.push(self.audit_of_order(actor, "payment.accept", order, OrderStatus::Paid, now));
        self.write_all(items).await
    }

    /// PAYMENT_MISMATCH → CANCELLED: the payment is to be refunded, the stock goes back.
    pub async fn refund_mismatched_payment(
        &self,
        order: &Order,
        review: &PaymentUnderReview,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut items = self.cancel_change(order, CancelCause::System, now);
        let reason = "the amount or currency did not match the order: refunded by staff";
        items.push(self.rule_on_mismatched(&review.key, &Resolution::RefundRequired { reason: reason.into() }, now));
        items.push(self.month_bump(order.customer_id.as_str(), "refunds", now));
        items.push(self.audit_of_order(actor, "payment.refund", order, OrderStatus::Cancelled, now));
        self.write_all(items).await
    }
}
