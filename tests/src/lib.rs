//! Orderflow's test harness and local stack: emulators started on loopback, the deployment
//! template provisioned on them, the functions' handlers wired to their triggers.
//!
//! - [`emulators`]: Dynoxide and LocalStack, started and stopped by whoever needs them.
//! - [`translate`]: `infra/template.yaml` through SAM's own translator, and LocalStack's share.
//! - [`deploy`]: that share deployed by LocalStack's CloudFormation, the table on Dynoxide.
//! - [`template`]: the functions and triggers the template declares, for the local runner.
//! - [`Stack`]: one deployed stack with clients and helpers for tests; [`deps`]: each
//!   function's handler dependencies on it.
//! - [`stream`]: the table stream's event source mapping, as Lambda runs it.
//! - [`outbox`]: the event relay run over the stream, and a subscriber that sees the bus.
//! - [`contracts`]: the events' JSON Schemas (docs/events), checked on every event published.
//! - [`queues`]: receiving and acknowledging queue messages as the SQS event source does.
//! - [`local`]: the HTTP API gateway, SQS pollers, stream mapping and schedules of the local stack.
//! - [`apigw`]: API Gateway HTTP API (v2) events, built the way API Gateway would.
//! - [`auth`]: the local token issuer and the JWT check API Gateway's authorizer makes.
//! - [`browser`]: a page in headless Chromium, driven over Playwright.
//! - [`calls`]: counts AWS calls per operation, for the benchmarks.
//! - [`cli`]: the benchmarks' command-line options.
//! - [`bulk`]: many orders made straight through the store, for the benchmarks.
//! - [`journeys`]: whole journeys over the local stack's HTTP API (order, pay, ship, deliver, return).
//! - [`warehouse`]: paid orders made into shipments and taken through the warehouse's API.
//! - [`payments`]: provider events delivered to the webhook, the payment processor run.

// The harness awaits whole order paths (intake to delivery): deeper async nesting than the
// default limit allows when a fresh build computes their layouts.
#![recursion_limit = "256"]

pub mod after_sales;
pub mod apigw;
pub mod auth;
pub mod browser;
pub mod bulk;
pub mod calls;
pub mod cli;
pub mod contracts;
pub mod courier;
pub mod deploy;
pub mod deps;
pub mod emulators;
pub mod fixtures;
pub mod journeys;
pub mod local;
pub mod notifier;
pub mod outbox;
pub mod parcels;
pub mod payments;
pub mod provider;
pub mod queues;
pub mod rates;
pub mod stream;
pub mod template;
pub mod translate;
pub mod warehouse;

use orderflow::clock::{Clock, ManualClock, SystemClock};
use orderflow::config::Config;
use orderflow::domain::{CatalogueItem, CustomerProfile, Sku, Warehouse, WarehouseId};
use orderflow::handlers::fulfilment::FulfilmentDeps;
use orderflow::handlers::Common;
use orderflow::store::{StockItem, Store};
use serde::Deserialize;
use std::sync::Arc;
use time::OffsetDateTime;

pub use deploy::Provisioned;
pub use emulators::{Dynoxide, LocalStack};
pub use template::Functions;

/// Warehouses, stock, the catalogue and customer profiles to start from, as in
/// `infra/local-seed.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Seed {
    pub warehouses: Vec<Warehouse>,
    pub stock: Vec<SeedStock>,
    #[serde(default)]
    pub catalogue: Vec<CatalogueItem>,
    #[serde(default)]
    pub customers: Vec<CustomerProfile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SeedStock {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    pub available: i64,
    #[serde(default)]
    pub bin: Option<String>,
}

