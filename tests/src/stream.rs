//! Lambda's DynamoDB-stream event source mapping, as the local stack and the tests run it: read
//! the table's stream from Dynoxide (ListStreams, DescribeStream, GetShardIterator, GetRecords),
//! hand the function `DynamoDbEvent` batches, honour its `batchItemFailures` (checkpoint before
//! the failed record, retry from it), retry a batch the function failed on as a whole (halving
//! it first when asked to bisect on function errors), send the batch's description to the
//! on-failure destination once the retries are spent and move on, as Lambda documents for
//! DynamoDB streams. The settings come from the
//! template's `DynamoDB` event ([`crate::template::Trigger::TableStream`]). Retries follow each
//! other at once: the emulation has no backoff, so tests need not wait.

use aws_lambda_events::event::dynamodb::{Event as DynamoDbEvent, EventRecord, StreamRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use std::future::Future;
use std::time::{Duration, Instant};

/// A `DynamoDB` event of the template: how its mapping batches, retries and gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStreamTrigger {
    pub batch_size: i32,
    /// How long to gather records before invoking with a batch that is not full.
    pub batching_window: Duration,
    pub max_retries: u32,
    pub bisect_on_error: bool,
    /// The on-failure destination: a queue, by its logical id in the template, or its URL once
    /// deployed.
    pub on_failure_queue: Option<String>,
}

pub type MappingSettings = TableStreamTrigger;

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReport {
    /// Records handed to the function (retries included).
    pub delivered: usize,
    /// Records checkpointed past (processed, or given up on).
    pub advanced: usize,
    /// Invocations that failed wholly or in part.
    pub failures: usize,
    /// Batches sent to the on-failure destination.
    pub sent_to_destination: usize,
}

impl std::ops::AddAssign for PollReport {
    fn add_assign(&mut self, other: Self) {
        self.delivered += other.delivered;
        self.advanced += other.advanced;
        self.failures += other.failures;
        self.sent_to_destination += other.sent_to_destination;
    }
}

/// One mapping from one table's stream (Dynoxide keeps one shard per table) to one function.
pub struct StreamMapping {
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    stream_arn: String,
    shard_id: String,
    settings: MappingSettings,
    /// The last sequence number processed; reading resumes after it.
    checkpoint: Option<String>,
    /// Failed invocations of the batch at the checkpoint so far.
    attempts: u32,
    /// The batch size for the next invocation (halved after a function error when bisecting).
    limit: i32,
}

