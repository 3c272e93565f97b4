//! Logistics benchmark (not part of CI).
//!
//! `tests/bin/bench-logistics [--parcels 100] [--pushes 20] [--clients 16] [--rate 20] [--latency-parcels 40]`
//!
//! 1. Ingestion: `--parcels` parcels handed over through the fulfilment API, then `--pushes`
//!    signed pushes of one checkpoint each per parcel from `--clients` concurrent couriers'
//!    clients through the webhook, while the relay and four tracking consumers run: pushes
//!    accepted per second at the webhook, and checkpoints recorded on their parcels per second
//!    end to end (push to parcel), each checked recorded once; AWS calls per checkpoint.
//! 2. Polling: one poller run over those parcels with the courier's rate set to `--rate` per
//!    second: parcels polled per second and the most polls in any one second.
//! 3. Alert latency: `--latency-parcels` parcels whose 72 h NOT_COLLECTED thresholds fall over
//!    the next half minute (the clock is the wall clock shifted ahead), raised by the local
//!    stack's own schedule (the template's `rate(1 minute)`): how long after its threshold each
//!    alert was raised (p50, p99, max).

// A parcel handed over awaits the whole order path: deeper async nesting than the default allows.
#![recursion_limit = "256"]

use orderflow::clock::Clock;
use orderflow::domain::logistics_policy::CourierLimits;
use orderflow::domain::tracking::AlertKind;
use orderflow::domain::LogisticsPolicy;
use orderflow::handlers::logistics::{consumer, poller};
use orderflow_tests::calls::CallCounter;
use orderflow_tests::cli::option;
use orderflow_tests::emulators::LocalStack;
use orderflow_tests::fixtures::one_warehouse;
use orderflow_tests::local::{self, LocalOptions};
use orderflow_tests::parcels::{checkpoint, handed_over, push, stored, Parcel};
use orderflow_tests::{rates, Stack, StackOptions};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const QUEUE: &str = "TrackingQueue";

/// The wall clock moved by an offset set while running: thresholds days away arrive in seconds.
#[derive(Default)]
struct ShiftedClock {
    offset_ms: AtomicI64,
}

impl Clock for ShiftedClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

async fn parcels(stack: &Stack, count: usize) -> Vec<Parcel> {
    let mut made = Vec::with_capacity(count);
    for i in 0..count {
        made.push(handed_over(stack, 1).await);
        if (i + 1) % 25 == 0 {
            eprintln!("  {} parcels handed over", i + 1);
        }
    }
    made
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
}

/// The relay and `consumers` tracking consumers, as the event source mapping and the SQS event
/// source would run them, until `done`.
fn run_pipeline(stack: &Arc<Stack>, consumers: usize, done: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let (relay_stack, relay_done) = (stack.clone(), done.clone());
    tasks.push(tokio::spawn(async move {
        while !relay_done.load(Ordering::SeqCst) {
            relay_stack.relay().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }));
    for _ in 0..consumers {
        let (stack, done) = (stack.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let deps = stack.logistics_as("tracking");
            while !done.load(Ordering::SeqCst) {
                let event = stack.receive(QUEUE, 10, 1).await;
                if event.records.is_empty() {
                    continue;
                }
                let failed = consumer::handle_batch(&deps, event.clone()).await.batch_item_failures;
                let handled: Vec<_> = event
                    .records
                    .into_iter()
                    .filter(|m| failed.iter().all(|f| Some(&f.item_identifier) != m.message_id.as_ref()))
                    .collect();
                stack.delete(QUEUE, &handled).await;
            }
        }));
    }
    tasks
}

async fn recorded(stack: &Stack, parcels: &[Parcel]) -> usize {
    let mut total = 0;
    for parcel in parcels {
        total += stored(stack, parcel).await.tracking.map(|t| t.checkpoints.len()).unwrap_or(0);
    }
    total
}

async fn ingestion(stack: &Arc<Stack>, calls: &CallCounter, parcels: &[Parcel], pushes: usize, clients: usize) {
    let total = parcels.len() * pushes;
    let start = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let work: Vec<(usize, usize)> = (0..pushes).flat_map(|p| (0..parcels.len()).map(move |i| (i, p))).collect();
    let (work, next) = (Arc::new(work), Arc::new(AtomicUsize::new(0)));
    let parcels = Arc::new(parcels.to_vec());
    let done = Arc::new(AtomicBool::new(false));
    calls.reset();
    let pipeline = run_pipeline(stack, 4, &done);
    let started = Instant::now();
    let clients: Vec<_> = (0..clients)
        .map(|_| {
            let (stack, work, next, parcels) = (stack.clone(), work.clone(), next.clone(), parcels.clone());
            tokio::spawn(async move {
                let mut refused = 0;
                while let Some(&(i, p)) = work.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let step = checkpoint(start, p as i64, "IN_TRANSIT", &format!("SCAN_{p}"));
                    let (status, _) = push(&stack, &parcels[i], &format!("bench-{i}-{p}"), vec![step]).await;
                    refused += usize::from(status != 200);
                }
                refused
            })
        })
        .collect();
    let mut refused = 0;
    for client in clients {
        refused += client.await.expect("client");
    }
    let accepted_in = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut seen = 0;
    while Instant::now() < deadline {
        seen = recorded(stack, &parcels).await;
        if seen >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let end_to_end = started.elapsed().as_secs_f64();
    done.store(true, Ordering::SeqCst);
    for task in pipeline {
        let _ = task.await;
    }
    println!("ingestion: {total} pushes of one checkpoint ({} parcels x {pushes})", parcels.len());
    println!(
        "  webhook accepted      {} in {accepted_in:.1} s: {:.0} pushes/s ({refused} refused)",
        total - refused,
        (total - refused) as f64 / accepted_in
    );
    println!(
        "  recorded on parcels   {seen} of {total} in {end_to_end:.1} s: {:.0} checkpoints/s end to end",
        seen as f64 / end_to_end
    );
    println!("  AWS calls per checkpoint {:.2}, by function and operation:", calls.total() as f64 / total as f64);
    for (operation, share) in calls.per_operation(total) {
        println!("    {operation:<48} {share:.3}");
    }
}

