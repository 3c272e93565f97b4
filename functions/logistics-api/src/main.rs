//! Lambda entry point for the logistics routes (tracking, not-received claims, parcel alerts,
//! courier KPIs, the logistics policy); the handler is `orderflow::handlers::logistics::routes`.

use orderflow::config::Config;
use orderflow::handlers::logistics::{routes::handle, LogisticsDeps};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = LogisticsDeps::from_env(&config).await?;
    lambda_http::run(lambda_http::service_fn(|request| handle(&deps, request))).await
}
