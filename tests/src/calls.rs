//! Counts the AWS calls a piece of work makes, per function, service and operation, retries
//! included (each attempt that got an answer), by an SDK interceptor on the clients each function's handler uses.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The key under which the entries of PutEvents calls are counted (not a call).
const EVENTS_SENT: &str = "(entries sent by PutEvents)";

/// Counts keyed `<function> <Service>.<Operation>` (or `<Service>.<Operation>` unlabelled).
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    function: Option<&'static str>,
    stock_writes: Arc<Mutex<BTreeMap<(String, u64), u64>>>,
}

/// Writes asked of one stock item: in all, and in its busiest wall-clock second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemWrites {
    /// `PK/SK` of the item.
    pub item: String,
    pub total: u64,
    pub busiest_second: u64,
}

impl CallCounter {
    /// The same counts, with this interceptor's calls filed under `function`.
    pub fn for_function(&self, function: &'static str) -> Self {
        Self { function: Some(function), ..self.clone() }
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().expect("counter lock").clone()
    }

    /// Every call counted.
    pub fn total(&self) -> u64 {
        self.snapshot().iter().filter(|(k, _)| *k != EVENTS_SENT).map(|(_, v)| v).sum()
    }

    /// Calls made by one function.
    pub fn total_of(&self, function: &str) -> u64 {
        let prefix = format!("{function} ");
        self.snapshot().iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| v).sum()
    }

    /// Entries sent in PutEvents calls (every try of every entry), by anyone.
    pub fn events_sent(&self) -> u64 {
        self.snapshot().get(EVENTS_SENT).copied().unwrap_or(0)
    }

    /// Calls of one operation (`EventBridge.PutEvents`) by anyone.
    pub fn total_of_operation(&self, operation: &str) -> u64 {
        self.snapshot().iter().filter(|(k, _)| k.rsplit(' ').next() == Some(operation)).map(|(_, v)| v).sum()
    }

    /// Calls of each `<function> <Service>.<Operation>` divided by `per` (orders, shipments).
    pub fn per_operation(&self, per: usize) -> Vec<(String, f64)> {
        let per = per as f64;
        self.snapshot().into_iter().filter(|(k, _)| k.contains('.')).map(|(k, v)| (k, v as f64 / per)).collect()
    }

    /// Print the calls per `what` (`per` of them) in all, then by function and operation.
    pub fn print_per(&self, per: usize, what: &str) {
        println!("  AWS calls per {what:<9} {:.2}, by function and operation:", self.total() as f64 / per as f64);
        for (operation, share) in self.per_operation(per) {
            println!("    {operation:<48} {share:.3}");
        }
    }

    /// A hook for a client that is no SDK client (orderflow's S3 bucket, KMS and SQS): each call
    /// it reports is counted as `<function> <service>.<Operation>`, as the interceptor counts.
    pub fn hook_for(&self, function: &'static str, service: &'static str) -> orderflow::aws::signing::CallHook {
        let counter = self.for_function(function);
        Arc::new(move |operation| counter.count_call(format!("{service}.{operation}")))
    }

    /// One call of `operation` (`Service.Operation`), filed under this counter's function.
    fn count_call(&self, operation: String) {
        let name = match self.function {
            Some(function) => format!("{function} {operation}"),
            None => operation,
        };
        *self.counts.lock().expect("counter lock").entry(name).or_default() += 1;
    }

    pub fn reset(&self) {
        self.counts.lock().expect("counter lock").clear();
        self.stock_writes.lock().expect("counter lock").clear();
    }

    /// Writes asked of each stock item (`SKU#…` keys) whose key starts with `prefix`, every
    /// `TransactWriteItems` update, put or delete and every single-item write counted once per
    /// call as sent (a cancelled transaction's writes too: DynamoDB charges them).
    pub fn stock_item_writes(&self, prefix: &str) -> Vec<ItemWrites> {
        let mut by_item: BTreeMap<String, ItemWrites> = BTreeMap::new();
        for ((item, _), count) in self.stock_writes.lock().expect("counter lock").iter() {
            if !item.starts_with(prefix) {
                continue;
            }
            let entry =
                by_item.entry(item.clone()).or_insert(ItemWrites { item: item.clone(), total: 0, busiest_second: 0 });
            entry.total += count;
            entry.busiest_second = entry.busiest_second.max(*count);
        }
        by_item.into_values().collect()
    }

    fn count_stock_writes(&self, keys: impl Iterator<Item = String>) {
        let second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut writes = self.stock_writes.lock().expect("counter lock");
        for key in keys.filter(|k| k.starts_with("SKU#")) {
            *writes.entry((key, second)).or_default() += 1;
        }
    }
}

/// `PK/SK` of an item or key.
fn item_key(item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> Option<String> {
    let part = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some(format!("{}/{}", part("PK")?, part("SK")?))
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::{
            transact_write_items::TransactWriteItemsInput, update_item::UpdateItemInput,
        };
        if let Some(input) = context.input().downcast_ref::<TransactWriteItemsInput>() {
            let keys = input.transact_items().iter().filter_map(|item| {
                (item.update().map(|u| &u.key))
                    .or_else(|| item.delete().map(|d| &d.key))
                    .or_else(|| item.put().map(|p| &p.item))
                    .and_then(item_key)
            });
            self.count_stock_writes(keys);
        }
        if let Some(input) = context.input().downcast_ref::<UpdateItemInput>() {
            self.count_stock_writes(input.key.as_ref().and_then(item_key).into_iter());
        }
        if let Some(input) =
            context.input().downcast_ref::<aws_sdk_eventbridge::operation::put_events::PutEventsInput>()
        {
            let entries = input.entries().len() as u64;
            *self.counts.lock().expect("counter lock").entry(EVENTS_SENT.to_owned()).or_default() += entries;
        }
        Ok(())
    }

    // Counted when an answer comes back, not before sending: presigning a URL runs the pipeline
    // up to the transmit and stops, and is no call (the client's upload is).
    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation =
            cfg.load::<Metadata>().map(|m| format!("{}.{}", m.service(), m.name())).unwrap_or_else(|| "unknown".into());
        self.count_call(operation);
        Ok(())
    }
}
