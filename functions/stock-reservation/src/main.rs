//! Lambda entry point for stock reservation; the handler is
//! `orderflow::handlers::stock_reservation`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderflow::config::Config;
use orderflow::handlers::stock_reservation::{handle_batch, ReservationDeps, ReservationSettings};
use orderflow::handlers::Common;

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = ReservationDeps::new(Common::from_aws(&config).await, ReservationSettings::from_config(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let deps = &deps;
        async move { Ok::<_, Error>(handle_batch(deps, event.payload).await) }
    }))
    .await
}
