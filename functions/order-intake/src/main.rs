//! Lambda entry point for order intake; the handler is `orderflow::handlers::order_intake`.

use orderflow::config::{Config, ConfigError};
use orderflow::handlers::order_intake::{handle, IntakeDeps, IntakeSettings};
use orderflow::handlers::Common;
use orderflow::notify::SqsNotifier;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let queue_url =
        std::env::var("NOTIFICATION_QUEUE_URL").map_err(|_| ConfigError::Missing("NOTIFICATION_QUEUE_URL"))?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let notifier = Arc::new(SqsNotifier::new(aws_sdk_sqs::Client::new(&aws), queue_url));
    let deps = IntakeDeps::new(Common::from_aws(&config).await, IntakeSettings::default(), notifier);
    lambda_http::run(lambda_http::service_fn(|request| handle(&deps, request))).await
}
