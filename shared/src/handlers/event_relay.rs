//! Function event-relay (the table's stream, through an event source mapping that reports batch
//! item failures): every change of the table becomes its domain events on the bus. It is the only
//! publisher; the handlers' one write per state change is the outbox.
//!
//! Records are mapped in stream order ([`crate::events::changes`]). Their events go out in rounds:
//! the first round carries each entity's first event of the batch, the next round its second,
//! and so on; a round goes out in concurrent PutEvents calls of up to ten entries, and the next
//! round only after it. So no two events of one order are ever in flight together, and a refused
//! entry cannot be overtaken by a later event of its order. The entries a call refused are retried a few times; if some still fail,
//! publishing stops and the answer names the first record whose events are not all out: the event
//! source retries from that record, so nothing after it is lost and an order's events go out in
//! order (events of other records already out may go again: their ids are the same). When that
//! record heads the batch, the invocation fails instead: the event source then bisects the batch
//! (a partial answer at the head would only retry the same batch), so a poison record is cut down
//! to itself before the retries run out and only it reaches the on-failure queue. A record that
//! cannot be mapped is logged (error, by its key) and skipped: retrying would not make it
//! readable, and holding the shard back for it would stop every event behind it.

use crate::config::ConfigError;
use crate::events::changes::announcements;
use crate::events::{Announcement, EventBridgePublisher, EventPublisher};
use aws_lambda_events::event::dynamodb::{Event as DynamoDbEvent, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

#[derive(Debug, Clone, Copy)]
pub struct RelaySettings {
    /// Tries per entry within one invocation (about 1.5 s with the default pause) before the
    /// record is handed back to the event source, which retries it (8 times, bisecting), then
    /// describes it to the on-failure queue.
    pub publish_attempts: usize,
    /// Pause before the first retry of refused entries; doubles after each.
    pub retry_pause: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self { publish_attempts: 5, retry_pause: Duration::from_millis(100) }
    }
}

#[derive(Clone)]
pub struct RelayDeps {
    pub publisher: Arc<dyn EventPublisher>,
    pub settings: RelaySettings,
}

impl RelayDeps {
    /// The bus named by `EVENT_BUS_NAME`, through a client from the standard AWS configuration.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let bus = std::env::var("EVENT_BUS_NAME")
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::Missing("EVENT_BUS_NAME"))?;
        let aws = crate::aws::config().await;
        let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&aws), bus);
        Ok(Self { publisher: Arc::new(publisher), settings: RelaySettings::default() })
    }
}

/// The invocation failed as a whole: the event source retries the batch, bisecting it.
#[derive(Debug, thiserror::Error)]
#[error("the events of the batch's first record ({keys}) could not be published")]
pub struct HeadNotPublished {
    pub keys: String,
}

/// Relay one batch of stream records.
pub async fn handle(deps: &RelayDeps, event: DynamoDbEvent) -> Result<DynamoDbEventResponse, HeadNotPublished> {
    let mut pending: Vec<(usize, Announcement)> = Vec::new();
    for (index, record) in event.records.iter().enumerate() {
        match announcements(record) {
            Ok(found) => pending.extend(found.into_iter().map(|a| (index, a))),
            Err(err) => tracing::error!(
                keys = %keys_of(record),
                sequence_number = record.change.sequence_number.as_deref().unwrap_or("-"),
                error = %err,
                "change not mapped to events; skipped"
            ),
        }
    }
    let mut response = DynamoDbEventResponse::default();
    let rounds = rounds(&pending);
    for (index, round) in rounds.iter().enumerate() {
        // A round's calls hold different entities: they go out together.
        let calls = round.chunks(EventBridgePublisher::MAX_ENTRIES).map(|call| async move {
            let batch: Vec<Announcement> = call.iter().map(|(_, a)| a.clone()).collect();
            let refused = publish_with_retries(deps, &batch).await.unwrap_or_default();
            refused.into_iter().map(|i| call[i].0).collect::<Vec<usize>>()
        });
        let refused: Vec<usize> = futures::future::join_all(calls).await.into_iter().flatten().collect();
        if refused.is_empty() {
            continue;
        }
        // Everything not yet out: what this round could not send, and every later round.
        let unsent = rounds[index + 1..].iter().flat_map(|r| r.iter()).map(|(record, _)| *record);
        let first_record = unsent.chain(refused).min().expect("a refused entry");
        let record = &event.records[first_record];
        if first_record == 0 {
            return Err(HeadNotPublished { keys: keys_of(record) });
        }
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = record.change.sequence_number.clone();
        warn!(keys = %keys_of(record), "events not published; the stream retries from this record");
        response.batch_item_failures.push(failure);
        return Ok(response);
    }
    info!(records = event.records.len(), events = pending.len(), "changes relayed");
    Ok(response)
}

