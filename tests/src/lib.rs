//! Orderflow's test harness and local stack: emulators started on loopback, the deployment
//! template provisioned on them, the functions' handlers wired to their triggers.
//!
//! - [`emulators`]: Dynoxide and LocalStack, started and stopped by whoever needs them.
//! - [`translate`]: `infra/template.yaml` through SAM's own translator, and LocalStack's share.
//! - [`deploy`]: that share deployed by LocalStack's CloudFormation, the table on Dynoxide.
//! - [`template`]: the functions and triggers the template declares, for the local runner.
//! - [`Stack`]: one deployed stack with clients, handler dependencies and helpers for tests.
//! - [`local`]: the HTTP API gateway, SQS pollers and schedules of the local stack.
//! - [`apigw`]: API Gateway HTTP API (v2) events, built the way API Gateway would.
//! - [`calls`]: counts AWS calls per operation, for the benchmarks.

pub mod apigw;
pub mod calls;
pub mod deploy;
pub mod emulators;
pub mod fixtures;
pub mod local;
pub mod notifier;
pub mod rates;
pub mod template;
pub mod translate;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use orderflow::clock::{Clock, ManualClock, SystemClock};
use orderflow::config::Config;
use orderflow::domain::{Sku, Warehouse, WarehouseId};
use orderflow::handlers::hold_expiry::{ExpiryDeps, ExpirySettings};
use orderflow::handlers::order_intake::{IntakeDeps, IntakeSettings};
use orderflow::handlers::payment_processor::{ProcessorDeps, ProcessorSettings};
use orderflow::handlers::payment_webhook::{WebhookDeps, WebhookSettings};
use orderflow::handlers::staff_api::StaffDeps;
use orderflow::handlers::stock_reservation::{ReservationDeps, ReservationSettings};
use orderflow::handlers::Common;
use orderflow::store::{StockItem, Store};
use serde::Deserialize;
use std::sync::Arc;
use time::OffsetDateTime;

pub use deploy::Provisioned;
pub use emulators::{Dynoxide, LocalStack};
pub use template::Functions;

/// Warehouses and stock to start from, as in `infra/local-seed.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Seed {
    pub warehouses: Vec<Warehouse>,
    pub stock: Vec<SeedStock>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SeedStock {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    pub available: i64,
}

