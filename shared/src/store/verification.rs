//! Step-up verification codes: the order's verification (its code's hash, attempts left, resends)
//! and how many codes went to a phone today (`RISK#PHONE#<keyed fingerprint>/CODES#<day>`), so
//! neither one order nor many orders can turn the SMS gateway into a flood.

use super::orders::{one, status, NEXT_VERSION};
use super::{attr, cancellation_codes, key, keys, n, s, Store, StoreError};
use crate::domain::{OrderId, OrderStatus, Verification};
use crate::personal::Fingerprint;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use time::OffsetDateTime;

/// Day counters outlive their day by this much before TTL removes them.
const DAY_RETENTION_SECONDS: i64 = 2 * 24 * 3_600;

/// Why a new code was not sent.
#[derive(Debug, PartialEq, Eq)]
pub enum ResendRefused {
    /// The order's verification changed since it was read (another resend, an attempt).
    Changed,
    /// The phone had its day's codes.
    PhoneCapReached,
}

/// The item counting codes sent to the phone of fingerprint `phone` on `now`'s day (UTC).
pub(crate) fn phone_codes_key(phone: &Fingerprint, now: OffsetDateTime) -> (String, String) {
    let day = now.date();
    (format!("RISK#PHONE#{phone}"), format!("CODES#{:04}{:02}{:02}", day.year(), u8::from(day.month()), day.day()))
}

impl Store {
    /// One more code to `phone` today, on `condition` over its count `#count`.
    fn count_code(&self, phone: &Fingerprint, condition: &str, bound: i64, now: OffsetDateTime) -> TransactWriteItem {
        let (pk, sk) = phone_codes_key(phone, now);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression("ADD #count :one SET #ttl = :ttl")
            .condition_expression(condition)
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", one())
            .expression_attribute_values(":bound", n(bound))
            .expression_attribute_values(":ttl", n(now.unix_timestamp() + DAY_RETENTION_SECONDS))
            .build()
            .expect("update has table, key and expression");
        TransactWriteItem::builder().update(update).build()
    }

    /// The first code of a new order, for the transaction that stores it: counted only if the
    /// phone's count is still `seen` (what intake read when it chose step-up over review).
    pub fn first_code_sent(&self, phone: &Fingerprint, seen: i64, now: OffsetDateTime) -> TransactWriteItem {
        let condition = if seen == 0 { "attribute_not_exists(#count) OR #count = :bound" } else { "#count = :bound" };
        self.count_code(phone, condition, seen, now)
    }

    /// Swap the order's verification for `next` (a new code) if it is still the one seen, and
    /// count the code against the phone's day, if the phone has fewer than `per_phone_per_day`.
    pub async fn resend_code(
        &self,
        id: OrderId,
        phone: &Fingerprint,
        seen: &Verification,
        next: &Verification,
        per_phone_per_day: u32,
        now: OffsetDateTime,
    ) -> Result<Result<(), ResendRefused>, StoreError> {
        let order = self
            .update(keys::order(id))
            .update_expression(format!("SET verification = :next {NEXT_VERSION}"))
            // The attempts too: a wrong code counted meanwhile must not be given back.
            .condition_expression(
                "#status = :pending AND verification.code_hash = :seen AND verification.attempts_left = :attempts",
            )
            .expression_attribute_values(":attempts", n(seen.attempts_left))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":next", attr(next))
            .expression_attribute_values(":seen", s(seen.code_hash.as_str()))
            .expression_attribute_values(":pending", status(OrderStatus::PendingVerification))
            .expression_attribute_values(":one", one())
            .build()
            .expect("update has table, key and expression");
        let counted = self.count_code(
            phone,
            "attribute_not_exists(#count) OR #count < :bound",
            i64::from(per_phone_per_day),
            now,
        );
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(order).build())
            .transact_items(counted)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let codes = cancellation_codes(c.cancellation_reasons());
                    if codes.get(1) == Some(&"ConditionalCheckFailed")
                        && codes.first() != Some(&"ConditionalCheckFailed")
                    {
                        Ok(Err(ResendRefused::PhoneCapReached))
                    } else {
                        Ok(Err(ResendRefused::Changed))
                    }
                }
                TransactWriteItemsError::TransactionInProgressException(_) => Ok(Err(ResendRefused::Changed)),
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string())),
            },
        }
    }

    /// One wrong verification code: `attempts_left` goes down, once per attempt seen.
    pub async fn spend_verification_attempt(&self, id: OrderId, seen_attempts_left: u32) -> Result<bool, StoreError> {
        self.update_if(
            keys::order(id),
            &format!("SET verification.attempts_left = :left {NEXT_VERSION}"),
            "#status = :pending AND verification.attempts_left = :seen",
            &[("#status", "status")],
            vec![
                (":left", n(seen_attempts_left.saturating_sub(1))),
                (":seen", n(seen_attempts_left)),
                (":pending", status(OrderStatus::PendingVerification)),
                (":one", one()),
            ],
        )
        .await
    }
}