async fn polling(stack: &Arc<Stack>, parcels: &[Parcel], rate: u32) -> Result<(), String> {
    let limits = CourierLimits {
        courier: parcels[0].courier.clone(),
        polls_per_second: rate,
        polls_per_day: 1_000_000,
        pushes: false,
    };
    let policy = LogisticsPolicy { courier_limits: vec![limits], ..Default::default() };
    stack.store().save_policy(&policy, "bench", stack.clock.now()).await.map_err(|e| e.to_string())?;
    let before = stack.courier.polls().len();
    // The policy is cached a minute per instance: a fresh poller reads the new one.
    let deps = stack.logistics_as("tracking-poller");
    let started = Instant::now();
    let report = poller::run(&deps, &poller::PollerSettings::default()).await.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64();
    let polls: Vec<Instant> = stack.courier.polls().into_iter().skip(before).map(|(_, at)| at).collect();
    let busiest = polls
        .iter()
        .map(|a| polls.iter().filter(|b| **b >= *a && b.duration_since(*a) < Duration::from_secs(1)).count())
        .max()
        .unwrap_or(0);
    let spread = match (polls.first(), polls.last()) {
        (Some(first), Some(last)) => last.duration_since(*first).as_secs_f64(),
        _ => 0.0,
    };
    println!("polling: one run, the courier's rate {rate}/s");
    println!(
        "  due {}, polled {}, deferred {}, failed {} in {elapsed:.1} s",
        report.due, report.polled, report.deferred, report.failed
    );
    println!(
        "  parcels polled/s      {:.1} (first to last poll {spread:.1} s); most in any 1 s: {busiest}",
        (polls.len().saturating_sub(1)) as f64 / spread.max(f64::EPSILON)
    );
    Ok(())
}

async fn alert_latency(localstack: &LocalStack, count: usize) -> Result<(), String> {
    let clock = Arc::new(ShiftedClock::default());
    let stack = Arc::new(
        Stack::start(StackOptions {
            localstack_endpoint: localstack.endpoint.clone(),
            dynamodb_port: None,
            stack_name: "alerts".into(),
            clock: clock.clone(),
            calls: None,
        })
        .await?,
    );
    stack.seed(&one_warehouse(&[("TEA", count as i64)])).await?;
    eprintln!("handing over {count} parcels ...");
    let parcels = parcels(&stack, count).await;
    let first = stored(&stack, &parcels[0]).await.tracking.and_then(|t| t.handed_over_at).ok_or("not handed over")?;
    // The first threshold 5 s from now; the others follow as the hand-overs did.
    let shift = first + time::Duration::hours(72) + time::Duration::seconds(5) - OffsetDateTime::now_utc();
    clock.offset_ms.store(shift.whole_milliseconds() as i64, Ordering::SeqCst);
    let running = local::run(stack.clone(), LocalOptions::default()).await?;
    eprintln!("thresholds over the next {:.0} s; the poller runs every minute ...", {
        let last = stored(&stack, &parcels[count - 1])
            .await
            .tracking
            .and_then(|t| t.handed_over_at)
            .ok_or("not handed over")?;
        (last - first).as_seconds_f64() + 5.0
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut lags = Vec::new();
    while Instant::now() < deadline {
        lags.clear();
        for parcel in &parcels {
            let tracking = stored(&stack, parcel).await.tracking.ok_or("no tracking")?;
            let alert = tracking.alerts.iter().find(|a| a.kind == AlertKind::NotCollected);
            if let (Some(alert), Some(handed)) = (alert, tracking.handed_over_at) {
                lags.push((alert.raised_at - (handed + time::Duration::hours(72))).as_seconds_f64());
            }
        }
        if lags.len() == count {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    running.stop().await;
    lags.sort_by(f64::total_cmp);
    println!("alert latency under the local schedule (rate 1 minute): {} of {count} raised", lags.len());
    println!(
        "  after the threshold   p50 {:.1} s, p99 {:.1} s, max {:.1} s; none before: {}",
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        pct(&lags, 1.0),
        lags.first().is_none_or(|l| *l >= 0.0)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let count = option("--parcels", 100)?;
    let pushes = option("--pushes", 20)?;
    let clients = option("--clients", 16)?;
    let rate = u32::try_from(option("--rate", 20)?).map_err(|e| e.to_string())?;
    let latency_parcels = option("--latency-parcels", 40)?;
    let localstack = LocalStack::start(None).map_err(|e| e.to_string())?;
    let calls = CallCounter::default();
    let stack = Arc::new(Stack::for_benchmark(&localstack.endpoint, &calls).await?);
    stack.seed(&one_warehouse(&[("TEA", count as i64)])).await?;
    eprintln!("handing over {count} parcels ...");
    let made = parcels(&stack, count).await;
    ingestion(&stack, &calls, &made, pushes, clients).await;
    polling(&stack, &made, rate).await?;
    drop(stack);
    alert_latency(&localstack, latency_parcels).await?;
    rates::on_localstack_and_moto(&localstack, 500, 16).await?.print();
    Ok(())
}
