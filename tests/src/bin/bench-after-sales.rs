//! After-sales benchmark (not part of CI).
//!
//! `tests/bin/bench-after-sales [--orders 500] [--clients 16] [--consumers 4]`
//!
//! On the local stack's emulators (Dynoxide for the table and its stream, LocalStack for the
//! bus, the queues and S3), with the functions' handlers in process:
//!
//! 1. Set-up, not timed: `--orders` one-unit orders, each of a customer of its own, paid; their
//!    parcels made by fulfilment and recorded delivered.
//! 2. Tickets: every customer opens a no-reason return through the after-sales routes, from
//!    `--clients` concurrent clients: tickets opened per second, latency, AWS calls per ticket.
//! 3. Returns: risk staff approve each (a return waybill from the mock courier), the warehouse
//!    takes it in and passes QC, closing it refunded: AWS calls per ticket for the three steps.
//! 4. Refunds: the event relay publishes the RefundRequested the closings wrote and
//!    `--consumers` refund functions pay them through the mock provider: refunds issued per
//!    second, AWS calls per refund, and a check that each was paid once.
//!
//! Then the bare SQS and EventBridge rates of LocalStack and moto, as every benchmark prints.

use orderflow::clock::{Clock, ManualClock};
use orderflow::domain::OrderId;
use orderflow::handlers::after_sales::routes;
use orderflow_tests::after_sales::risk_staff;
use orderflow_tests::bulk::{self, Fate};
use orderflow_tests::calls::CallCounter;
use orderflow_tests::cli::option;
use orderflow_tests::emulators::LocalStack;
use orderflow_tests::fixtures::{customer, exchange, json_request, one_warehouse, warehouse_staff, TEST_PRICE_MINOR};
use orderflow_tests::{Stack, StackOptions};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;

const SKU: &str = "TEA";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
}

async fn call(
    deps: &orderflow::handlers::after_sales::AfterSalesDeps,
    who: &orderflow_tests::auth::VerifiedClaims,
    path: &str,
    route: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let request = json_request(Some(who.clone()), "POST", path, route, body);
    exchange(request, |r| routes::handle(deps, r)).await
}

/// Run `work` over `0..count` from `workers` concurrent workers; each worker's latencies.
async fn spread<F, Fut>(stack: &Arc<Stack>, count: usize, workers: usize, work: F) -> Vec<f64>
where
    F: Fn(orderflow::handlers::after_sales::AfterSalesDeps, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let tasks = (0..workers).map(|_| {
        let (next, work, deps) = (next.clone(), work.clone(), stack.after_sales());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return latencies;
                }
                let started = Instant::now();
                work(deps.clone(), i).await;
                latencies.push(started.elapsed().as_secs_f64());
            }
        })
    });
    let mut all: Vec<f64> = futures::future::join_all(tasks).await.into_iter().flat_map(Result::unwrap).collect();
    all.sort_by(f64::total_cmp);
    all
}

/// Open a no-reason return of each order's unit, as its customer; the ticket ids.
async fn open_tickets(stack: &Arc<Stack>, ids: &Arc<Vec<OrderId>>, clients: usize) -> Vec<f64> {
    let ids = ids.clone();
    spread(stack, ids.len(), clients, move |deps, i| {
        let id = ids[i];
        async move {
            let body = json!({
                "kind": "return", "reason": "no_reason", "text": "changed my mind",
                "shipment_id": format!("{id}-1"), "lines": [{"sku": SKU, "quantity": 1}]
            });
            let path = format!("/orders/{id}/tickets");
            let (status, answer) =
                call(&deps, &customer(&format!("bulk-{i}")), &path, "/orders/{id}/tickets", Some(body)).await;
            assert_eq!(status, 201, "{answer}");
        }
    })
    .await
}

/// Approve, receive and pass each order's first ticket.
async fn return_and_check(stack: &Arc<Stack>, ids: &Arc<Vec<OrderId>>, clients: usize) {
    let ids = ids.clone();
    spread(stack, ids.len(), clients, move |deps, i| {
        let ticket = format!("{}-T1", ids[i]);
        async move {
            let steps = [
                (risk_staff(), "decision", Some(json!({"action": "approve"}))),
                (warehouse_staff(), "received", None),
                (warehouse_staff(), "qc", Some(json!({"passed": true, "notes": "sealed"}))),
            ];
            for (who, action, body) in steps {
                let path = format!("/admin/tickets/{ticket}/{action}");
                let (status, answer) = call(&deps, &who, &path, &format!("/admin/tickets/{{id}}/{action}"), body).await;
                assert_eq!(status, 200, "{action}: {answer}");
            }
        }
    })
    .await;
}

