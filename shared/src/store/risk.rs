//! What risk scoring reads and writes: the rule document (versioned, with history and an audit
//! trail), per-customer and per-device counters over sliding windows, the customer's profile
//! (orders, spend, known addresses and cards) and this month's cancels and refunds.
//!
//! Everything an order needs is read in one `BatchGetItem`; every counter it moves is written in
//! the same transaction that stores the order, so a replayed request counts nothing twice.

use super::{key, keys, n, s, to_item, Item, Store, StoreError};
use crate::domain::risk::{RiskContext, RiskRules};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use std::collections::{BTreeSet, HashMap};
use time::OffsetDateTime;

/// Counters outlive their window by this much before TTL removes them.
const COUNTER_SLACK_SECONDS: i64 = 3_600;
const MONTH_RETENTION_SECONDS: i64 = 62 * 24 * 3_600;

/// The order's coordinates for risk bookkeeping.
pub struct RiskKeys<'a> {
    pub customer: &'a str,
    pub device: &'a str,
}

fn customer_partition(customer: &str) -> String {
    format!("RISK#CUST#{customer}")
}

fn device_partition(device: &str) -> String {
    format!("RISK#DEV#{device}")
}

fn window_key(window_minutes: u32, bucket: i64) -> String {
    format!("W{window_minutes}#{bucket}")
}

pub fn month_of(at: OffsetDateTime) -> String {
    format!("MONTH#{:04}{:02}", at.year(), u8::from(at.month()))
}

fn day_of(at: OffsetDateTime) -> String {
    format!("ACCOUNTS#{:04}{:02}{:02}", at.year(), u8::from(at.month()), at.day())
}

/// (current bucket, elapsed fraction of it) of a fixed window at `now`.
fn bucket(window_minutes: u32, now: OffsetDateTime) -> (i64, f64) {
    let width = i64::from(window_minutes) * 60;
    let t = now.unix_timestamp();
    (t.div_euclid(width), t.rem_euclid(width) as f64 / width as f64)
}

