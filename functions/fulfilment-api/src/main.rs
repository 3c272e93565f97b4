//! Lambda entry point for the warehouse's fulfilment routes and the customer's shortage answer;
//! the handler is `orderflow::handlers::fulfilment::routes`.

use orderflow::config::Config;
use orderflow::handlers::fulfilment::{routes, FulfilmentDeps};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = FulfilmentDeps::from_env(&config).await?;
    lambda_http::run(lambda_http::service_fn(|request| routes::handle(&deps, request))).await
}
