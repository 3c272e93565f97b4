//! Lambda entry point for the event relay (the table's stream); the handler is
//! `orderflow::handlers::event_relay`.

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderflow::handlers::event_relay::{handle, RelayDeps};
use orderflow::telemetry::metrics::flushing;

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderflow::telemetry::init_json_tracing();
    orderflow::telemetry::metrics::init()?;
    let deps = RelayDeps::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<DynamoDbEvent>| {
        let deps = &deps;
        // A failed invocation makes the event source bisect the batch and retry.
        flushing(async move { handle(deps, event.payload).await.map_err(Error::from) })
    }))
    .await
}