/// `pending` (record index, event) in rounds: an entity's n-th event of the batch goes in round
/// n, each round in stream order.
fn rounds(pending: &[(usize, Announcement)]) -> Vec<Vec<&(usize, Announcement)>> {
    let mut rounds: Vec<Vec<&(usize, Announcement)>> = Vec::new();
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for entry in pending {
        let round = seen.entry(entry.1.entity_id.as_str()).or_insert(0);
        if rounds.len() <= *round {
            rounds.resize_with(*round + 1, Vec::new);
        }
        rounds[*round].push(entry);
        *round += 1;
    }
    rounds
}

/// Publish `batch`, retrying refused entries; the indices of the entries still refused, if any.
async fn publish_with_retries(deps: &RelayDeps, batch: &[Announcement]) -> Option<Vec<usize>> {
    let mut unpublished: Vec<usize> = (0..batch.len()).collect();
    let mut pause = deps.settings.retry_pause;
    for attempt in 1..=deps.settings.publish_attempts.max(1) {
        let sending: Vec<Announcement> = unpublished.iter().map(|&i| batch[i].clone()).collect();
        let results = deps.publisher.publish_all(&sending).await;
        let mut still = Vec::new();
        for (position, result) in results.iter().enumerate() {
            match result {
                Ok(_) => crate::telemetry::metrics::relayed(&sending[position]),
                Err(err) => {
                    warn!(attempt, error = %err, "event refused");
                    still.push(unpublished[position]);
                }
            }
        }
        // A publisher that answered for fewer entries than it was given published none of the rest.
        still.extend(unpublished.iter().skip(results.len()).copied());
        unpublished = still;
        if unpublished.is_empty() {
            return None;
        }
        if attempt < deps.settings.publish_attempts {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    Some(unpublished)
}

/// The record's key, as `PK/SK`, for logs: ids only, never personal data.
fn keys_of(record: &EventRecord) -> String {
    let part = |name: &str| match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(value)) => value.clone(),
        _ => "?".to_owned(),
    };
    format!("{}/{}", part("PK"), part("SK"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{PublishAllFuture, PublishError};
    use std::sync::Mutex;

    /// A bus that takes every entry except those whose id contains `refuse`, and remembers the
    /// calls it got.
    #[derive(Default)]
    struct Bus {
        refuse: Option<String>,
        calls: Mutex<Vec<Vec<Announcement>>>,
    }

    impl EventPublisher for Bus {
        fn publish_all<'a>(&'a self, announcements: &'a [Announcement]) -> PublishAllFuture<'a> {
            self.calls.lock().unwrap().push(announcements.to_vec());
            let results = announcements
                .iter()
                .map(|a| match &self.refuse {
                    Some(text) if a.event_id.contains(text) => {
                        Err(PublishError { event_id: a.event_id.clone(), reason: "refused".into() })
                    }
                    _ => Ok(()),
                })
                .collect();
            Box::pin(async move { results })
        }
    }

    fn relay(bus: Arc<Bus>) -> RelayDeps {
        RelayDeps { publisher: bus, settings: RelaySettings { publish_attempts: 2, retry_pause: Duration::ZERO } }
    }

    fn fixture(text: &str) -> DynamoDbEvent {
        serde_json::from_str(text).expect("a DynamoDB stream event")
    }

    fn published(bus: &Bus) -> Vec<String> {
        bus.calls.lock().unwrap().iter().flatten().map(|a| a.event_id.clone()).collect()
    }

    #[tokio::test]
    async fn a_batch_goes_out_in_calls_of_at_most_ten_never_two_events_of_one_order_in_a_call() {
        let bus = Arc::new(Bus::default());
        let event = fixture(include_str!("../../../events/stream-order-lifecycle.json"));
        let response = handle(&relay(bus.clone()), event).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        let calls = bus.calls.lock().unwrap().clone();
        assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 14, "every event once");
        for call in &calls {
            assert!(call.len() <= 10);
            let mut entities: Vec<&str> = call.iter().map(|a| a.entity_id.as_str()).collect();
            entities.sort();
            let before = entities.len();
            entities.dedup();
            assert_eq!(entities.len(), before, "two events of one entity in a call: {call:?}");
        }
        assert!(calls.len() <= 5, "14 events of 5 entities need few calls, took {}", calls.len());
    }

    #[tokio::test]
    async fn an_unreadable_record_is_skipped_and_the_rest_are_published() {
        let bus = Arc::new(Bus::default());
        let event = fixture(include_str!("../../../events/stream-unreadable-change.json"));
        let response = handle(&relay(bus.clone()), event).await.unwrap();
        assert!(response.batch_item_failures.is_empty(), "retrying would not make it readable");
        assert_eq!(published(&bus).len(), 1);
        assert!(published(&bus)[0].starts_with("OrderReceived:"));
    }

    /// `record` (an order's change) as if it were about order `id`, at `sequence`.
    fn about_order(record: &EventRecord, id: crate::domain::OrderId, sequence: u64) -> EventRecord {
        let mut record = record.clone();
        let key = serde_dynamo::AttributeValue::S(format!("ORDER#{id}"));
        record.change.keys.insert("PK".into(), key.clone());
        for image in [&mut record.change.new_image, &mut record.change.old_image] {
            if !image.is_empty() {
                image.insert("PK".into(), key.clone());
                image.insert("order_id".into(), serde_dynamo::AttributeValue::S(id.to_string()));
            }
        }
        record.change.sequence_number = Some(format!("{sequence:021}"));
        record
    }

    #[tokio::test]
    async fn a_refusal_in_a_later_call_reports_the_earliest_record_not_out_even_from_a_later_round() {
        let lifecycle = fixture(include_str!("../../../events/stream-order-lifecycle.json"));
        let (inserted, reserved) = (&lifecycle.records[3], &lifecycle.records[5]);
        let ids: Vec<crate::domain::OrderId> = (0..12).map(|_| crate::domain::OrderId::generate()).collect();
        // Order 0 is received and reserved (records 0 and 1); eleven more orders are received.
        let mut event = DynamoDbEvent::default();
        event.records.push(about_order(inserted, ids[0], 1));
        event.records.push(about_order(reserved, ids[0], 2));
        for (i, id) in ids.iter().enumerate().skip(1) {
            event.records.push(about_order(inserted, *id, 2 + i as u64));
        }
        // The first round (twelve OrderReceived) takes two calls; the eleventh order's is refused.
        let bus = Arc::new(Bus { refuse: Some(ids[10].to_string()), ..Bus::default() });
        let response = handle(&relay(bus.clone()), event.clone()).await.unwrap();
        let failures: Vec<Option<String>> =
            response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(
            failures,
            [event.records[1].change.sequence_number.clone()],
            "order 0's reservation (record 1, second round) never went out: the retry starts there"
        );
        assert!(!published(&bus).iter().any(|id| id.starts_with("StockReserved")), "not sent after the refusal");
    }

    #[tokio::test]
    async fn a_refused_first_record_fails_the_invocation_so_the_batch_is_bisected() {
        let event = fixture(include_str!("../../../events/stream-unreadable-change.json"));
        let refused = announcements(&event.records[1]).unwrap().remove(0).event_id;
        let mut head_first = event.clone();
        head_first.records.remove(0);
        let bus = Arc::new(Bus { refuse: Some(refused), ..Bus::default() });
        assert!(handle(&relay(bus), head_first).await.is_err());
    }

    #[tokio::test]
    async fn a_lasting_refusal_names_the_first_record_not_out_and_nothing_of_its_order_overtakes_it() {
        let event = fixture(include_str!("../../../events/stream-order-lifecycle.json"));
        // The second order's reservation is refused for ever.
        let second_order_reserved = event.records[8].clone();
        let refused = announcements(&second_order_reserved).unwrap().remove(0).event_id;
        assert!(refused.starts_with("StockReserved:"), "{refused}");
        let bus = Arc::new(Bus { refuse: Some(refused.clone()), ..Bus::default() });
        let response = handle(&relay(bus.clone()), event).await.unwrap();
        let failures: Vec<Option<String>> =
            response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(failures, std::slice::from_ref(&second_order_reserved.change.sequence_number));
        let out = published(&bus);
        assert_eq!(out.iter().filter(|id| **id == refused).count(), 2, "tried, then retried once");
        let entity = refused.split(':').nth(1).unwrap();
        let later = out
            .iter()
            .filter(|id| id.contains(entity) && !id.starts_with("StockReserved") && !id.starts_with("OrderReceived"));
        assert_eq!(later.count(), 0, "the order's cancellation waits for its reservation");
    }
}
