//! Lambda entry point for the staff API; the handler is `orderflow::handlers::staff_api`.

use orderflow::aws::json_service::JsonService;
use orderflow::config::Config;
use orderflow::handlers::staff_api::{handle, StaffDeps};
use orderflow::handlers::Common;
use orderflow::personal::PersonalKeys;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let key_id = orderflow::personal::key_id_from_env()?;
    let aws = orderflow::aws::config().await;
    let personal = PersonalKeys::on_kms(&JsonService::kms(&aws)?, &key_id);
    let deps = StaffDeps::new(Common::from_aws(&config).await, &config, personal);
    lambda_http::run(lambda_http::service_fn(|request| handle(&deps, request))).await
}
