//! Lambda entry point for refunds (every RefundRequested recorded in the ledger and paid once
//! through the payment provider); the handler is `orderflow::handlers::refunds`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderflow::config::Config;
use orderflow::handlers::refunds::{handle_batch, RefundDeps};

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = RefundDeps::from_env(&config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let deps = &deps;
        async move { Ok::<_, Error>(handle_batch(deps, event.payload).await) }
    }))
    .await
}
