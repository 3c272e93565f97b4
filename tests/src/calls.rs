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
}

impl CallCounter {
    /// The same counts, with this interceptor's calls filed under `function`.
    pub fn for_function(&self, function: &'static str) -> Self {
        Self { counts: self.counts.clone(), function: Some(function) }
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

    pub fn reset(&self) {
        self.counts.lock().expect("counter lock").clear();
    }
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
        let name = match self.function {
            Some(function) => format!("{function} {operation}"),
            None => operation,
        };
        *self.counts.lock().expect("counter lock").entry(name).or_default() += 1;
        Ok(())
    }
}
