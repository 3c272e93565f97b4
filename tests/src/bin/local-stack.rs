//! The whole system on this machine: Dynoxide and LocalStack on loopback, the template deployed
//! (LocalStack's share through its CloudFormation, the table on Dynoxide), stock seeded, every
//! function wired to its trigger. Run it with `tests/bin/local-stack`, which installs what it
//! needs first.
//!
//! Ports: LOCAL_API_PORT (3000), LOCAL_DYNAMODB_PORT (8000), LOCAL_LOCALSTACK_PORT (4566).
//! Seed file: LOCAL_SEED (infra/local-seed.json). The mock courier moves every handed-over
//! parcel a step each LOCAL_COURIER_MOVES_EVERY seconds (30).

use orderflow_tests::emulators::{repo_root, LocalStack};
use orderflow_tests::local::{self, LocalOptions};
use orderflow_tests::{Seed, Stack, StackOptions};
use std::sync::Arc;

fn port(name: &str, default: u16) -> Result<u16, String> {
    match std::env::var(name) {
        Ok(v) => v.parse().map_err(|_| format!("{name} must be a port number, not {v:?}")),
        Err(_) => Ok(default),
    }
}

fn seconds(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) => v.parse().map_err(|_| format!("{name} must be a number of seconds, not {v:?}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .compact()
        .init();
    let (api_port, dynamodb_port, localstack_port) =
        (port("LOCAL_API_PORT", 3000)?, port("LOCAL_DYNAMODB_PORT", 8000)?, port("LOCAL_LOCALSTACK_PORT", 4566)?);
    let seed_path =
        std::env::var("LOCAL_SEED").map(Into::into).unwrap_or_else(|_| repo_root().join("infra/local-seed.json"));

    let localstack = LocalStack::start(Some(localstack_port)).map_err(|e| e.to_string())?;
    let stack = Stack::start(StackOptions {
        localstack_endpoint: localstack.endpoint.clone(),
        dynamodb_port: Some(dynamodb_port),
        stack_name: "orderflow-local".to_owned(),
        clock: Stack::system_clock(),
        calls: None,
    })
    .await?;
    let seed = Seed::load(&seed_path)?;
    stack.seed(&seed).await?;
    let stack = Arc::new(stack);
    let courier_moves_every = std::time::Duration::from_secs(seconds("LOCAL_COURIER_MOVES_EVERY", 30)?);
    let options = LocalOptions {
        api_port: Some(api_port),
        courier_moves_every: Some(courier_moves_every),
        ..LocalOptions::default()
    };
    let running = local::run(stack.clone(), options).await?;

    let api = running.api_url();
    println!(
        "\nOrderflow local stack is up.\n\
         \x20 API              {api}\n\
         \x20 DynamoDB         {dynamo}  table {table}\n\
         \x20 LocalStack       {localstack}  stack {stack_name}: bus {bus}, {queues} queues (SQS, EventBridge, S3, KMS, CloudFormation)\n\
         \x20 Seeded           {warehouses} warehouses, {stock} stock records from {seed}\n\n\
         Try:\n\
         \x20 curl -si -X POST {api}/orders -H 'content-type: application/json' -H 'idempotency-key: demo-1' -d @events/order-body.json\n\
         \x20 curl -s {api}/orders/<order_id>\n\
         \x20 curl -s {api}/admin/stock/TEA-GREEN-250\n\
         \x20 curl -s -X POST {api}/orders/<order_id>/cancel\n\n\
         The binaries run against the same emulators with AWS_ENDPOINT_URL_DYNAMODB={dynamo} and AWS_ENDPOINT_URL={localstack}.\n\
         Ctrl-C stops everything.",
        dynamo = stack.dynamodb_endpoint,
        table = stack.provisioned.table_name,
        localstack = localstack.endpoint,
        stack_name = stack.provisioned.stack_name,
        bus = stack.provisioned.bus_name,
        queues = stack.provisioned.queue_urls.len(),
        warehouses = seed.warehouses.len(),
        stock = seed.stock.len(),
        seed = seed_path.display(),
    );
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    println!("stopping");
    running.stop().await;
    drop(localstack);
    Ok(())
}
