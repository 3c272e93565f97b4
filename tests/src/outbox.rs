//! The outbox at work in the tests and benchmarks: the event relay run over the table's stream
//! as Lambda's event source mapping runs it ([`crate::stream`]), with the template's settings,
//! and a subscriber that sees every event published on the stack's bus.

use crate::contracts::ConformingPublisher;
use crate::stream::{PollReport, StreamMapping, TableStreamTrigger};
use crate::template::Trigger;
use crate::Stack;
use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use orderflow::events::EventBridgePublisher;
use orderflow::handlers::event_relay::{self, RelayDeps, RelaySettings};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Invoke the relay as Lambda would: an error or a panic is a function error, not the caller's.
pub async fn invoke_relay(deps: RelayDeps, event: DynamoDbEvent) -> Result<DynamoDbEventResponse, String> {
    match tokio::spawn(async move { event_relay::handle(&deps, event).await }).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(crashed) => Err(format!("relay crashed: {crashed}")),
    }
}

impl Stack {
    /// The relay as deployed: publishing to this stack's bus (each event checked against its
    /// schema on the way, see [`crate::contracts`]).
    pub fn relay_deps(&self) -> RelayDeps {
        RelayDeps { publisher: self.conforming_publisher(), settings: RelaySettings::default() }
    }

    fn conforming_publisher(&self) -> Arc<ConformingPublisher> {
        let publisher = EventBridgePublisher::new(self.eventbridge_for("event-relay"), &self.provisioned.bus_name);
        Arc::new(ConformingPublisher { inner: Arc::new(publisher), violations: self.event_violations.clone() })
    }

    /// Fail the test if anything published so far broke its schema.
    fn assert_events_conform(&self) {
        let violations = std::mem::take(&mut *self.event_violations.lock().expect("not poisoned"));
        assert!(violations.is_empty(), "events that break their schema in docs/events:\n{}", violations.join("\n"));
    }

    /// The relay's stream trigger from the template, its on-failure queue resolved to a URL.
    pub fn relay_trigger(&self) -> TableStreamTrigger {
        let trigger = self
            .functions
            .functions
            .iter()
            .find(|f| f.binary == "event-relay")
            .and_then(|f| {
                f.triggers.iter().find_map(|t| match t {
                    Trigger::TableStream(stream) => Some(stream.clone()),
                    _ => None,
                })
            })
            .expect("the template's event-relay reads the table stream");
        let on_failure_queue =
            trigger.on_failure_queue.as_deref().map(|queue| self.provisioned.queue_url(queue).to_owned());
        TableStreamTrigger { on_failure_queue, ..trigger }
    }

    /// Publish `announcements` on the stack's bus through the relay's own publisher, as if the
    /// table's stream had carried them.
    pub async fn publish_as_relay(&self, announcements: &[orderflow::events::Announcement]) {
        use orderflow::events::EventPublisher;
        let publisher = self.conforming_publisher();
        for chunk in announcements.chunks(EventBridgePublisher::MAX_ENTRIES) {
            for outcome in publisher.publish_all(chunk).await {
                outcome.expect("published");
            }
        }
        self.assert_events_conform();
    }

    /// A mapping of the relay to this stack's table stream, from its start.
    pub async fn relay_mapping(&self) -> Result<StreamMapping, String> {
        let streams = aws_sdk_dynamodbstreams::Client::new(&self.dynamodb_config);
        StreamMapping::connect(streams, self.sqs.clone(), &self.config.table_name, self.relay_trigger()).await
    }

    /// Relay every change not relayed yet, as the event source mapping would (without waiting out
    /// its batching window); what the mapping did.
    pub async fn relay(&self) -> PollReport {
        self.relay_with(&self.relay_deps()).await
    }

    /// As [`Stack::relay`], with other relay dependencies (a failing publisher, say). The stack
    /// keeps one position in the stream across calls, as the event source mapping does.
    pub async fn relay_with(&self, deps: &RelayDeps) -> PollReport {
        let mut slot = self.relay_mapping.lock().await;
        if slot.is_none() {
            *slot = Some(self.relay_mapping().await.expect("the relay's mapping connects"));
        }
        let mapping = slot.as_mut().expect("connected above");
        let report = mapping.drain(|event| invoke_relay(deps.clone(), event)).await.expect("the stream reads");
        self.assert_events_conform();
        report
    }

    /// One poll of the relay's mapping with these dependencies: a single invocation (and its
    /// consequence for the mapping's position), as when an invocation dies half-way.
    pub async fn relay_once_with(&self, deps: &RelayDeps) -> PollReport {
        let mut slot = self.relay_mapping.lock().await;
        if slot.is_none() {
            *slot = Some(self.relay_mapping().await.expect("the relay's mapping connects"));
        }
        let mapping = slot.as_mut().expect("connected above");
        let report = mapping.poll(false, |event| invoke_relay(deps.clone(), event)).await.expect("the stream reads");
        self.assert_events_conform();
        report
    }

    /// A subscriber to everything on this stack's bus: its own queue and a catch-all rule.
    pub async fn observe_bus(&self) -> BusObserver {
        let name = format!("{}-observer", self.provisioned.stack_name);
        let queue_url =
            self.sqs.create_queue().queue_name(&name).send().await.expect("observer queue").queue_url.expect("url");
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("observer queue arn")
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("arn");
        let bus = &self.provisioned.bus_name;
        let pattern = serde_json::json!({ "source": [orderflow::events::SOURCE] }).to_string();
        self.eventbridge.put_rule().name(&name).event_bus_name(bus).event_pattern(pattern).send().await.expect("rule");
        let target = aws_sdk_eventbridge::types::Target::builder().id("observer").arn(arn).build().expect("target");
        self.eventbridge.put_targets().rule(&name).event_bus_name(bus).targets(target).send().await.expect("target");
        BusObserver { sqs: self.sqs.clone(), queue_url }
    }
}

/// Everything published on a stack's bus, as the EventBridge envelopes its rule delivered.
pub struct BusObserver {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl BusObserver {
    /// Every event that arrives until none has for `quiet`, acknowledged.
    pub async fn events_until_quiet(&self, quiet: Duration) -> Vec<Value> {
        let mut events = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let messages = batch.messages.unwrap_or_default();
            if messages.is_empty() {
                continue;
            }
            last = Instant::now();
            for message in &messages {
                events.push(serde_json::from_str(message.body().unwrap_or("null")).expect("an EventBridge envelope"));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        events
    }

    /// Every event published so far (a rule delivers asynchronously: waits for a quiet second).
    pub async fn events(&self) -> Vec<Value> {
        self.events_until_quiet(Duration::from_secs(1)).await
    }

    /// At least `count` events, waiting up to 20 s for them, and whatever else comes with them.
    pub async fn at_least(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut events = Vec::new();
        while events.len() < count && Instant::now() < deadline {
            events.extend(self.events_until_quiet(Duration::from_millis(500)).await);
        }
        events.extend(self.events().await);
        events
    }
}

/// `detail-type` of each envelope, in arrival order.
pub fn detail_types(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["detail-type"].as_str().unwrap_or_default().to_owned()).collect()
}
