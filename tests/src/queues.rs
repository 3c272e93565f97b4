//! The test's side of the queues: receive messages as Lambda's SQS event source would hand
//! them to a consumer, wait for the ones a rule delivers asynchronously, acknowledge them.

use crate::Stack;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};

impl Stack {
    /// Messages waiting on a queue (by logical id), as a Lambda SQS event, without deleting
    /// them: the caller acknowledges with [`Stack::delete`] as the Lambda service would.
    pub async fn receive(&self, queue: &str, max: i32, wait_seconds: i32) -> SqsEvent {
        let url = self.provisioned.queue_url(queue);
        let arn = self.provisioned.queue_arns.get(queue).cloned();
        let output = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .expect("receive");
        let mut event = SqsEvent::default();
        event.records =
            output.messages.unwrap_or_default().into_iter().map(|m| to_lambda_message(m, arn.clone())).collect();
        event
    }

    /// Drain a queue: every message on it, acknowledged, until a one-second long poll comes back
    /// empty. LocalStack delivers a rule's events to its queue asynchronously, so a message
    /// published a moment ago may not be receivable yet; the long poll waits for it.
    pub async fn drain(&self, queue: &str) -> Vec<SqsMessage> {
        let mut all = Vec::new();
        loop {
            let batch = self.receive(queue, 10, 1).await;
            if batch.records.is_empty() {
                return all;
            }
            self.delete(queue, &batch.records).await;
            all.extend(batch.records);
        }
    }

    /// Exactly `count` messages from a queue, not yet acknowledged (the caller hands them to a
    /// consumer and deletes them, as the event source would). Waits up to 20 s for them, since
    /// delivery through a rule is asynchronous, then a second more to make sure no extra one
    /// comes; panics if they are fewer or more.
    pub async fn receive_exactly(&self, queue: &str, count: usize) -> SqsEvent {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut event = SqsEvent::default();
        while event.records.len() < count && std::time::Instant::now() < deadline {
            let wanted = (count - event.records.len()).min(10) as i32;
            event.records.extend(self.receive(queue, wanted, 1).await.records);
        }
        assert_eq!(event.records.len(), count, "messages on {queue} within 20 s");
        let extra = self.receive(queue, 10, 1).await;
        assert!(extra.records.is_empty(), "more than {count} messages on {queue}: {:?}", extra.records);
        event
    }

    /// At least `count` messages from a queue (waiting up to 20 s for them), and every other one
    /// that comes until a one-second long poll is empty; not yet acknowledged.
    pub async fn receive_at_least(&self, queue: &str, count: usize) -> SqsEvent {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut event = SqsEvent::default();
        loop {
            let batch = self.receive(queue, 10, 1).await;
            let quiet = batch.records.is_empty();
            event.records.extend(batch.records);
            if quiet && (event.records.len() >= count || std::time::Instant::now() > deadline) {
                break;
            }
        }
        assert!(event.records.len() >= count, "{} of {count} messages on {queue} within 20 s", event.records.len());
        event
    }

    /// Acknowledge messages, ten per DeleteMessageBatch call as the Lambda event source does.
    pub async fn delete(&self, queue: &str, messages: &[SqsMessage]) {
        let url = self.provisioned.queue_url(queue);
        for chunk in messages.chunks(10) {
            let entries = chunk.iter().enumerate().filter_map(|(i, m)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone()?)
                    .build()
                    .ok()
            });
            let entries: Vec<_> = entries.collect();
            if entries.is_empty() {
                continue;
            }
            let output =
                self.sqs.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await.expect("delete");
            assert!(output.failed.is_empty(), "messages not deleted: {:?}", output.failed);
        }
    }
}

/// An SQS API message as Lambda's SQS event source hands it to a function.
pub fn to_lambda_message(message: aws_sdk_sqs::types::Message, queue_arn: Option<String>) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = message.message_id;
    m.receipt_handle = message.receipt_handle;
    m.body = message.body;
    m.md5_of_body = message.md5_of_body;
    m.attributes =
        message.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
    m.event_source = Some("aws:sqs".to_owned());
    m.event_source_arn = queue_arn;
    m.aws_region = Some("us-east-1".to_owned());
    m
}
