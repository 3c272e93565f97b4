//! Hold-expiry benchmark (not part of CI).
//!
//! `tests/bin/bench-hold-expiry [--holds 10000] [--latency-holds 300]`
//!
//! 1. Throughput: `--holds` unpaid holds, all due, released by successive sweeper runs as the
//!    schedule would invoke them; prints holds released per second, runs needed and AWS calls
//!    per hold.
//! 2. Latency: `--latency-holds` holds expiring over the next minute, released by the local
//!    stack's own schedule (the template's `rate(1 minute)`); prints how long after `expires_at`
//!    each was released (p50, p99, max).

use orderflow::clock::{Clock, ManualClock, SystemClock};
use orderflow::handlers::hold_expiry::sweep;
use orderflow_tests::bulk::{self, Fate};
use orderflow_tests::calls::CallCounter;
use orderflow_tests::cli::option;
use orderflow_tests::emulators::LocalStack;
use orderflow_tests::local::{self, LocalOptions};
use orderflow_tests::rates;
use orderflow_tests::{Seed, Stack, StackOptions};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn seed(units: usize) -> Seed {
    serde_json::from_value(json!({
        "warehouses": [{"warehouse_id": "HZ", "name": "Hangzhou", "regions": ["Zhejiang"]}],
        "stock": [{"sku": "SWEEP", "warehouse_id": "HZ", "available": units}]
    }))
    .unwrap()
}

fn ms(d: f64) -> String {
    format!("{:.0} ms", d * 1e3)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let holds = option("--holds", 10_000)?;
    let latency_holds = option("--latency-holds", 300)?;
    let localstack = LocalStack::start(None).map_err(|e| e.to_string())?;

    // 1. Throughput, on a clock moved past every expiry.
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let calls = CallCounter::default();
    let stack = Stack::start(StackOptions {
        localstack_endpoint: localstack.endpoint.clone(),
        dynamodb_port: None,
        stack_name: "throughput".into(),
        clock: clock.clone(),
        calls: Some(calls.clone()),
    })
    .await?;
    stack.seed(&seed(holds)).await?;
    let now = clock.now();
    eprintln!("creating {holds} reserved orders ...");
    bulk::orders(&stack, "SWEEP", holds, now, Fate::HeldUntil(|now, _, _| now + time::Duration::minutes(30))).await;
    clock.advance(time::Duration::minutes(31));
    calls.reset();
    let deps = stack.expiry();
    let started = Instant::now();
    let (mut released, mut runs) = (0, 0);
    loop {
        runs += 1;
        let report = sweep(&deps, Some(Instant::now() + Duration::from_secs(50))).await.map_err(|e| e.to_string())?;
        released += report.expired;
        eprintln!("  run {runs}: {report:?}");
        if !report.more_due || runs > 100 {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stock = stack.stock("SWEEP", "HZ").await;
    println!("hold expiry: {holds} due holds");
    println!("  released              {released} in {runs} run(s), {elapsed:.1} s");
    println!("  holds released/s      {:.0}", released as f64 / elapsed);
    println!(
        "  stock after           available {} reserved {} (all back: {})",
        stock.available,
        stock.reserved,
        stock.available as usize == holds
    );
    println!("  AWS calls per hold    {:.2}", calls.total() as f64 / holds as f64);
    for (operation, count) in calls.snapshot() {
        println!("    {operation:<40} {:.3}", count as f64 / holds as f64);
    }
    drop(stack);

    // 2. Latency from expires_at to release under the local stack's schedule.
    let stack = Arc::new(
        Stack::start(StackOptions {
            localstack_endpoint: localstack.endpoint.clone(),
            dynamodb_port: None,
            stack_name: "latency".into(),
            clock: Arc::new(SystemClock),
            calls: None,
        })
        .await?,
    );
    stack.seed(&seed(latency_holds)).await?;
    let running = local::run(stack.clone(), LocalOptions::default()).await?;
    let start = OffsetDateTime::now_utc();
    eprintln!("{latency_holds} holds expiring over the next 60 s; the schedule runs every minute ...");
    // Spread over the minute after the first five seconds.
    let spread =
        |start, i, count: usize| start + time::Duration::milliseconds(5_000 + 60_000 * i as i64 / count.max(1) as i64);
    let ids = bulk::orders(&stack, "SWEEP", latency_holds, start, Fate::HeldUntil(spread)).await;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if stack.stock("SWEEP", "HZ").await.reserved == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    running.stop().await;
    let mut lags = Vec::new();
    for id in &ids {
        let hold = stack.store().hold(*id).await.map_err(|e| e.to_string())?.ok_or("hold missing")?;
        let item = stack
            .dynamodb
            .get_item()
            .table_name(&stack.config.table_name)
            .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(format!("ORDER#{id}")))
            .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("HOLD".into()))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let released_at = item.item.and_then(|i| i.get("released_at").and_then(|v| v.as_s().ok()).cloned());
        if let Some(at) = released_at {
            let at = OffsetDateTime::parse(&at, &Rfc3339).map_err(|e| e.to_string())?;
            lags.push(
                (at - OffsetDateTime::from_unix_timestamp(hold.expires_at.expect("a due hold expires")).unwrap())
                    .as_seconds_f64(),
            );
        }
    }
    lags.sort_by(f64::total_cmp);
    let pct = |p: f64| lags.get(((lags.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    println!("release latency under the local schedule (rate 1 minute): {} of {latency_holds} released", lags.len());
    println!("  after expires_at      p50 {}, p99 {}, max {}", ms(pct(0.5)), ms(pct(0.99)), ms(pct(1.0)));
    rates::on_localstack_and_moto(&localstack, 500, 16).await?.print();
    Ok(())
}