impl Seed {
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The seed with a catalogue item at `price_minor` CNY for every stocked SKU it does not
    /// price yet (and for `also`, SKUs a test orders without stocking them).
    pub fn priced_at(mut self, price_minor: i64, also: &[&str]) -> Self {
        let stocked = self.stock.iter().map(|s| s.sku.clone());
        let extra = also.iter().map(|sku| Sku::parse(sku).expect("valid sku"));
        for sku in stocked.chain(extra).collect::<Vec<_>>() {
            if !self.catalogue.iter().any(|item| item.sku == sku) {
                self.catalogue.push(fixtures::catalogue_item(sku.as_str(), price_minor));
            }
        }
        self
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
type SealersByFunction = std::collections::HashMap<(&'static str, &'static str), Arc<orderflow::personal::Sealer>>;

pub struct Stack {
    _dynamodb_server: Dynoxide,
    pub dynamodb_endpoint: String,
    pub localstack_endpoint: String,
    pub functions: Functions,
    pub provisioned: Provisioned,
    pub config: Config,
    /// The harness's own clients (not counted as any function's calls).
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    dynamodb_config: aws_config::SdkConfig,
    localstack_config: aws_config::SdkConfig,
    calls: Option<calls::CallCounter>,
    pub clock: Arc<dyn Clock>,
    /// Messages to customers (verification codes), kept so the local stack can show them.
    pub notifier: Arc<notifier::LocalNotifier>,
    /// The courier that books waybills for fulfilment.
    pub courier: Arc<courier::MockCourier>,
    /// The payment provider refunds are paid through.
    pub provider: Arc<provider::MockProvider>,
    /// One fulfilment-api instance, warm across requests as a Lambda instance is (its policy
    /// cached), made at its first request.
    fulfilment_api: std::sync::OnceLock<FulfilmentDeps>,
    /// Where the event relay's mapping has read the table's stream to (see [`outbox`]).
    relay_mapping: tokio::sync::Mutex<Option<stream::StreamMapping>>,
    /// Events the relay published that their schema in docs/events refuses (see [`contracts`]).
    event_violations: Arc<std::sync::Mutex<Vec<String>>>,
    sealers: std::sync::Mutex<SealersByFunction>,
    fingerprint_keys:
        std::sync::Mutex<std::collections::HashMap<&'static str, Arc<orderflow::personal::FingerprintKey>>>,
}

impl Stack {
    pub async fn start(options: StackOptions) -> Result<Self, String> {
        let server = Dynoxide::start(options.dynamodb_port).await.map_err(|e| format!("dynoxide: {e}"))?;
        let dynamodb_config = emulators::sdk_config(&server.endpoint).await;
        let localstack_config = emulators::sdk_config(&options.localstack_endpoint).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&dynamodb_config);
        let eventbridge = aws_sdk_eventbridge::Client::new(&localstack_config);
        let sqs = aws_sdk_sqs::Client::new(&localstack_config);
        let cloudformation = aws_sdk_cloudformation::Client::new(&localstack_config);
        let functions = Functions::from_repo().map_err(|e| e.to_string())?;
        let clients = deploy::Clients { cloudformation: &cloudformation, sqs: &sqs, dynamodb: &dynamodb };
        let provisioned = deploy::deploy(&options.stack_name, clients).await.map_err(|e| e.to_string())?;
        let config = Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some(provisioned.table_name.clone()),
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
            dynamodb_config,
            localstack_config,
            calls: options.calls,
            clock: options.clock,
            notifier: Arc::new(notifier::LocalNotifier::default()),
            courier: Arc::new(courier::MockCourier::default()),
            provider: Arc::new(provider::MockProvider::default()),
            fulfilment_api: std::sync::OnceLock::new(),
            relay_mapping: tokio::sync::Mutex::new(None),
            event_violations: Arc::default(),
            sealers: std::sync::Mutex::new(std::collections::HashMap::new()),
            fingerprint_keys: std::sync::Mutex::new(std::collections::HashMap::new()),
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

    /// As [`Stack::for_test`], with every function's AWS calls counted.
    pub async fn for_test_counting_calls() -> (Self, Arc<ManualClock>, calls::CallCounter) {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc().replace_nanosecond(0).expect("valid")));
        let calls = calls::CallCounter::default();
        let options = StackOptions {
            localstack_endpoint: emulators::shared_localstack().endpoint.clone(),
            dynamodb_port: None,
            stack_name: format!("t{}", ulid::Ulid::new().to_string().to_lowercase()),
            clock: clock.clone(),
            calls: Some(calls.clone()),
        };
        (Self::start(options).await.expect("test stack starts"), clock, calls)
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

    /// A DynamoDB client as `function` would have: its calls counted under its name when the
    /// stack counts calls.
    pub fn dynamodb_for(&self, function: &'static str) -> aws_sdk_dynamodb::Client {
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&self.dynamodb_config);
        if let Some(counter) = &self.calls {
            builder = builder.interceptor(counter.for_function(function));
        }
        aws_sdk_dynamodb::Client::from_conf(builder.build())
    }

    /// An EventBridge client as `function` would have, counted like [`Stack::dynamodb_for`].
    pub fn eventbridge_for(&self, function: &'static str) -> aws_sdk_eventbridge::Client {
        let mut builder = aws_sdk_eventbridge::config::Builder::from(&self.localstack_config);
        if let Some(counter) = &self.calls {
            builder = builder.interceptor(counter.for_function(function));
        }
        aws_sdk_eventbridge::Client::from_conf(builder.build())
    }

    /// The personal-data sealer as `function` has it: one per function, kept warm as a Lambda
    /// instance keeps it, on LocalStack's KMS with the template's key, its calls counted under
    /// the function's name.
    pub fn sealer_for(&self, function: &'static str) -> Arc<orderflow::personal::Sealer> {
        self.sealer_of(function, orderflow::personal::Purpose::PersonalData)
    }

    /// A sealer for `purpose`, as [`Stack::sealer_for`] (one per function and purpose).
    pub fn sealer_of(
        &self,
        function: &'static str,
        purpose: orderflow::personal::Purpose,
    ) -> Arc<orderflow::personal::Sealer> {
        use orderflow::personal::{KeyCacheLimits, Sealer};
        let mut sealers = self.sealers.lock().expect("sealers lock");
        let sealer = sealers.entry((function, purpose.name())).or_insert_with(|| {
            Arc::new(Sealer::new(Arc::new(self.vault_for(function, purpose)), KeyCacheLimits::default()))
        });
        sealer.clone()
    }

