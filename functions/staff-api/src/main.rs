//! Lambda entry point for the staff API; the handler is `orderflow::handlers::staff_api`.

use orderflow::config::Config;
use orderflow::handlers::staff_api::{handle, StaffDeps};
use orderflow::handlers::Common;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = StaffDeps::new(Common::from_aws(&config).await, &config);
    lambda_http::run(lambda_http::service_fn(|request| handle(&deps, request))).await
}
