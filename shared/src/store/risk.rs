//! What risk scoring reads and writes: the rule document (versioned, with history and an audit
//! trail), per-customer and per-device counters over sliding windows, the customer's profile
//! (orders, spend, known addresses and cards) and this month's cancels and refunds.
//!
//! Everything an order needs is read in one `BatchGetItem`; every counter it moves is written in
//! the same transaction that stores the order, so a replayed request counts nothing twice.

use super::{key, keys, n, to_item, Item, Store, StoreError};
use crate::domain::risk::{RiskContext, RiskRules};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
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

/// The counters a score was computed from, as read. The order's writes move them only if they
/// still hold these values: orders fired at once cannot all be scored against the same counts;
/// the loser of a race is told ([`super::Claim::CountersMoved`]) and scored again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenCounters {
    /// Each velocity window's current bucket and its count.
    windows: Vec<SeenWindow>,
    /// The customer's orders before this one (the history rules read it).
    profile_orders: i64,
    /// How many customers the device's day item names (the accounts-per-device rule).
    device_accounts: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SeenWindow {
    partition: String,
    minutes: u32,
    bucket: i64,
    count: i64,
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

/// The condition that the counter `attribute` still holds `:seen`; an absent counter holds zero.
fn still_seen(attribute: &str, seen: i64) -> String {
    if seen == 0 {
        format!("attribute_not_exists({attribute}) OR {attribute} = :seen")
    } else {
        format!("{attribute} = :seen")
    }
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
    /// The keys of everything the rules need to know about the customer and device.
    pub(crate) fn risk_keys(
        &self,
        at: &RiskKeys<'_>,
        customer_windows: &BTreeSet<u32>,
        device_windows: &BTreeSet<u32>,
        now: OffsetDateTime,
    ) -> Vec<(String, String)> {
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
        wanted
    }

    /// What the rules need to know, from the items [`Store::risk_keys`] named (as read), and
    /// the counter values it rests on.
    pub(crate) fn risk_context_from(
        found: &HashMap<(String, String), Item>,
        at: &RiskKeys<'_>,
        customer_windows: &BTreeSet<u32>,
        device_windows: &BTreeSet<u32>,
        now: OffsetDateTime,
    ) -> (RiskContext, SeenCounters) {
        let customer = customer_partition(at.customer);
        let device = device_partition(at.device);
        let get = |pk: &str, sk: &str| found.get(&(pk.to_owned(), sk.to_owned()));
        let sliding = |partition: &str, w: u32| {
            let (b, elapsed) = bucket(w, now);
            let current = number(get(partition, &window_key(w, b)), "count");
            let previous = number(get(partition, &window_key(w, b - 1)), "count");
            (w, (current as f64 + previous as f64 * (1.0 - elapsed)).floor() as u32)
        };
        let profile = get(&customer, "PROFILE");
        let month = get(&customer, &month_of(now));
        let seen_accounts = string_set(get(&device, &day_of(now)), "customers");
        let mut accounts = seen_accounts.clone();
        accounts.insert(at.customer.to_owned());
        let current_bucket = |partition: &String, w: &u32| {
            let b = bucket(*w, now).0;
            let count = number(get(partition, &window_key(*w, b)), "count");
            SeenWindow { partition: partition.clone(), minutes: *w, bucket: b, count }
        };
        let seen = SeenCounters {
            windows: customer_windows
                .iter()
                .map(|w| current_bucket(&customer, w))
                .chain(device_windows.iter().map(|w| current_bucket(&device, w)))
                .collect(),
            profile_orders: number(profile, "orders"),
            device_accounts: seen_accounts.len(),
        };
        let context = RiskContext {
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
        };
        (context, seen)
    }

    /// An update of a counter item, on `condition`.
    fn add_if(
        &self,
        pk: String,
        sk: String,
        expression: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression(expression)
            .condition_expression(condition);
        // `count` and `ttl` are reserved words.
        for (placeholder, name) in [("#count", "count"), ("#ttl", "ttl")] {
            if expression.contains(placeholder) || condition.contains(placeholder) {
                update = update.expression_attribute_names(placeholder, name);
            }
        }
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        TransactWriteItem::builder().update(update.build().expect("update has table, key and expression")).build()
    }

    /// The counter and profile writes one order makes, for the transaction that stores it, each
    /// conditional on the value the score saw (`seen`).
    pub fn risk_writes(
        &self,
        at: RiskKeys<'_>,
        seen: &SeenCounters,
        total_minor: i64,
        address_fingerprint: &crate::personal::Fingerprint,
        card_fingerprint: Option<&str>,
        now: OffsetDateTime,
    ) -> Vec<TransactWriteItem> {
        let customer = customer_partition(at.customer);
        let device = device_partition(at.device);
        let one = || n(1);
        let mut writes = Vec::new();
        for w in &seen.windows {
            let ttl = now.unix_timestamp() + 2 * i64::from(w.minutes) * 60 + COUNTER_SLACK_SECONDS;
            writes.push(self.add_if(
                w.partition.clone(),
                window_key(w.minutes, w.bucket),
                "ADD #count :one SET #ttl = :ttl",
                &still_seen("#count", w.count),
                vec![(":one", one()), (":ttl", n(ttl)), (":seen", n(w.count))],
            ));
        }
        let day_ttl = now.unix_timestamp() + 2 * 24 * 3_600;
        let accounts_unchanged =
            if seen.device_accounts == 0 { "attribute_not_exists(customers)" } else { "size(customers) = :accounts" };
        let mut accounts_values = vec![(":me", AttributeValue::Ss(vec![at.customer.to_owned()])), (":ttl", n(day_ttl))];
        if seen.device_accounts > 0 {
            accounts_values.push((":accounts", n(seen.device_accounts)));
        }
        writes.push(self.add_if(
            device.clone(),
            day_of(now),
            "ADD customers :me SET #ttl = :ttl",
            accounts_unchanged,
            accounts_values,
        ));
        let mut profile = String::from("ADD orders :one, total_minor :total, addresses :address");
        let mut values = vec![
            (":one", one()),
            (":total", n(total_minor)),
            (":address", AttributeValue::Ss(vec![address_fingerprint.to_string()])),
            (":seen", n(seen.profile_orders)),
        ];
        if let Some(card) = card_fingerprint {
            profile.push_str(", cards :card");
            values.push((":card", AttributeValue::Ss(vec![card.to_owned()])));
        }
        let orders_unchanged = still_seen("orders", seen.profile_orders);
        writes.push(self.add_if(customer.clone(), "PROFILE".into(), &profile, &orders_unchanged, values));
        writes.push(self.month_bump(at.customer, "orders", now));
        writes
    }

    /// What after-sales review reads of a customer: orders ever, and this month's orders and
    /// refunds.
    pub async fn refund_history(
        &self,
        customer: &str,
        now: OffsetDateTime,
    ) -> Result<crate::domain::after_sales_policy::RefundHistory, StoreError> {
        let partition = customer_partition(customer);
        let wanted = [(partition.clone(), "PROFILE".to_owned()), (partition.clone(), month_of(now))];
        let found = self.batch_get(&wanted, true).await?;
        let get = |sk: &str| found.get(&(partition.clone(), sk.to_owned()));
        let count = |item, attribute| u32::try_from(number(item, attribute)).unwrap_or(u32::MAX);
        Ok(crate::domain::after_sales_policy::RefundHistory {
            orders_ever: count(get("PROFILE"), "orders"),
            month_orders: count(get(&month_of(now)), "orders"),
            month_refunds: count(get(&month_of(now)), "refunds"),
        })
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
        let audit = self.audit_record(actor, "risk-rules.save", "risk-rules", current.as_ref(), Some(&saved), now);
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder().put(put_current.build().expect("put has table and item")).build(),
            )
            .transact_items(TransactWriteItem::builder().put(history.build().expect("put has table and item")).build())
            .transact_items(audit)
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
}
