//! The audit trail: who changed what, when, with the before and after, one item per change,
//! written in the same transaction as the change so that a change and its record never part.
//!
//! An item lives in its subject's partition (`AUDIT#<subject>`, sorted by time) and in the
//! sparse `audit-by-day` index (`audit_day`, the same sort key): the trail of one entity and the
//! trail of one day, each read a page at a time.

use super::{from_item, n, s, to_item, Item, Store, StoreError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;

pub const AUDIT_BY_DAY_INDEX: &str = "audit-by-day";
/// Records per page, at most.
pub const AUDIT_PAGE_MAX: i32 = 100;

/// One change, as the trail keeps it. `before` and `after` are the JSON the change recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// Which trail to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTrail {
    /// One entity's changes (`orders/<id>`, `stock/<sku>/<warehouse>`, `config/hold-policy`, …).
    Subject(String),
    /// Every change of a UTC day (`YYYY-MM-DD`).
    Day(time::Date),
}

/// Where the next page starts: the last record's sort key and subject, handed out hex-encoded
/// so that it travels in a query string as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor {
    sort_key: String,
    subject: String,
}

impl AuditCursor {
    /// The cursor as the API hands it out.
    pub fn token(&self) -> String {
        hex::encode(format!("{}|{}", self.sort_key, self.subject))
    }

    /// A cursor the API handed out, or `None` for anything else.
    pub fn parse(token: &str) -> Option<Self> {
        let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
        let (sort_key, subject) = text.split_once('|')?;
        let (seconds, id) = sort_key.split_once('#')?;
        let well_formed =
            seconds.len() == 12 && seconds.bytes().all(|b| b.is_ascii_digit()) && id.parse::<ulid::Ulid>().is_ok();
        (well_formed && !subject.is_empty())
            .then(|| Self { sort_key: sort_key.to_owned(), subject: subject.to_owned() })
    }
}

/// Reads and tries per replacing save before the caller is told the item is contended.
const REPLACE_ATTEMPTS: usize = 5;
/// The attribute a replacing save counts its saves in, so that it writes only over what it read.
pub(crate) const REVISION: &str = "audit_revision";

/// Who changes what, and when: the audit record's facts besides before and after.
pub(crate) struct Change<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub now: OffsetDateTime,
}

fn json_text(value: &impl Serialize) -> AttributeValue {
    s(serde_json::to_string(value).expect("audit values are plain data"))
}

fn partition(subject: &str) -> String {
    format!("AUDIT#{subject}")
}

impl Store {
    /// The audit item for one change: `action` on `subject` by `actor`, to be written in the
    /// change's own transaction.
    pub(crate) fn audit_record(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        before: Option<&impl Serialize>,
        after: Option<&impl Serialize>,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let mut item: Item = HashMap::from([
            ("PK".to_owned(), s(partition(subject))),
            // Seconds first, so a partition and the day index sort by time; the ULID keeps two
            // changes of one second apart.
            ("SK".to_owned(), s(format!("{:012}#{}", now.unix_timestamp().max(0), ulid::Ulid::new()))),
            ("audit_day".to_owned(), s(now.date().to_string())),
            ("entity".to_owned(), s("Audit")),
            ("actor".to_owned(), s(actor)),
            ("action".to_owned(), s(action)),
            ("subject".to_owned(), s(subject)),
            ("at".to_owned(), s(now.format(&time::format_description::well_known::Rfc3339).expect("UTC formats"))),
        ]);
        if let Some(before) = before {
            item.insert("before".to_owned(), json_text(before));
        }
        if let Some(after) = after {
            item.insert("after".to_owned(), json_text(after));
        }
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().expect("put has table and item");
        TransactWriteItem::builder().put(put).build()
    }

