//! The audit trail: who changed what, when, with the before and after, one item per change in
//! the same transaction as the change, by day (`AUDIT#<yyyy-mm-dd>`), so a change and its record
//! never part.

use super::{s, Item, Store, StoreError};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::Serialize;
use std::collections::HashMap;
use time::OffsetDateTime;

impl Store {
    /// The audit item for one change: `action` on `subject` by `actor`.
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
            ("PK".to_owned(), s(format!("AUDIT#{}", now.date()))),
            ("SK".to_owned(), s(format!("{}#{}", now.unix_timestamp(), ulid::Ulid::new()))),
            ("entity".to_owned(), s("Audit")),
            ("actor".to_owned(), s(actor)),
            ("action".to_owned(), s(action)),
            ("subject".to_owned(), s(subject)),
            ("at".to_owned(), s(now.format(&time::format_description::well_known::Rfc3339).expect("UTC formats"))),
        ]);
        if let Some(before) = before {
            item.insert("before".to_owned(), s(serde_json::to_string(before).expect("plain data")));
        }
        if let Some(after) = after {
            item.insert("after".to_owned(), s(serde_json::to_string(after).expect("plain data")));
        }
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().expect("put has table and item");
        TransactWriteItem::builder().put(put).build()
    }

    /// Audit records of a day, oldest first.
    pub async fn audit_of_day(&self, day: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let items: Vec<HashMap<String, String>> = self.query_partition(format!("AUDIT#{day}"), "audit").await?;
        Ok(items.into_iter().map(|i| serde_json::to_value(i).expect("plain data")).collect())
    }
}
