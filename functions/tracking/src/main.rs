//! Lambda entry point for the tracking consumer (couriers' pushes applied, stuck parcels chased,
//! courier KPIs counted); the handler is `orderflow::handlers::logistics::consumer`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderflow::config::Config;
use orderflow::handlers::logistics::{consumer::handle_batch, LogisticsDeps};

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = LogisticsDeps::from_env(&config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let deps = &deps;
        async move { Ok::<_, Error>(handle_batch(deps, event.payload).await) }
    }))
    .await
}
