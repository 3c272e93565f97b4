//! Lambda entry point for the tracking poller (parcels polled within couriers' rates, alerts at
//! their thresholds, the month-end courier review); the handler is
//! `orderflow::handlers::logistics::poller`.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderflow::config::Config;
use orderflow::handlers::logistics::poller::{run, PollerSettings};
use orderflow::handlers::logistics::LogisticsDeps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = LogisticsDeps::from_env(&config).await?;
    let settings = PollerSettings::default();
    lambda_runtime::run(service_fn(|_: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
        let (deps, settings) = (&deps, &settings);
        async move { Ok::<_, Error>(run(deps, settings).await?) }
    }))
    .await
}
