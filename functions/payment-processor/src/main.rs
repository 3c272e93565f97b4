//! Lambda entry point for payment processing; the handler is
//! `orderflow::handlers::payment_processor`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderflow::config::Config;
use orderflow::handlers::payment_processor::{handle_batch, ProcessorDeps, ProcessorSettings};
use orderflow::handlers::Common;
use orderflow::telemetry::metrics::flushing;

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderflow::telemetry::init_json_tracing();
    orderflow::telemetry::metrics::init()?;
    let config = Config::from_env()?;
    let settings = ProcessorSettings::from_lookup(|name| std::env::var(name).ok());
    let deps = ProcessorDeps { common: Common::from_aws(&config).await, settings };
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let deps = &deps;
        flushing(async move { Ok::<_, Error>(handle_batch(deps, event.payload).await) })
    }))
    .await
}
