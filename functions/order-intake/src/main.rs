//! Lambda entry point for order intake; the handler is `orderflow::handlers::order_intake`.

use orderflow::aws::json_service::JsonService;
use orderflow::config::{Config, ConfigError};
use orderflow::handlers::order_intake::{handle, IntakeDeps, IntakeSettings};
use orderflow::handlers::Common;
use orderflow::notify::SqsNotifier;
use orderflow::personal::{KeyCacheLimits, KmsVault, PersonalKeys, Purpose, Sealer};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let queue_url =
        std::env::var("NOTIFICATION_QUEUE_URL").map_err(|_| ConfigError::Missing("NOTIFICATION_QUEUE_URL"))?;
    let key_id = orderflow::personal::key_id_from_env()?;
    let aws = orderflow::aws::config().await;
    let kms = JsonService::kms(&aws)?;
    let messages = KmsVault::new(kms.clone(), key_id.clone(), Purpose::Notification);
    let messages = Arc::new(Sealer::new(Arc::new(messages), KeyCacheLimits::default()));
    let notifier = SqsNotifier::new(JsonService::sqs(&aws)?, queue_url);
    let notifier = Arc::new(notifier.sealing_phones_with(messages));
    let personal = PersonalKeys::on_kms(&kms, &key_id);
    let deps = IntakeDeps::new(Common::from_aws(&config).await, IntakeSettings::default(), notifier, personal);
    lambda_http::run(lambda_http::service_fn(|request| handle(&deps, request))).await
}
