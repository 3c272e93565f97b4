//! Lambda entry point for the couriers' signed pushes; the handler is
//! `orderflow::handlers::logistics::webhook`.

use orderflow::config::Config;
use orderflow::handlers::logistics::webhook::{handle, CourierWebhookDeps};
use orderflow::handlers::Common;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let secrets = CourierWebhookDeps::secrets_from(std::env::var("COURIER_WEBHOOK_SECRETS").ok())?;
    let deps = CourierWebhookDeps { common: Common::from_aws(&config).await, secrets };
    lambda_http::run(lambda_http::service_fn(|request| handle(&deps, request))).await
}
