//! Lambda entry point for order intake; the handler is `orderflow::handlers::order_intake`.

use orderflow::config::Config;
use orderflow::handlers::order_intake::{handle, IntakeDeps, IntakeSettings};
use orderflow::handlers::Common;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = IntakeDeps { common: Common::from_aws(&config).await, settings: IntakeSettings::default() };
    lambda_http::run(lambda_http::service_fn(|request| handle(&deps, request))).await
}
