//! Lambda entry point for the payment provider's webhook; the handler is
//! `orderflow::handlers::payment_webhook`.

use orderflow::config::Config;
use orderflow::handlers::payment_webhook::{handle, WebhookDeps, WebhookSettings};
use orderflow::handlers::Common;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let settings = WebhookSettings::from_lookup(|name| std::env::var(name).ok())?;
    let deps = WebhookDeps { common: Common::from_aws(&config).await, settings };
    lambda_http::run(lambda_http::service_fn(|request| handle(&deps, request))).await
}
