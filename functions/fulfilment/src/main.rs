//! Lambda entry point for fulfilment's queue consumer (shipments made from paid and approved
//! cash-on-delivery orders); the handler is `orderflow::handlers::fulfilment`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderflow::config::Config;
use orderflow::handlers::fulfilment::{handle_batch, FulfilmentCore};

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = FulfilmentCore::from_env(&config).await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let deps = &deps;
        async move { Ok::<_, Error>(handle_batch(deps, event.payload).await) }
    }))
    .await
}
