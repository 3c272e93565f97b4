//! The dashboard's counters: per hour, per channel and per metric, each event counted once.
//!
//! - `DASH#<yyyy-mm>#<shard>` / `<yyyy-mm-ddThh>#<channel>`: one hour's counters of a channel,
//!   split over [`SHARDS`] items by the counted event's id, so a flash sale's events do not all
//!   write one item (about 1,000 writes/s each) or one partition.
//! - `DASHSEEN#<event id>` / `SEEN`: the event was counted (TTL 30 days). It is put in the same
//!   transaction as the counter's increment, so a repeated event adds nothing and a counted one
//!   is never lost. A timed stage is counted the same way, under `stage:<order>:<stage>`.
//! - `DASHSTAGE#<order id>` / `ENDS`: when the order entered and left each stage of
//!   [`crate::domain::order_stages`], each kept the first time it is seen (TTL 60 days from the
//!   first end seen; a timed stage's counted mark lives 90 days, longer).

use super::{key, n, s, Item, Once, Store, StoreError};
use crate::domain::dashboard::{HourCounters, Metric};
use crate::domain::order_stages::End;
use aws_sdk_dynamodb::types::ReturnValue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Items each hour's counters of a channel are split over.
pub const SHARDS: u8 = 8;
/// Longer than a message lives in its queue and its dead-letter queue (14 days each; a redrive
/// starts the count again), so a copy redriven late still finds the mark.
const SEEN_FOR: time::Duration = time::Duration::days(30);
/// How long an order's stage ends are kept after its first one was seen: longer than an order
/// takes from intake to delivery (a hold expires within days, a parcel is lost after weeks).
const STAGE_ENDS_FOR: time::Duration = time::Duration::days(60);
/// How long a timed stage's counted mark is kept: longer than the ends it was timed from can be
/// (those went at most [`STAGE_ENDS_FOR`] after the order's first event, which came before the
/// stage was timed), so a later event of the order never finds the stage both ended and uncounted.
pub const STAGE_COUNTED_FOR: time::Duration = time::Duration::days(90);

/// What counting an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Now,
    /// A repeated delivery: the event was counted before.
    Before,
}

fn shard_of(event_id: &str) -> u8 {
    Sha256::digest(event_id.as_bytes())[0] % SHARDS
}

fn partition(month: &str, shard: u8) -> String {
    format!("DASH#{month}#{shard}")
}

impl Store {
    /// Add `increments` to `hour`'s counters of `channel`, once for `event_id` however often
    /// it is delivered. Another event writing the same item at that moment moves this one to
    /// the next shard, so a burst is not failed back to its queue.
    pub async fn count_event(
        &self,
        event_id: &str,
        hour: &str,
        channel: &str,
        increments: &[(Metric, i64)],
        now: OffsetDateTime,
    ) -> Result<Counted, StoreError> {
        self.count_once(event_id, (hour, channel), increments, now + SEEN_FOR).await
    }

    /// [`Store::count_event`] with its counted mark kept until `keep_until`.
    pub async fn count_once(
        &self,
        event_id: &str,
        (hour, channel): (&str, &str),
        increments: &[(Metric, i64)],
        keep_until: OffsetDateTime,
    ) -> Result<Counted, StoreError> {
        let first = shard_of(event_id);
        for attempt in 0..SHARDS {
            let shard = (first + attempt) % SHARDS;
            if let Some(counted) = self.count_in(event_id, (hour, channel, shard), increments, keep_until).await? {
                return Ok(counted);
            }
        }
        Err(StoreError::Contended(format!("dashboard counters of {hour}")))
    }

    /// One try of [`Store::count_event`] on one shard: none when another transaction held the
    /// item.
    async fn count_in(
        &self,
        event_id: &str,
        (hour, channel, shard): (&str, &str, u8),
        increments: &[(Metric, i64)],
        keep_until: OffsetDateTime,
    ) -> Result<Option<Counted>, StoreError> {
        let month = hour.get(..7).ok_or_else(|| StoreError::Corrupt("dashboard hour".into(), hour.into()))?;
        let mut adds = Vec::new();
        let mut update = self
            .update((partition(month, shard), format!("{hour}#{channel}")))
            .expression_attribute_names("#hour", "hour")
            .expression_attribute_values(":hour", s(hour))
            .expression_attribute_values(":channel", s(channel));
        for (index, (metric, by)) in increments.iter().enumerate() {
            adds.push(format!("#m{index} :m{index}"));
            update = update
                .expression_attribute_names(format!("#m{index}"), metric.name())
                .expression_attribute_values(format!(":m{index}"), n(by));
        }
        let expression = format!("SET #hour = :hour, channel = :channel ADD {}", adds.join(", "));
        let update = update.update_expression(expression).build().expect("update has table, key and expression");
        let mark = (format!("DASHSEEN#{event_id}"), "SEEN".to_owned());
        Ok(match self.apply_once(mark, keep_until, update).await? {
            Once::Applied => Some(Counted::Now),
            Once::Before => Some(Counted::Before),
            Once::Contended => None,
        })
    }

