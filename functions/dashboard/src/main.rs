//! Lambda entry point for dashboard (the operations dashboard's counters, kept from the bus
//! events); the handler is `orderflow::handlers::dashboard`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderflow::config::Config;
use orderflow::handlers::dashboard::{handle_batch, DashboardDeps};
use orderflow::handlers::Common;

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = DashboardDeps { common: Common::from_aws(&config).await };
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let deps = &deps;
        async move { Ok::<_, Error>(handle_batch(deps, event.payload).await) }
    }))
    .await
}