impl Seed {
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

pub struct StackOptions {
    pub localstack_endpoint: String,
    pub dynamodb_port: Option<u16>,
    /// The CloudFormation stack's name; physical names derive from it, so stacks can share one
    /// LocalStack.
    pub stack_name: String,
    pub clock: Arc<dyn Clock>,
    pub calls: Option<calls::CallCounter>,
}

/// One deployed stack: a fresh Dynoxide with the table, and a fresh CloudFormation stack of
/// queues, bus and rules in LocalStack.
pub struct Stack {
    _dynamodb_server: Dynoxide,
    pub dynamodb_endpoint: String,
    pub localstack_endpoint: String,
    pub functions: Functions,
    pub provisioned: Provisioned,
    pub config: Config,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub clock: Arc<dyn Clock>,
    /// Messages to customers (verification codes), kept so the local stack can show them.
    pub notifier: Arc<notifier::LocalNotifier>,
}

impl Stack {
    pub async fn start(options: StackOptions) -> Result<Self, String> {
        let server = Dynoxide::start(options.dynamodb_port).await.map_err(|e| format!("dynoxide: {e}"))?;
        let dynamo_config = emulators::sdk_config(&server.endpoint).await;
        let localstack_config = emulators::sdk_config(&options.localstack_endpoint).await;
        let mut dynamo_builder = aws_sdk_dynamodb::config::Builder::from(&dynamo_config);
        let mut events_builder = aws_sdk_eventbridge::config::Builder::from(&localstack_config);
        if let Some(counter) = &options.calls {
            dynamo_builder = dynamo_builder.interceptor(counter.clone());
            events_builder = events_builder.interceptor(counter.clone());
        }
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(dynamo_builder.build());
        let eventbridge = aws_sdk_eventbridge::Client::from_conf(events_builder.build());
        let sqs = aws_sdk_sqs::Client::new(&localstack_config);
        let cloudformation = aws_sdk_cloudformation::Client::new(&localstack_config);
        let functions = Functions::from_repo().map_err(|e| e.to_string())?;
        let clients = deploy::Clients { cloudformation: &cloudformation, sqs: &sqs, dynamodb: &dynamodb };
        let provisioned = deploy::deploy(&options.stack_name, clients).await.map_err(|e| e.to_string())?;
        let config = Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some(provisioned.table_name.clone()),
            "EVENT_BUS_NAME" => Some(provisioned.bus_name.clone()),
            other => std::env::var(other).ok(),
        })
        .map_err(|e| e.to_string())?;
        Ok(Self {
            dynamodb_endpoint: server.endpoint.clone(),
            _dynamodb_server: server,
            localstack_endpoint: options.localstack_endpoint,
            functions,
            provisioned,
            config,
            dynamodb,
            sqs,
            eventbridge,
            clock: options.clock,
            notifier: Arc::new(notifier::LocalNotifier::default()),
        })
    }

    /// A stack for one test: its own CloudFormation stack in the test binary's shared LocalStack,
    /// its own Dynoxide, a manual clock.
    pub async fn for_test() -> (Self, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc().replace_nanosecond(0).expect("valid")));
        let options = StackOptions {
            localstack_endpoint: emulators::shared_localstack().endpoint.clone(),
            dynamodb_port: None,
            stack_name: format!("t{}", ulid::Ulid::new().to_string().to_lowercase()),
            clock: clock.clone(),
            calls: None,
        };
        (Self::start(options).await.expect("test stack starts"), clock)
    }

    /// A stack on the wall clock, for the local stack and benchmarks.
    pub fn system_clock() -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }

    /// A benchmark's stack: wall clock, AWS calls counted by `calls`.
    pub async fn for_benchmark(localstack_endpoint: &str, calls: &calls::CallCounter) -> Result<Self, String> {
        Self::start(StackOptions {
            localstack_endpoint: localstack_endpoint.to_owned(),
            dynamodb_port: None,
            stack_name: format!("bench{}", ulid::Ulid::new().to_string().to_lowercase()),
            clock: Self::system_clock(),
            calls: Some(calls.clone()),
        })
        .await
    }

    pub fn common(&self) -> Common {
        Common::new(self.dynamodb.clone(), self.eventbridge.clone(), &self.config, self.clock.clone())
    }

    pub fn store(&self) -> Store {
        self.common().store
    }

    pub fn intake(&self) -> IntakeDeps {
        IntakeDeps::new(self.common(), IntakeSettings::default(), self.notifier.clone())
    }

    pub fn reservation(&self) -> ReservationDeps {
        ReservationDeps::new(self.common(), ReservationSettings::from_config(&self.config))
    }

    pub fn staff(&self) -> StaffDeps {
        StaffDeps::new(self.common(), &self.config)
    }

    /// The local stack's webhook signing secret: `LOCAL_PAYMENT_WEBHOOK_SECRET`, or a fixed
    /// development value. The mock provider signs with it.
    pub fn webhook_secret() -> String {
        std::env::var("LOCAL_PAYMENT_WEBHOOK_SECRET").unwrap_or_else(|_| "local-development-webhook-secret".to_owned())
    }

    pub fn payment_webhook(&self) -> WebhookDeps {
        let settings = WebhookSettings::from_lookup(|name| match name {
            "PAYMENT_WEBHOOK_SECRETS" => Some(Self::webhook_secret()),
            "PAYMENT_QUEUE_URL" => Some(self.provisioned.queue_url("PaymentEventsQueue").to_owned()),
            _ => None,
        })
        .expect("webhook settings are complete");
        WebhookDeps { common: self.common(), sqs: self.sqs.clone(), settings }
    }

    pub fn payment_processor(&self) -> ProcessorDeps {
        ProcessorDeps { common: self.common(), settings: ProcessorSettings::default() }
    }

    pub fn expiry(&self) -> ExpiryDeps {
        ExpiryDeps { common: self.common(), settings: ExpirySettings::default() }
    }

    pub async fn seed(&self, seed: &Seed) -> Result<(), String> {
        let store = self.store();
        for warehouse in &seed.warehouses {
            store.put_warehouse(warehouse).await.map_err(|e| e.to_string())?;
        }
        let now = self.clock.now();
        for stock in &seed.stock {
            store
                .set_available(&stock.sku, &stock.warehouse_id, stock.available, now)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    pub async fn stock(&self, sku: &str, warehouse: &str) -> StockItem {
        let sku = Sku::parse(sku).expect("valid sku");
        self.store()
            .stock_of(&sku)
            .await
            .expect("stock read")
            .into_iter()
            .find(|s| s.warehouse_id.as_str() == warehouse)
            .unwrap_or_else(|| panic!("no stock for {sku} in {warehouse}"))
    }

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
