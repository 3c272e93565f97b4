//! The refund ledger: one item per refund (`REFUND#<refund id>`), and per payment the running
//! total it has given back (`PAYMENT#<payment id>` / `REFUNDS`). A refund is recorded together
//! with the total in one transaction whose conditions say that the refund is new and that the
//! total is the one the caller read: so two deliveries of one request record one refund, and two
//! refunds of one payment at once cannot both fit where only one does. A declined refund gives
//! its amount back to the total in the same write that declines it.

use super::{attr, keys, n, s, to_item, Store, StoreError};
use crate::domain::refund::{PaymentRefunds, Refund, RefundStatus};
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use time::OffsetDateTime;

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).expect("UTC formats")
}

impl Store {
    pub async fn refund(&self, refund_id: &str) -> Result<Option<Refund>, StoreError> {
        let (pk, sk) = keys::refund(refund_id);
        self.get(pk, sk, "refund").await
    }

    /// What `payment_id` has given back so far (none: nothing yet).
    pub async fn payment_refunds(&self, payment_id: &str) -> Result<Option<PaymentRefunds>, StoreError> {
        let (pk, sk) = keys::payment_refunds(payment_id);
        self.get(pk, sk, "payment refunds").await
    }

    /// Record `refund` (REQUESTED) and add it to its payment's total, `seen` as read (none when
    /// the payment had no refund yet; `paid_minor` is then what it brought in). False when the
    /// refund was recorded meanwhile or the total changed: read again and decide again.
    pub async fn record_refund(
        &self,
        refund: &Refund,
        seen: Option<&PaymentRefunds>,
        paid_minor: i64,
    ) -> Result<bool, StoreError> {
        let total = match seen {
            Some(seen) => {
                let (pk, sk) = keys::payment_refunds(&seen.payment_id);
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(super::key(pk, sk)))
                    .update_expression("SET refunded_minor = :total")
                    .condition_expression("refunded_minor = :seen")
                    .expression_attribute_values(":total", n(seen.refunded_minor + refund.amount_minor))
                    .expression_attribute_values(":seen", n(seen.refunded_minor))
                    .build()
                    .expect("update has table, key and expression");
                TransactWriteItem::builder().update(update).build()
            }
            None => {
                let first = PaymentRefunds {
                    payment_id: refund.payment_id.clone(),
                    paid_minor,
                    refunded_minor: refund.amount_minor,
                    currency: refund.currency.clone(),
                };
                let (pk, sk) = keys::payment_refunds(&refund.payment_id);
                self.put_if_absent(to_item(&first, pk, sk, "PaymentRefunds"))
            }
        };
        self.write_all(vec![self.new_refund(refund), total]).await
    }

    /// Record `refund` as REFUSED (more than its payment has left): kept for staff, never sent.
    /// False when the refund was recorded before.
    pub async fn refuse_refund(&self, refund: &Refund) -> Result<bool, StoreError> {
        self.commit(vec![self.new_refund(refund)]).await
    }

    /// The put of a refund not recorded before.
    fn new_refund(&self, refund: &Refund) -> TransactWriteItem {
        let (pk, sk) = keys::refund(&refund.refund_id);
        self.put_if_absent(to_item(refund, pk, sk, "Refund"))
    }

    /// The provider took the refund: SUBMITTED, if it is still REQUESTED (a confirmation may
    /// have overtaken the answer).
    pub async fn refund_submitted(&self, refund_id: &str, provider_refund_id: &str) -> Result<bool, StoreError> {
        self.update_if(
            keys::refund(refund_id),
            "SET #status = :to, provider_refund_id = :provider",
            "#status = :from",
            &[("#status", "status")],
            vec![
                (":to", attr(&RefundStatus::Submitted)),
                (":from", attr(&RefundStatus::Requested)),
                (":provider", s(provider_refund_id)),
            ],
        )
        .await
    }

    /// Move a refund from `seen` (as read) to `to` with `outcome`, adjusting its payment's total
    /// in the same write: a refund that ends DECLINED gives its amount back, and one confirmed
    /// paid after it was declined takes it again. False when it was not `seen` any more.
    pub async fn settle_refund(
        &self,
        refund: &Refund,
        seen: RefundStatus,
        to: RefundStatus,
        provider_refund_id: Option<&str>,
        outcome: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = keys::refund(&refund.refund_id);
        let mut set = "SET #status = :to, settled_at = :at".to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::key(pk, sk)))
            .condition_expression("#status = :seen")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", attr(&to))
            .expression_attribute_values(":at", s(rfc3339(now)))
            .expression_attribute_values(":seen", attr(&seen));
        if let Some(provider) = provider_refund_id {
            set.push_str(", provider_refund_id = :provider");
            update = update.expression_attribute_values(":provider", s(provider));
        }
        if let Some(outcome) = outcome {
            set.push_str(", outcome = :outcome");
            update = update.expression_attribute_values(":outcome", s(outcome));
        }
        let update = update.update_expression(set).build().expect("update has table, key and expression");
        let mut writes = vec![TransactWriteItem::builder().update(update).build()];
        let counts = |status: RefundStatus| !matches!(status, RefundStatus::Declined | RefundStatus::Refused);
        let delta = match (counts(seen), counts(to)) {
            (true, false) => -refund.amount_minor,
            (false, true) => refund.amount_minor,
            _ => 0,
        };
        if delta != 0 {
            let (pk, sk) = keys::payment_refunds(&refund.payment_id);
            let total = Update::builder()
                .table_name(&self.table)
                .set_key(Some(super::key(pk, sk)))
                .update_expression("SET refunded_minor = refunded_minor + :delta")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":delta", n(delta))
                .build()
                .expect("update has table, key and expression");
            writes.push(TransactWriteItem::builder().update(total).build());
        }
        self.write_all(writes).await
    }
}