fn number(item: Option<&Item>, attribute: &str) -> i64 {
    item.and_then(|i| i.get(attribute)).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn string_set(item: Option<&Item>, attribute: &str) -> BTreeSet<String> {
    item.and_then(|i| i.get(attribute))
        .and_then(|v| v.as_ss().ok())
        .map(|v| v.iter().cloned().collect())
        .unwrap_or_default()
}

#[derive(Debug)]
pub enum SaveRulesError {
    /// Someone saved another version meanwhile.
    VersionConflict {
        current: u32,
    },
    Store(StoreError),
}

impl Store {
    /// Everything the rules need to know about the customer and device, before this order.
    pub async fn risk_context(
        &self,
        at: RiskKeys<'_>,
        customer_windows: &BTreeSet<u32>,
        device_windows: &BTreeSet<u32>,
        now: OffsetDateTime,
    ) -> Result<RiskContext, StoreError> {
        let customer = customer_partition(at.customer);
        let device = device_partition(at.device);
        let mut wanted: Vec<(String, String)> = vec![
            (customer.clone(), "PROFILE".into()),
            (customer.clone(), month_of(now)),
            (device.clone(), day_of(now)),
        ];
        for (partition, windows) in [(&customer, customer_windows), (&device, device_windows)] {
            for w in windows {
                let (b, _) = bucket(*w, now);
                wanted.push((partition.clone(), window_key(*w, b)));
                wanted.push((partition.clone(), window_key(*w, b - 1)));
            }
        }
        let keys: Vec<Item> = wanted.iter().map(|(pk, sk)| key(pk.clone(), sk.clone())).collect();
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut pending =
                Some(KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())).build().expect("keys are set"));
            while let Some(request) = pending.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(StoreError::aws)?;
                for item in output.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    let pk = item.get("PK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                    let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                    found.insert((pk, sk), item);
                }
                pending =
                    output.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys().is_empty());
            }
        }
        let get = |pk: &str, sk: &str| found.get(&(pk.to_owned(), sk.to_owned()));
        let sliding = |partition: &str, w: u32| {
            let (b, elapsed) = bucket(w, now);
            let current = number(get(partition, &window_key(w, b)), "count");
            let previous = number(get(partition, &window_key(w, b - 1)), "count");
            (w, (current as f64 + previous as f64 * (1.0 - elapsed)).floor() as u32)
        };
        let profile = get(&customer, "PROFILE");
        let month = get(&customer, &month_of(now));
        let mut accounts = string_set(get(&device, &day_of(now)), "customers");
        accounts.insert(at.customer.to_owned());
        Ok(RiskContext {
            customer_orders: customer_windows.iter().map(|w| sliding(&customer, *w)).collect(),
            device_orders: device_windows.iter().map(|w| sliding(&device, *w)).collect(),
            device_accounts: accounts.len() as u32,
            previous_orders: number(profile, "orders") as u32,
            previous_total_minor: number(profile, "total_minor"),
            known_addresses: string_set(profile, "addresses"),
            known_cards: string_set(profile, "cards"),
            month_orders: number(month, "orders") as u32,
            month_cancels: number(month, "cancels") as u32,
            month_refunds: number(month, "refunds") as u32,
        })
    }

    fn add(&self, pk: String, sk: String, expression: &str, values: Vec<(&str, AttributeValue)>) -> TransactWriteItem {
        let mut update =
            Update::builder().table_name(&self.table).set_key(Some(key(pk, sk))).update_expression(expression);
        // `count` and `ttl` are reserved words.
        for (placeholder, name) in [("#count", "count"), ("#ttl", "ttl")] {
            if expression.contains(placeholder) {
                update = update.expression_attribute_names(placeholder, name);
            }
        }
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        TransactWriteItem::builder().update(update.build().expect("update has table, key and expression")).build()
    }

    /// The counter and profile writes one order makes, for the transaction that stores it.
    #[allow(clippy::too_many_arguments)]
    pub fn risk_writes(
        &self,
        at: RiskKeys<'_>,
        customer_windows: &BTreeSet<u32>,
        device_windows: &BTreeSet<u32>,
        total_minor: i64,
        address_fingerprint: &str,
        card_fingerprint: Option<&str>,
        now: OffsetDateTime,
    ) -> Vec<TransactWriteItem> {
        let customer = customer_partition(at.customer);
        let device = device_partition(at.device);
        let one = || n(1);
        let mut writes = Vec::new();
        for (partition, windows) in [(&customer, customer_windows), (&device, device_windows)] {
            for w in windows {
                let (b, _) = bucket(*w, now);
                let ttl = now.unix_timestamp() + 2 * i64::from(*w) * 60 + COUNTER_SLACK_SECONDS;
                writes.push(self.add(
                    partition.clone(),
                    window_key(*w, b),
                    "ADD #count :one SET #ttl = :ttl",
                    vec![(":one", one()), (":ttl", n(ttl))],
                ));
            }
        }
        let day_ttl = now.unix_timestamp() + 2 * 24 * 3_600;
        writes.push(self.add(
            device.clone(),
            day_of(now),
            "ADD customers :me SET #ttl = :ttl",
            vec![(":me", AttributeValue::Ss(vec![at.customer.to_owned()])), (":ttl", n(day_ttl))],
        ));
        let mut profile = String::from("ADD orders :one, total_minor :total, addresses :address");
        let mut values = vec![
            (":one", one()),
            (":total", n(total_minor)),
            (":address", AttributeValue::Ss(vec![address_fingerprint.to_owned()])),
        ];
        if let Some(card) = card_fingerprint {
            profile.push_str(", cards :card");
            values.push((":card", AttributeValue::Ss(vec![card.to_owned()])));
        }
        writes.push(self.add(customer.clone(), "PROFILE".into(), &profile, values));
        writes.push(self.month_bump(at.customer, "orders", now));
        writes
    }

    /// One more order, cancel or refund in the customer's month, for the history rules.
    pub fn month_bump(&self, customer: &str, counter: &str, at: OffsetDateTime) -> TransactWriteItem {
        let ttl = at.unix_timestamp() + MONTH_RETENTION_SECONDS;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(customer_partition(customer), month_of(at))))
            .update_expression("ADD #counter :one SET #ttl = :ttl")
            .expression_attribute_names("#counter", counter)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(ttl))
            .build()
            .expect("update has table, key and expression");
        TransactWriteItem::builder().update(update).build()
    }

    pub async fn risk_rules(&self) -> Result<Option<RiskRules>, StoreError> {
        self.get(keys::CONFIG_PARTITION.to_owned(), "RISK_RULES".to_owned(), "risk rules").await
    }

    /// Save a new version of the rules, if `rules.version` is still the current one. The
    /// previous version is kept and the change audited (who, when, before, after).
    pub async fn save_risk_rules(
        &self,
        rules: &RiskRules,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<RiskRules, SaveRulesError> {
        let current = self.risk_rules().await.map_err(SaveRulesError::Store)?;
        let current_version = current.as_ref().map(|r| r.version).unwrap_or(0);
        if rules.version != current_version {
            return Err(SaveRulesError::VersionConflict { current: current_version });
        }
        let saved = RiskRules { version: current_version + 1, ..rules.clone() };
        let condition = if current.is_some() { "version = :expected" } else { "attribute_not_exists(PK)" };
        let mut put_current = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&saved, keys::CONFIG_PARTITION.to_owned(), "RISK_RULES".to_owned(), "RiskRules")))
            .condition_expression(condition);
        if current.is_some() {
            put_current = put_current.expression_attribute_values(":expected", n(current_version));
        }
        let history = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(
                &saved,
                keys::CONFIG_PARTITION.to_owned(),
                format!("RISK_RULES#v{:06}", saved.version),
                "RiskRulesVersion",
            )))
            .condition_expression("attribute_not_exists(PK)");
        let mut audit: Item = HashMap::from([
            ("PK".to_owned(), s(format!("AUDIT#{}", now.date()))),
            ("SK".to_owned(), s(format!("{}#{}", now.unix_timestamp(), ulid::Ulid::new()))),
            ("entity".to_owned(), s("Audit")),
            ("actor".to_owned(), s(actor)),
            ("action".to_owned(), s("risk-rules.save")),
            ("at".to_owned(), s(now.format(&time::format_description::well_known::Rfc3339).expect("UTC formats"))),
            ("after".to_owned(), s(serde_json::to_string(&saved).expect("plain data"))),
        ]);
        if let Some(before) = &current {
            audit.insert("before".to_owned(), s(serde_json::to_string(before).expect("plain data")));
        }
        let audit =
            Put::builder().table_name(&self.table).set_item(Some(audit)).build().expect("put has table and item");
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder().put(put_current.build().expect("put has table and item")).build(),
            )
            .transact_items(TransactWriteItem::builder().put(history.build().expect("put has table and item")).build())
            .transact_items(TransactWriteItem::builder().put(audit).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(saved),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(_) => {
                    Err(SaveRulesError::VersionConflict { current: current_version })
                }
                other => Err(SaveRulesError::Store(StoreError::Aws(
                    aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string(),
                ))),
            },
        }
    }

    /// Audit records of a day, newest last.
    pub async fn audit_of_day(&self, day: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let items: Vec<HashMap<String, String>> = self.query_partition(format!("AUDIT#{day}"), "audit").await?;
        Ok(items.into_iter().map(|i| serde_json::to_value(i).expect("plain data")).collect())
    }
}