    /// Keeps each of `ends` of `order_id`'s stages at its time unless an earlier copy of it was
    /// kept; every end kept for the order, with its time.
    pub async fn keep_stage_ends(
        &self,
        order_id: &str,
        ends: &[(End, OffsetDateTime)],
        now: OffsetDateTime,
    ) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        let mut sets = vec!["#ttl = if_not_exists(#ttl, :ttl)".to_owned()];
        let mut update = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(format!("DASHSTAGE#{order_id}"), "ENDS".to_owned())))
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":ttl", n((now + STAGE_ENDS_FOR).unix_timestamp()));
        for (index, (end, at)) in ends.iter().enumerate() {
            sets.push(format!("#e{index} = if_not_exists(#e{index}, :e{index})"));
            update = update
                .expression_attribute_names(format!("#e{index}"), end.field())
                .expression_attribute_values(format!(":e{index}"), n(at.unix_timestamp()));
        }
        let kept = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(StoreError::aws)?;
        let fields = kept
            .attributes
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| name.starts_with("entered_") || name.starts_with("left_"));
        fields
            .map(|(name, value)| {
                let seconds = value.as_n().ok().and_then(|v| v.parse().ok());
                let at = seconds.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
                at.map(|at| (name.clone(), at)).ok_or_else(|| StoreError::Corrupt(name, format!("{value:?}")))
            })
            .collect()
    }

    /// The sales channel of the order `order_id` names, when it is one of ours.
    pub async fn order_channel(&self, order_id: &str) -> Result<Option<String>, StoreError> {
        let Ok(id) = crate::domain::OrderId::parse(order_id) else { return Ok(None) };
        let (pk, sk) = super::keys::order(id);
        let found = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .projection_expression("channel")
            .send()
            .await
            .map_err(StoreError::aws)?;
        Ok(found.item.and_then(|item| item.get("channel")?.as_s().ok().cloned()))
    }

    /// Every hour's counters of every channel from `first_hour` to `last_hour` (both
    /// `yyyy-mm-ddThh`, inclusive), the shards summed, by hour then channel.
    pub async fn dashboard_counters(&self, first_hour: &str, last_hour: &str) -> Result<Vec<HourCounters>, StoreError> {
        let month = |hour: &str| hour.get(..7).unwrap_or_default().to_owned();
        let months = months_between(&month(first_hour), &month(last_hour));
        let queries = months.iter().flat_map(|month| (0..SHARDS).map(move |shard| partition(month, shard)));
        let pages =
            futures::future::try_join_all(queries.map(|pk| self.counter_items(pk, first_hour, last_hour))).await?;
        let mut summed: BTreeMap<(String, String), BTreeMap<Metric, i64>> = BTreeMap::new();
        for item in pages.into_iter().flatten() {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let counts = summed.entry((text("hour"), text("channel"))).or_default();
            for (name, value) in &item {
                let (Some(metric), Ok(value)) = (Metric::parse(name), value.as_n()) else { continue };
                let value: i64 = value.parse().map_err(|_| StoreError::Corrupt(name.clone(), value.clone()))?;
                *counts.entry(metric).or_default() += value;
            }
        }
        Ok(summed.into_iter().map(|((hour, channel), counts)| HourCounters { hour, channel, counts }).collect())
    }

    async fn counter_items(&self, pk: String, first_hour: &str, last_hour: &str) -> Result<Vec<Item>, StoreError> {
        let query = (self.client().query())
            .table_name(self.table())
            .key_condition_expression("PK = :pk AND SK BETWEEN :first AND :last")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":first", s(format!("{first_hour}#")))
            // `~` sorts after every channel character: the whole last hour.
            .expression_attribute_values(":last", s(format!("{last_hour}#~")));
        Self::all_pages(query).await
    }
}

/// `yyyy-mm` months from `first` to `last`, inclusive.
fn months_between(first: &str, last: &str) -> Vec<String> {
    let parse = |m: &str| -> Option<(i32, u8)> { Some((m.get(..4)?.parse().ok()?, m.get(5..7)?.parse().ok()?)) };
    let (Some(mut at), Some(end)) = (parse(first), parse(last)) else { return Vec::new() };
    let mut months = Vec::new();
    while at <= end {
        months.push(format!("{:04}-{:02}", at.0, at.1));
        at = if at.1 == 12 { (at.0 + 1, 1) } else { (at.0, at.1 + 1) };
    }
    months
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_reads_every_month_it_touches_and_events_spread_over_the_shards() {
        assert_eq!(months_between("2026-11", "2027-01"), ["2026-11", "2026-12", "2027-01"]);
        assert!(months_between("2027-01", "2026-12").is_empty());
        let used: std::collections::BTreeSet<u8> = (0..200).map(|i| shard_of(&format!("OrderPaid:{i}:v1"))).collect();
        assert_eq!(used.len(), usize::from(SHARDS));
    }
}
