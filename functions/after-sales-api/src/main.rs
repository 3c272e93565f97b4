//! Lambda entry point for the after-sales routes (tickets, evidence, decisions, returns and QC,
//! the after-sales policy); the handler is `orderflow::handlers::after_sales::routes`.

use orderflow::config::Config;
use orderflow::handlers::after_sales::{routes::handle, AfterSalesDeps};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orderflow::telemetry::init_json_tracing();
    let config = Config::from_env()?;
    let deps = AfterSalesDeps::from_env(&config).await?;
    lambda_http::run(lambda_http::service_fn(|request| handle(&deps, request))).await
}