fn fail(what: &str) -> impl Fn(String) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl StreamMapping {
    pub async fn connect(
        streams: aws_sdk_dynamodbstreams::Client,
        sqs: aws_sdk_sqs::Client,
        table: &str,
        settings: MappingSettings,
    ) -> Result<Self, String> {
        let listed =
            streams.list_streams().table_name(table).send().await.map_err(|e| fail("ListStreams")(e.to_string()))?;
        let stream_arn = listed
            .streams()
            .first()
            .and_then(|s| s.stream_arn())
            .ok_or_else(|| format!("table {table} has no stream: the template must enable one"))?
            .to_owned();
        let described = streams
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await
            .map_err(|e| fail("DescribeStream")(e.to_string()))?;
        let shard_id = described
            .stream_description()
            .and_then(|d| d.shards().first())
            .and_then(|s| s.shard_id())
            .ok_or("the stream has no shard")?
            .to_owned();
        let limit = settings.batch_size.max(1);
        Ok(Self { streams, sqs, stream_arn, shard_id, settings, checkpoint: None, attempts: 0, limit })
    }

    /// Up to `limit` records after the checkpoint, from a fresh iterator.
    async fn read(&self, after: Option<&str>, limit: i32) -> Result<Vec<Record>, String> {
        let mut request = self.streams.get_shard_iterator().stream_arn(&self.stream_arn).shard_id(&self.shard_id);
        request = match after {
            Some(sequence) => {
                request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(sequence)
            }
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let iterator = request.send().await.map_err(|e| fail("GetShardIterator")(e.to_string()))?.shard_iterator;
        let Some(iterator) = iterator else { return Ok(Vec::new()) };
        let records = self
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(|e| fail("GetRecords")(e.to_string()))?;
        Ok(records.records.unwrap_or_default())
    }

    /// A batch: what is there, gathered for up to the batching window while it is not full.
    async fn gather(&self, window: Duration) -> Result<Vec<Record>, String> {
        let mut batch = self.read(self.checkpoint.as_deref(), self.limit).await?;
        let started = Instant::now();
        while !batch.is_empty() && (batch.len() as i32) < self.limit && started.elapsed() < window {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let after = batch.last().and_then(|r| r.dynamodb()?.sequence_number()).map(str::to_owned);
            let more = self.read(after.as_deref(), self.limit - batch.len() as i32).await?;
            batch.extend(more);
        }
        Ok(batch)
    }

    /// One poll: gather a batch (waiting up to the template's batching window, or not at all
    /// when `wait` is false), invoke, and apply the answer. An empty report when nothing is new.
    pub async fn poll<F, Fut>(&mut self, wait: bool, invoke: F) -> Result<PollReport, String>
    where
        F: FnOnce(DynamoDbEvent) -> Fut,
        Fut: Future<Output = Result<DynamoDbEventResponse, String>>,
    {
        let window = if wait { self.settings.batching_window } else { Duration::ZERO };
        let batch = self.gather(window).await?;
        if batch.is_empty() {
            return Ok(PollReport::default());
        }
        let mut report = PollReport { delivered: batch.len(), ..PollReport::default() };
        let mut event = DynamoDbEvent::default();
        event.records = batch.iter().map(|r| lambda_record(r, &self.stream_arn)).collect();
        let sequence = |r: &Record| r.dynamodb().and_then(|d| d.sequence_number()).map(str::to_owned);
        // Where the failed part starts: an index into the batch; `None` when all succeeded.
        let failed_from = match invoke(event).await {
            // A failure naming no record of the batch fails it whole.
            Ok(response) => response.batch_item_failures.first().map(|failure| {
                failure
                    .item_identifier
                    .as_deref()
                    .and_then(|id| batch.iter().position(|r| sequence(r).as_deref() == Some(id)))
                    .unwrap_or(0)
            }),
            // A function error: with bisection on, the next try takes half the batch.
            Err(error) => {
                tracing::warn!(%error, "stream batch failed in the function");
                if self.settings.bisect_on_error {
                    self.limit = (batch.len() as i32 / 2).max(1);
                }
                Some(0)
            }
        };
        let Some(failed_from) = failed_from else {
            self.advance(&batch, batch.len(), &mut report);
            self.limit = self.settings.batch_size.max(1);
            return Ok(report);
        };
        report.failures += 1;
        // What came before the failed record is done.
        if failed_from > 0 {
            self.advance(&batch, failed_from, &mut report);
            return Ok(report);
        }
        self.attempts += 1;
        if self.attempts > self.settings.max_retries {
            self.send_to_destination(&batch).await?;
            report.sent_to_destination += 1;
            self.advance(&batch, batch.len(), &mut report);
            self.limit = self.settings.batch_size.max(1);
        }
        Ok(report)
    }

    fn advance(&mut self, batch: &[Record], count: usize, report: &mut PollReport) {
        if let Some(last) = batch[..count].last() {
            self.checkpoint = last.dynamodb().and_then(|d| d.sequence_number()).map(str::to_owned);
        }
        self.attempts = 0;
        report.advanced += count;
    }

    /// What Lambda sends an on-failure destination for a stream batch: its description, not its
    /// records (they stay in the stream for 24 hours).
    async fn send_to_destination(&self, batch: &[Record]) -> Result<(), String> {
        let sequence =
            |r: Option<&Record>| r.and_then(|r| r.dynamodb()?.sequence_number()).unwrap_or_default().to_owned();
        let message = serde_json::json!({
            "requestContext": { "condition": "RetryAttemptsExhausted", "approximateInvokeCount": self.attempts },
            "version": "1.0",
            "timestamp": time::OffsetDateTime::now_utc().unix_timestamp(),
            "DDBStreamBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": sequence(batch.first()),
                "endSequenceNumber": sequence(batch.last()),
                "batchSize": batch.len(),
                "streamArn": self.stream_arn,
            }
        });
        tracing::error!(batch = %message, "stream batch given up on after its retries");
        let Some(queue) = &self.settings.on_failure_queue else { return Ok(()) };
        self.sqs
            .send_message()
            .queue_url(queue)
            .message_body(message.to_string())
            .send()
            .await
            .map_err(|e| fail("SendMessage to the on-failure destination")(e.to_string()))?;
        Ok(())
    }

    /// Poll until the stream has nothing new; the sum of the polls.
    pub async fn drain<F, Fut>(&mut self, invoke: F) -> Result<PollReport, String>
    where
        F: Fn(DynamoDbEvent) -> Fut,
        Fut: Future<Output = Result<DynamoDbEventResponse, String>>,
    {
        let mut total = PollReport::default();
        loop {
            let report = self.poll(false, &invoke).await?;
            if report.delivered == 0 {
                return Ok(total);
            }
            total += report;
        }
    }
}

/// A stream record as Lambda hands it to a function.
fn lambda_record(record: &Record, stream_arn: &str) -> EventRecord {
    let image = |image: Option<&std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        image.cloned().map(serde_dynamo::Item::from).unwrap_or_default()
    };
    let change = record.dynamodb();
    let mut stream_record = StreamRecord::default();
    stream_record.keys = image(change.and_then(|c| c.keys.as_ref()));
    stream_record.new_image = image(change.and_then(|c| c.new_image.as_ref()));
    stream_record.old_image = image(change.and_then(|c| c.old_image.as_ref()));
    stream_record.sequence_number = change.and_then(|c| c.sequence_number()).map(str::to_owned);
    stream_record.size_bytes = change.and_then(|c| c.size_bytes()).unwrap_or(0);
    let mut lambda = EventRecord::default();
    lambda.aws_region = "us-east-1".to_owned();
    lambda.change = stream_record;
    lambda.event_id = record.event_id().unwrap_or_default().to_owned();
    lambda.event_name = record.event_name().map(|n| n.as_str().to_owned()).unwrap_or_default();
    lambda.event_source = Some("aws:dynamodb".to_owned());
    lambda.event_source_arn = Some(stream_arn.to_owned());
    lambda
}