/// The refunds function's SQS event source at `consumers` concurrency, until `expected` were
/// handled; how many.
async fn pay_refunds(stack: &Arc<Stack>, consumers: usize, expected: usize) -> usize {
    let handled = Arc::new(AtomicUsize::new(0));
    let workers = (0..consumers).map(|_| {
        let (stack, handled) = (stack.clone(), handled.clone());
        tokio::spawn(async move {
            let deps = stack.refunds();
            let give_up = Instant::now() + std::time::Duration::from_secs(300);
            while handled.load(Ordering::Relaxed) < expected && Instant::now() < give_up {
                let event = stack.receive("RefundsQueue", 10, 1).await;
                if event.records.is_empty() {
                    continue;
                }
                let response = orderflow::handlers::refunds::handle_batch(&deps, event.clone()).await;
                assert!(response.batch_item_failures.is_empty(), "{response:?}");
                handled.fetch_add(event.records.len(), Ordering::Relaxed);
                stack.delete("RefundsQueue", &event.records).await;
            }
        })
    });
    futures::future::join_all(workers).await;
    handled.load(Ordering::Relaxed)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let orders = option("--orders", 500)?;
    let clients = option("--clients", 16)?;
    let consumers = option("--consumers", 4)?;
    let localstack = LocalStack::start(None).map_err(|e| e.to_string())?;
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let calls = CallCounter::default();
    let stack = Arc::new(
        Stack::start(StackOptions {
            localstack_endpoint: localstack.endpoint.clone(),
            dynamodb_port: None,
            stack_name: "after-sales".into(),
            clock: clock.clone(),
            calls: Some(calls.clone()),
        })
        .await?,
    );
    stack.seed(&one_warehouse(&[(SKU, i64::try_from(orders).unwrap_or(i64::MAX))])).await?;
    eprintln!("setting up {orders} delivered orders ...");
    let ids = bulk::orders(&stack, SKU, orders, clock.now(), Fate::PaidByOwnCustomer).await;
    bulk::deliver(&stack, &ids, clock.now()).await;
    stack.relay().await;
    clock.advance(time::Duration::hours(1));
    let ids = Arc::new(ids);

    calls.reset();
    let started = Instant::now();
    let latencies = open_tickets(&stack, &ids, clients).await;
    let elapsed = started.elapsed().as_secs_f64();
    println!("after-sales: {orders} delivered orders, {clients} clients");
    println!(
        "  tickets opened        {} in {elapsed:.1} s: {:.0} tickets/s",
        latencies.len(),
        latencies.len() as f64 / elapsed
    );
    println!(
        "  open latency          p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.5) * 1e3,
        percentile(&latencies, 0.99) * 1e3
    );
    calls.print_per(orders, "ticket");

    calls.reset();
    let started = Instant::now();
    return_and_check(&stack, &ids, clients).await;
    println!("  approve + receive + QC pass: {:.1} s for {orders} tickets", started.elapsed().as_secs_f64());
    calls.print_per(orders, "return");

    calls.reset();
    let started = Instant::now();
    let relay = {
        let stack = stack.clone();
        tokio::spawn(async move { stack.relay().await })
    };
    let paid = pay_refunds(&stack, consumers, orders).await;
    relay.await.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64();
    let refunds = stack.provider.paid();
    let once = ids.iter().all(|id| stack.provider.paid_back(&format!("pay_{id}")) == TEST_PRICE_MINOR);
    println!(
        "  refunds issued        {} of {paid} requested in {elapsed:.1} s: {:.0} refunds/s ({consumers} consumers)",
        refunds.len(),
        refunds.len() as f64 / elapsed
    );
    println!("  each order paid back its price once: {once}; provider calls {}", stack.provider.calls().len());
    calls.print_per(refunds.len().max(1), "refund");
    let stock = stack.stock(SKU, "HZ").await;
    println!(
        "  stock after           available {} sold {} (all back on sale: {})",
        stock.available,
        stock.sold,
        stock.available as usize == orders
    );
    orderflow_tests::rates::on_localstack_and_moto(&localstack, 500, 16).await?.print();
    Ok(())
}
