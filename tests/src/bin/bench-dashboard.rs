//! Dashboard benchmark (not part of CI).
//!
//! `tests/bin/bench-dashboard [--days 30] [--channels 4] [--events-per-hour 8] [--reads 30] [--loads 15]`
//!
//! 1. Fills `--days` of hourly counters up to now: every hour, for each of `--channels` channels,
//!    `--events-per-hour` events counted by the dashboard's own writer (`Store::count_event`, so
//!    they spread over the shards as real events do); prints the items written and the rate.
//! 2. The staff route's latency on them: `--reads` calls of `GET /admin/dashboard` through the
//!    staff-api handler for a day, a week, the whole range and the longest range allowed
//!    (p50, p90, max; answer size; DynamoDB calls per read).
//! 3. The page's load time: the page opened in headless Chromium through the local stack's
//!    gateway, then reloaded `--loads` times; from navigation start to the page's own response
//!    end, to DOMContentLoaded, and to its first figures drawn (p50, p90, max); then `--loads`
//!    times from a click on "30 days" to the month drawn.

use futures::{stream, StreamExt};
use orderflow::clock::{Clock, SystemClock};
use orderflow::domain::dashboard::{hour_of, Metric};
use orderflow::handlers::staff_api;
use orderflow_tests::browser::Browser;
use orderflow_tests::calls::CallCounter;
use orderflow_tests::cli::option;
use orderflow_tests::emulators::LocalStack;
use orderflow_tests::fixtures::{http_as, operations};
use orderflow_tests::local::{self, ApiClient, LocalOptions};
use orderflow_tests::{Stack, StackOptions};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use time::Duration;

/// What one event of the month adds: a realistic mix, cycled through.
const MIXES: [&[(Metric, i64)]; 8] = [
    &[(Metric::OrdersReceived, 1)],
    &[(Metric::OrdersReserved, 1)],
    &[(Metric::OrdersPaid, 1)],
    &[(Metric::PaymentsSucceeded, 1)],
    &[(Metric::ParcelsDispatched, 1)],
    &[
        (Metric::ParcelsDelivered, 1),
        (Metric::ParcelsDeliveredOnTime, 1),
        (Metric::ParcelsTimed, 1),
        (Metric::DeliverySeconds, 86_400),
    ],
    &[(Metric::TicketsOpened, 1)],
    &[(Metric::RefundsRequested, 1)],
];

fn percentiles(mut samples: Vec<f64>) -> String {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples.get(((samples.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    format!("p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms", at(0.5), at(0.9), at(1.0))
}

async fn fill(stack: &Stack, days: i64, channels: usize, per_hour: usize) -> Result<(), String> {
    let now = SystemClock.now();
    let first = now - Duration::days(days - 1);
    let hours: Vec<String> = (0..days * 24)
        .map(|h| first.replace_time(time::Time::MIDNIGHT) + Duration::hours(h))
        .filter(|at| *at <= now)
        .map(hour_of)
        .collect();
    let events: Vec<(String, String, usize)> = (hours.iter())
        .flat_map(|hour| {
            (0..channels).flat_map(move |c| (0..per_hour).map(move |e| (hour.clone(), format!("ch-{c}"), e)))
        })
        .collect();
    let count = events.len();
    eprintln!("counting {count} events over {} hours ...", hours.len());
    let started = Instant::now();
    let store = stack.store();
    let results: Vec<_> = stream::iter(events)
        .map(|(hour, channel, e)| {
            let store = store.clone();
            async move {
                let id = format!("Bench:{hour}:{channel}:{e}");
                store.count_event(&id, &hour, &channel, MIXES[e % MIXES.len()], now).await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    let elapsed = started.elapsed().as_secs_f64();
    println!("dashboard: {days} days of counters, {channels} channels, {per_hour} events per hour and channel");
    println!(
        "  events counted        {} ({failed} failed) in {elapsed:.1} s, {:.0}/s",
        count - failed,
        count as f64 / elapsed
    );
    Ok(())
}

async fn route_latency(stack: &Stack, calls: &CallCounter, reads: usize) -> Result<(), String> {
    let deps = stack.staff();
    let today = SystemClock.now().date();
    println!("  GET /admin/dashboard through the staff-api handler, {reads} reads each:");
    for days in [1, 7, 30, staff_api::DASHBOARD_MAX_DAYS] {
        let from = today - Duration::days(days - 1);
        let path = format!("/admin/dashboard?from={from}&to={today}");
        let (mut latencies, mut bytes) = (Vec::new(), 0);
        calls.reset();
        for _ in 0..reads {
            let request = http_as(Some(operations()), "GET", &path, "/admin/dashboard", &[], None);
            let started = Instant::now();
            let response = staff_api::handle(&deps, request).await.map_err(|e| e.to_string())?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
            if response.status() != 200 {
                return Err(format!("{path}: {}", response.status()));
            }
            bytes = orderflow::http::body_bytes(response.body()).len();
        }
        let per_read = calls.total() as f64 / reads as f64;
        println!("    {days:>2} days   {}; {bytes} bytes; {per_read:.1} DynamoDB calls", percentiles(latencies));
    }
    Ok(())
}

async fn page_load(stack: Arc<Stack>, loads: usize) -> Result<(), String> {
    let running = local::run(stack, LocalOptions::default()).await?;
    let api = ApiClient::new(running.api_url());
    let operations = api.bearer(json!({"kind": "staff", "subject": "ops-bench", "roles": ["operations"]})).await?;
    let url = format!("{}/admin/dashboard/page", running.api_url());
    let (mut browser, opened) = Browser::open(&url, Some(&operations)).await?;
    if opened["status"] != 200 {
        return Err(format!("the page answered {opened}"));
    }
    let mut timings: Vec<Value> = Vec::new();
    for _ in 0..loads {
        timings.push(browser.reload().await?);
    }
    // The month on the page: from the click to the 30 days drawn (a read of the month's counters).
    let mut month = Vec::new();
    for _ in 0..loads {
        month.push(browser.choose_range(30).await?);
        browser.choose_range(1).await?;
    }
    browser.close().await;
    running.stop().await;
    let series = |name: &str| timings.iter().filter_map(|t| t[name].as_f64()).collect::<Vec<_>>();
    println!("  the page in headless Chromium through the local gateway, {loads} loads (today's figures):");
    println!("    page size            {} bytes", timings.first().map_or(json!(null), |t| t["page_bytes"].clone()));
    println!("    response end         {}", percentiles(series("response_end_ms")));
    println!("    DOMContentLoaded     {}", percentiles(series("dom_content_loaded_ms")));
    println!("    first figures drawn  {}", percentiles(series("drawn_ms")));
    println!("    30 days, click to drawn {}", percentiles(month));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let days = option("--days", 30)? as i64;
    let channels = option("--channels", 4)?;
    let per_hour = option("--events-per-hour", 8)?;
    let reads = option("--reads", 30)?;
    let loads = option("--loads", 15)?;
    let localstack = LocalStack::start(None).map_err(|e| e.to_string())?;
    let calls = CallCounter::default();
    let stack = Stack::start(StackOptions {
        localstack_endpoint: localstack.endpoint.clone(),
        dynamodb_port: None,
        stack_name: "dashboard".into(),
        clock: Arc::new(SystemClock),
        calls: Some(calls.clone()),
    })
    .await?;
    fill(&stack, days, channels, per_hour).await?;
    route_latency(&stack, &calls, reads).await?;
    page_load(Arc::new(stack), loads).await
}