    /// The table and clock as `function` gets them.
    pub fn common_for(&self, function: &'static str) -> Common {
        Common::new(self.dynamodb_for(function), &self.config, self.clock.clone())
    }

    /// The table through the harness's own client.
    pub fn store(&self) -> Store {
        Common::new(self.dynamodb.clone(), &self.config, self.clock.clone()).store
    }

    /// The personal-data keys as `function` holds them: its sealer and its fingerprint key, each
    /// kept warm for the stack's life as a Lambda instance keeps them.
    pub fn personal_keys_for(&self, function: &'static str) -> orderflow::personal::PersonalKeys {
        use orderflow::personal::{FingerprintKey, PersonalKeys, Purpose};
        let mut keys = self.fingerprint_keys.lock().expect("fingerprint keys lock");
        let fingerprints = keys
            .entry(function)
            .or_insert_with(|| Arc::new(FingerprintKey::new(Arc::new(self.vault_for(function, Purpose::Fingerprint)))))
            .clone();
        PersonalKeys { sealer: self.sealer_for(function), fingerprints }
    }

    /// A KMS vault for `purpose` under the template's key, its calls counted under `function`.
    pub fn vault_for(
        &self,
        function: &'static str,
        purpose: orderflow::personal::Purpose,
    ) -> orderflow::personal::KmsVault {
        let kms = orderflow::aws::json_service::JsonService::kms(&self.localstack_config).expect("LocalStack's KMS");
        let kms = kms.observed(self.calls_hook(function, "KMS"));
        let key = self.provisioned.keys.get("PersonalDataKey").expect("the template's personal data key");
        orderflow::personal::KmsVault::new(kms, key.clone(), purpose)
    }

    /// LocalStack's SQS as `function` calls it (orderflow's own JSON-protocol client), its calls
    /// counted like [`Stack::dynamodb_for`].
    pub fn sqs_for(&self, function: &'static str) -> orderflow::aws::json_service::JsonService {
        let sqs = orderflow::aws::json_service::JsonService::sqs(&self.localstack_config).expect("LocalStack's SQS");
        sqs.observed(self.calls_hook(function, "SQS"))
    }

    /// The template's bucket `logical_id` on LocalStack's S3 as `function` would have it (path
    /// style under the endpoint override), its calls counted like [`Stack::dynamodb_for`].
    pub fn bucket_for(&self, function: &'static str, logical_id: &str) -> orderflow::aws::s3::S3Bucket {
        let name = self.provisioned.buckets.get(logical_id).unwrap_or_else(|| panic!("the template's {logical_id}"));
        let bucket = orderflow::aws::s3::S3Bucket::from_config(&self.localstack_config, name).expect("LocalStack's S3");
        bucket.observed(self.calls_hook(function, "S3"))
    }

    /// The hook a non-SDK client (S3, KMS, SQS) reports its calls to: counted under `function`
    /// as `<service>.<Operation>` when this stack counts calls, ignored when it does not.
    fn calls_hook(&self, function: &'static str, service: &'static str) -> orderflow::aws::signing::CallHook {
        match &self.calls {
            Some(counter) => counter.hook_for(function, service),
            None => std::sync::Arc::new(|_| {}),
        }
    }

    pub async fn seed(&self, seed: &Seed) -> Result<(), String> {
        let store = self.store();
        for warehouse in &seed.warehouses {
            store.save_warehouse(warehouse, "seed", self.clock.now()).await.map_err(|e| e.to_string())?;
        }
        let now = self.clock.now();
        for stock in &seed.stock {
            let change = orderflow::store::StockChange { actor: "seed", reason: None, now };
            store
                .set_available(&stock.sku, &stock.warehouse_id, stock.available, stock.bin.as_deref(), change)
                .await
                .map_err(|e| e.to_string())?;
        }
        for item in &seed.catalogue {
            store.save_catalogue_item(item, "seed", now).await.map_err(|e| format!("{}: {e}", item.sku))?;
        }
        for profile in &seed.customers {
            store
                .save_customer_profile(profile, "seed", now)
                .await
                .map_err(|e| format!("{}: {e}", profile.customer_id))?;
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
}

#[cfg(test)]
mod seed_tests {
    use super::Seed;

    #[test]
    fn the_local_seed_prices_every_stocked_sku_with_an_item_staff_could_save() {
        let seed = Seed::load(&crate::emulators::repo_root().join("infra/local-seed.json")).unwrap();
        for stock in &seed.stock {
            let item = seed.catalogue.iter().find(|item| item.sku == stock.sku);
            let item = item.unwrap_or_else(|| panic!("{} is stocked but not in the catalogue", stock.sku));
            item.validate().unwrap_or_else(|e| panic!("{}: {e:?}", item.sku));
        }
        assert!(seed.customers.iter().any(|c| c.tier.is_some()), "the demo has a ranked customer");
    }
}