    /// Replace the item at `key` with `value` (of type `entity`), audited with what it replaced
    /// in the same transaction. The put is conditional on the item's revision being the one
    /// read, so the record's before is what the save replaced; a save in between means reading
    /// again.
    pub(crate) async fn replace_audited<T>(
        &self,
        (pk, sk): (String, String),
        entity: &str,
        value: &T,
        change: Change<'_>,
    ) -> Result<(), StoreError>
    where
        T: Serialize + serde::de::DeserializeOwned,
    {
        for _ in 0..REPLACE_ATTEMPTS {
            let stored: Option<Item> = self.raw_item(pk.clone(), sk.clone()).await?;
            let revision = stored.as_ref().and_then(|i| i.get(REVISION)?.as_n().ok()?.parse::<u64>().ok());
            let before: Option<T> = stored.map(|item| from_item(item, entity)).transpose()?;
            let mut item = to_item(value, pk.clone(), sk.clone(), entity);
            item.insert(REVISION.to_owned(), n(revision.unwrap_or(0) + 1));
            let put = Put::builder().table_name(&self.table).set_item(Some(item));
            let put = match (&before, revision) {
                (None, _) => put.condition_expression("attribute_not_exists(PK)"),
                (Some(_), None) => put.condition_expression("attribute_exists(PK) AND attribute_not_exists(#rev)"),
                (Some(_), Some(seen)) => {
                    put.condition_expression("#rev = :seen").expression_attribute_values(":seen", n(seen))
                }
            };
            let put = if before.is_some() { put.expression_attribute_names("#rev", REVISION) } else { put };
            let put = TransactWriteItem::builder().put(put.build().expect("put has table and item")).build();
            let audit = self.audit_record(
                change.actor,
                change.action,
                change.subject,
                before.as_ref(),
                Some(value),
                change.now,
            );
            if self.write_all(vec![put, audit]).await? {
                return Ok(());
            }
        }
        Err(StoreError::Contended(change.subject.to_owned()))
    }

    /// That `actor` read an order's personal `fields` in the clear, and why: recorded before the
    /// read, so a read without its record cannot happen.
    pub async fn record_personal_read(
        &self,
        actor: &str,
        order_id: crate::domain::OrderId,
        reason: &str,
        fields: &[&str],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let read = serde_json::json!({ "reason": reason, "fields": fields });
        self.record_alone(actor, "personal-data.read", &format!("orders/{order_id}"), &read, now).await
    }

    /// An audit record of something that changes nothing else (a read, a request as a whole).
    pub(crate) async fn record_alone(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        after: &impl Serialize,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let record = self.audit_record(actor, action, subject, None::<&()>, Some(after), now);
        // One put with nothing to hold together: a plain PutItem, not a transaction.
        if self.commit(vec![record]).await? {
            Ok(())
        } else {
            Err(StoreError::Contended(subject.to_owned()))
        }
    }

    /// A page of a trail, oldest first: up to `limit` records after `cursor`, and the cursor of
    /// the next page when there may be one.
    pub async fn audit_trail(
        &self,
        trail: &AuditTrail,
        cursor: Option<&AuditCursor>,
        limit: i32,
    ) -> Result<(Vec<AuditRecord>, Option<AuditCursor>), StoreError> {
        let query = self.client.query().table_name(&self.table).limit(limit.clamp(1, AUDIT_PAGE_MAX));
        let query = match trail {
            AuditTrail::Subject(subject) => {
                query.key_condition_expression("PK = :pk").expression_attribute_values(":pk", s(partition(subject)))
            }
            AuditTrail::Day(day) => query
                .index_name(AUDIT_BY_DAY_INDEX)
                .key_condition_expression("audit_day = :day")
                .expression_attribute_values(":day", s(day.to_string())),
        };
        let start = cursor.map(|c| {
            let subject = match trail {
                // A subject's trail starts after a key of its own partition, whatever the cursor says.
                AuditTrail::Subject(subject) => subject,
                AuditTrail::Day(_) => &c.subject,
            };
            let mut key = HashMap::from([("PK".to_owned(), s(partition(subject))), ("SK".to_owned(), s(&c.sort_key))]);
            if let AuditTrail::Day(day) = trail {
                key.insert("audit_day".to_owned(), s(day.to_string()));
            }
            key
        });
        let output = query.set_exclusive_start_key(start).send().await.map_err(StoreError::aws)?;
        let next = output.last_evaluated_key.as_ref().and_then(|k| {
            let text = |name: &str| k.get(name).and_then(|v: &AttributeValue| v.as_s().ok()).cloned();
            Some(AuditCursor { sort_key: text("SK")?, subject: text("PK")?.strip_prefix("AUDIT#")?.to_owned() })
        });
        let records: Result<Vec<AuditRecord>, _> =
            output.items.unwrap_or_default().into_iter().map(|i| from_item(i, "audit record")).collect();
        Ok((records?, next))
    }

    /// Every audit record of a day, oldest first (all its pages).
    pub async fn audit_of_day(&self, day: time::Date) -> Result<Vec<AuditRecord>, StoreError> {
        let trail = AuditTrail::Day(day);
        let (mut records, mut next) = self.audit_trail(&trail, None, AUDIT_PAGE_MAX).await?;
        while let Some(cursor) = next {
            let (page, after) = self.audit_trail(&trail, Some(&cursor), AUDIT_PAGE_MAX).await?;
            records.extend(page);
            next = after;
        }
        Ok(records)
    }
}
