//! Lambda entry point for the hold-expiry sweeper; the handler is
//! `orderflow::handlers::hold_expiry`.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderflow::config::Config;
use orderflow::handlers::hold_expiry::{sweep, ExpiryDeps, ExpirySettings};
use orderflow::handlers::Common;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Stop starting new work this long before the invocation's deadline.
const SAFETY_MARGIN: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = ExpiryDeps { common: Common::from_aws(&config).await, settings: ExpirySettings::default() };
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
        let deps = &deps;
        async move {
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
            let remaining = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
            let deadline = Instant::now() + remaining.saturating_sub(SAFETY_MARGIN);
            Ok::<_, Error>(sweep(deps, Some(deadline)).await?)
        }
    }))
    .await
}
