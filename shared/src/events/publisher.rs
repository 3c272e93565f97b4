//! The port the event relay publishes through, and its EventBridge adapter. Only the relay
//! publishes: every other function's state change reaches the bus through the table's stream.

use super::{Announcement, SOURCE};
use std::future::Future;
use std::pin::Pin;
use thiserror::Error;

#[derive(Debug, Clone, Error)]
#[error("publishing {event_id} failed: {reason}")]
pub struct PublishError {
    pub event_id: String,
    pub reason: String,
}

pub type PublishAllFuture<'a> = Pin<Box<dyn Future<Output = Vec<Result<(), PublishError>>> + Send + 'a>>;

/// Where events go. One result per announcement, in order: a bus may take some entries of a
/// call and refuse others, and the caller retries exactly the refused ones.
pub trait EventPublisher: Send + Sync {
    fn publish_all<'a>(&'a self, announcements: &'a [Announcement]) -> PublishAllFuture<'a>;
}

/// Publishes to one EventBridge bus, at most [`EventBridgePublisher::MAX_ENTRIES`] per call.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgePublisher {
    /// PutEvents takes at most this many entries per call.
    pub const MAX_ENTRIES: usize = 10;

    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }

    async fn put_chunk(&self, announcements: &[Announcement]) -> Vec<Result<(), PublishError>> {
        let entries = announcements.iter().map(|a| {
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus_name)
                .source(SOURCE)
                .detail_type(a.detail_type())
                .detail(a.detail_json())
                .build()
        });
        let fail = |a: &Announcement, reason: String| Err(PublishError { event_id: a.event_id.clone(), reason });
        match self.client.put_events().set_entries(Some(entries.collect())).send().await {
            Err(err) => {
                let reason = aws_sdk_eventbridge::error::DisplayErrorContext(err).to_string();
                announcements.iter().map(|a| fail(a, reason.clone())).collect()
            }
            // Entries come back in request order; a refused one carries an error code.
            Ok(output) => announcements
                .iter()
                .enumerate()
                .map(|(i, a)| match output.entries().get(i) {
                    Some(entry) if entry.error_code().is_none() => Ok(()),
                    Some(entry) => fail(a, format!("entry refused: {}", entry.error_code().unwrap_or_default())),
                    None => fail(a, "no result for entry".into()),
                })
                .collect(),
        }
    }
}

impl EventPublisher for EventBridgePublisher {
    fn publish_all<'a>(&'a self, announcements: &'a [Announcement]) -> PublishAllFuture<'a> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(announcements.len());
            for chunk in announcements.chunks(Self::MAX_ENTRIES) {
                results.extend(self.put_chunk(chunk).await);
            }
            results
        })
    }
}
