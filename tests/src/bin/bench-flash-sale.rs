//! Flash-sale benchmark (not part of CI): many concurrent clients order one SKU with little
//! stock, through the local stack's HTTP API, EventBridge rule, SQS poller and reservation.
//!
//! `tests/bin/bench-flash-sale [--orders 2000] [--units 100] [--clients 64] [--pollers 4] [--happy 200] [--shards 8]`
//!
//! First the happy path: `--happy` orders for a SKU with stock to spare, every one reserved; AWS
//! calls per order by function and operation, and the relay's PutEvents per event (entries
//! counted in the calls, so no subscriber adds to the bus's load). Then the sale:
//! accepted, rejected, oversold (must be 0), orders/s, p50/p99 of the POST and from POST to a
//! final status, AWS calls per order, the relay's PutEvents per event; and, measured after the
//! sale in the same run as denominators: the bare TransactWriteItems rate of the same Dynoxide,
//! and the bare SQS and EventBridge rates (`orderflow_tests::rates`) of LocalStack and of moto.
//!
//! Each sale runs twice, the SKU kept in one item and then split over `--shards` items (through
//! `Store::split_stock`, what `PUT /admin/stock/{sku}/{warehouse}/shards` calls): for each, the
//! writes asked of every stock item of the SKU, in all and in its busiest second, and the
//! orders/s one SKU would reach on DynamoDB (an item takes about 500 transactional writes/s).

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use orderflow::domain::{OrderId, OrderStatus};
use orderflow::store::Store;
use orderflow_tests::calls::CallCounter;
use orderflow_tests::emulators::{sdk_config, LocalStack};
use orderflow_tests::fixtures::{from_own_customer, order_body};
use orderflow_tests::local::{self, ApiClient, LocalOptions};
use orderflow_tests::rates;
use orderflow_tests::{Seed, Stack};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Options {
    orders: usize,
    happy: usize,
    units: i64,
    clients: usize,
    pollers: usize,
    shards: u32,
}

fn options() -> Result<Options, String> {
    let mut o = Options { orders: 2000, happy: 200, units: 100, clients: 64, pollers: 4, shards: 8 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).ok_or_else(|| format!("{} needs a value", pair[0]))?;
        let number: usize = value.parse().map_err(|_| format!("{} takes a number", pair[0]))?;
        match pair[0].as_str() {
            "--orders" => o.orders = number,
            "--happy" => o.happy = number,
            "--units" => o.units = number as i64,
            "--clients" => o.clients = number.max(1),
            "--pollers" => o.pollers = number.max(1),
            "--shards" => {
                o.shards = u32::try_from(number).ok().filter(|n| (2..=64).contains(n)).ok_or("--shards is 2 to 64")?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The same shape of write as one single-line reservation: a conditional stock decrement and
/// a hold put, in one transaction, from `clients` concurrent callers.
async fn bare_transact_rate(client: &aws_sdk_dynamodb::Client, table: &str, total: usize, clients: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..clients).map(|_| {
        let (client, table, next) = (client.clone(), table.to_owned(), next.clone());
        tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let stock = Update::builder()
                    .table_name(&table)
                    .key("PK", AttributeValue::S("SKU#BASELINE".into()))
                    .key("SK", AttributeValue::S("WH#HZ".into()))
                    .update_expression("SET available = available - :q, reserved = reserved + :q")
                    .condition_expression("available >= :q")
                    .expression_attribute_values(":q", AttributeValue::N("1".into()))
                    .build()
                    .unwrap();
                let hold = Put::builder()
                    .table_name(&table)
                    .item("PK", AttributeValue::S(format!("BASELINE#{}", ulid::Ulid::new())))
                    .item("SK", AttributeValue::S("HOLD".into()))
                    .condition_expression("attribute_not_exists(PK)")
                    .build()
                    .unwrap();
                client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().update(stock).build())
                    .transact_items(TransactWriteItem::builder().put(hold).build())
                    .send()
                    .await
                    .expect("baseline transaction");
            }
        })
    });
    futures::future::join_all(workers).await;
    total as f64 / started.elapsed().as_secs_f64()
}

/// Each order's final status, how long its POST took, how long until its final status.
type Outcome = (OrderStatus, Duration, Duration);

/// `orders` orders of one unit of `sku`, each from its own customer and device (this measures
/// stock, not risk), from `clients` concurrent clients; each followed to its final status.
async fn place_orders(api: &ApiClient, observer: &Store, sku: &str, orders: usize, clients: usize) -> Vec<Outcome> {
    // The shop backend submits for its customers (the body names each), as a storefront's
    // server would during a sale.
    let shop =
        serde_json::json!({"kind": "service", "client_id": "shop", "scopes": [orderflow::auth::ON_BEHALF_SCOPE]});
    let token = Arc::new(api.bearer(shop).await.expect("a token from the local issuer"));
    let next = Arc::new(AtomicUsize::new(0));
    let body = order_body(&[(sku, 1)], "Zhejiang");
    let prefix = format!("{sku}-{}", ulid::Ulid::new());
    let workers = (0..clients).map(|_| {
        let (api, observer, next, body, prefix, token) =
            (api.clone(), observer.clone(), next.clone(), body.clone(), prefix.clone(), token.clone());
        tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= orders {
                    return results;
                }
                let key = format!("{prefix}-{i}");
                let sent = Instant::now();
                let headers = [
                    ("content-type", "application/json"),
                    ("idempotency-key", key.as_str()),
                    ("authorization", token.as_str()),
                ];
                let (status, accepted) = api
                    .call("POST", "/orders", &headers, Some(from_own_customer(&body).to_string()))
                    .await
                    .expect("POST");
                let answered = sent.elapsed();
                assert_eq!(status, 202, "{accepted}");
                let id = OrderId::parse(accepted["order_id"].as_str().unwrap()).unwrap();
                loop {
                    let order = observer.order(id).await.expect("read").expect("stored");
                    if order.status != OrderStatus::Received {
                        results.push((order.status, answered, sent.elapsed()));
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    });
    futures::future::join_all(workers).await.into_iter().flat_map(Result::unwrap).collect()
}

fn print_calls(calls: &CallCounter, orders: usize) {
    println!("  AWS calls per order   {:.2}, by function:", calls.total() as f64 / orders as f64);
    for (operation, share) in calls.per_operation(orders) {
        println!("    {operation:<50} {share:.2}");
    }
    let put_events = calls.total_of_operation("EventBridge.PutEvents");
    let events = calls.events_sent();
    println!(
        "  events on the bus     {events} ({:.2} per order); relay PutEvents per event {:.3}",
        events as f64 / orders as f64,
        put_events as f64 / events.max(1) as f64
    );
}

/// One sale of `sku`, kept in `shards` items: outcomes, latencies, calls, the writes asked of
/// each of its stock items, and what that makes of one SKU on DynamoDB. Its orders/s and the
/// units oversold.
async fn flash_sale(
    api: &ApiClient,
    observer: &Store,
    stack: &Stack,
    calls: &CallCounter,
    o: &Options,
    (sku, shards): (&str, u32),
    settle: Duration,
) -> Result<(f64, i64), String> {
    let parsed = orderflow::domain::Sku::parse(sku).map_err(|e| e.detail)?;
    let warehouse = orderflow::domain::WarehouseId::parse("HZ").map_err(|e| e.detail)?;
    if shards > 1 {
        let now = time::OffsetDateTime::now_utc();
        observer.split_stock((&parsed, &warehouse), shards, "bench", now).await.map_err(|e| e.to_string())?;
        // Operations split before the sale opens: a warm reservation function reads the split
        // within its layout cache's minute.
        eprintln!("split {sku} over {shards} items; waiting a minute for the reservation functions' layout cache ...");
        tokio::time::sleep(Duration::from_secs(61)).await;
    }
    eprintln!(
        "flash sale of {sku} ({shards} stock items): {} orders for {} units from {} clients, {} pollers ...",
        o.orders, o.units, o.clients, o.pollers
    );
    tokio::time::sleep(settle).await;
    calls.reset();
    let started = Instant::now();
    let results = place_orders(api, observer, sku, o.orders, o.clients).await;
    let elapsed = started.elapsed();
    tokio::time::sleep(settle).await;

    let mut by_status: HashMap<&str, usize> = HashMap::new();
    for (status, _, _) in &results {
        *by_status.entry(status.as_str()).or_default() += 1;
    }
    let sorted = |pick: fn(&Outcome) -> Duration| {
        let mut all: Vec<Duration> = results.iter().map(pick).collect();
        all.sort();
        all
    };
    let (posts, latencies) = (sorted(|r| r.1), sorted(|r| r.2));
    let flash = stack.stock(sku, "HZ").await;
    let accepted = by_status.get("AWAITING_PAYMENT").copied().unwrap_or(0);
    let rejected = by_status.get("REJECTED").copied().unwrap_or(0);
    let below_zero: i64 = flash.available_by_shard.iter().map(|a| (-a).max(0)).sum();
    let oversold = (accepted as i64 - o.units).max(0) + (-flash.available).max(0) + below_zero;
    let rate = results.len() as f64 / elapsed.as_secs_f64();

    println!(
        "flash sale of {sku}: {} orders, {} units in {shards} stock item(s), {} clients, {} SQS pollers",
        o.orders, o.units, o.clients, o.pollers
    );
    println!("  accepted (reserved)   {accepted}");
    println!("  rejected (sold out)   {rejected}");
    println!("  oversold              {oversold}");
    println!(
        "  stock after           available {} reserved {} (conserved: {}); by shard {:?}",
        flash.available,
        flash.reserved,
        flash.available + flash.reserved == o.units,
        flash.available_by_shard
    );
    println!("  throughput            {rate:.0} orders/s ({:.1} s)", elapsed.as_secs_f64());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  POST answered         p50 {:.1} ms, p99 {:.1} ms",
        ms(percentile(&posts, 0.5)),
        ms(percentile(&posts, 0.99))
    );
    println!(
        "  POST to final status  p50 {:.1} ms, p99 {:.1} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
    print_calls(calls, o.orders);
    print_item_writes(calls, sku, o.orders, shards);
    Ok((rate, oversold))
}

/// The writes asked of each stock item of `sku`, and the model: with every item's writes spread
/// as they were here, how many orders/s keep the busiest item at DynamoDB's ~500 transactional
/// writes/s.
fn print_item_writes(calls: &CallCounter, sku: &str, orders: usize, shards: u32) {
    const ITEM_TRANSACTIONAL_WRITES_PER_SECOND: f64 = 500.0;
    let items = calls.stock_item_writes(&format!("SKU#{sku}"));
    println!("  writes per stock item (every TransactWriteItems/UpdateItem that names it, cancelled ones too):");
    for item in &items {
        println!("    {:<28} {:>6} in all, {:>4} in its busiest second", item.item, item.total, item.busiest_second);
    }
    let busiest = items.iter().map(|i| i.total).max().unwrap_or(0);
    let peak = items.iter().map(|i| i.busiest_second).max().unwrap_or(0);
    let per_order = busiest as f64 / orders as f64;
    println!(
        "  busiest item: {peak} writes in one second (limit ~{ITEM_TRANSACTIONAL_WRITES_PER_SECOND:.0}); {per_order:.2} of its writes per order"
    );
    if per_order > 0.0 {
        println!(
            "  model: one SKU on DynamoDB with {shards} item(s) and this spread: ~{:.0} orders/s before its busiest item reaches ~{ITEM_TRANSACTIONAL_WRITES_PER_SECOND:.0} transactional writes/s",
            ITEM_TRANSACTIONAL_WRITES_PER_SECOND / per_order
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let o = options()?;
    let localstack = LocalStack::start(None).map_err(|e| e.to_string())?;
    let calls = CallCounter::default();
    let stack = Stack::for_benchmark(&localstack.endpoint, &calls).await?;
    let seed: Seed = serde_json::from_value(json!({
        "warehouses": [{"warehouse_id": "HZ", "name": "Hangzhou", "regions": ["Zhejiang"]}],
        "stock": [
            {"sku": "FLASH", "warehouse_id": "HZ", "available": o.units},
            {"sku": "FLASHSPLIT", "warehouse_id": "HZ", "available": o.units},
            {"sku": "PLENTY", "warehouse_id": "HZ", "available": 1_000_000},
            {"sku": "BASELINE", "warehouse_id": "HZ", "available": 1_000_000_000}
        ]
    }))
    .map_err(|e| e.to_string())?;
    stack.seed(&seed.priced_at(orderflow_tests::fixtures::TEST_PRICE_MINOR, &[])).await?;
    // Reads for measuring go through a client the call counter does not see.
    let observer = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk_config(&stack.dynamodb_endpoint).await),
        &stack.config.table_name,
        1,
    );
    let stack = Arc::new(stack);
    let running = local::run(
        stack.clone(),
        LocalOptions { api_port: None, pollers_per_queue: o.pollers, ..LocalOptions::default() },
    )
    .await?;
    let api = ApiClient::new(running.api_url());
    // The relay publishes a decision's event after the order has its final status: give it
    // time to do so before the counts are read.
    let settle = Duration::from_secs(3);

    eprintln!("happy path: {} orders with stock to spare from 16 clients ...", o.happy);
    tokio::time::sleep(settle).await;
    calls.reset();
    let happy = place_orders(&api, &observer, "PLENTY", o.happy, 16).await;
    tokio::time::sleep(settle).await;
    let reserved = happy.iter().filter(|(status, _, _)| *status == OrderStatus::AwaitingPayment).count();
    println!("happy path: {} orders, {reserved} reserved", o.happy);
    print_calls(&calls, o.happy);

    let (rate, mut oversold) = flash_sale(&api, &observer, &stack, &calls, &o, ("FLASH", 1), settle).await?;
    let (_, split_oversold) = flash_sale(&api, &observer, &stack, &calls, &o, ("FLASHSPLIT", o.shards), settle).await?;
    oversold += split_oversold;
    running.stop().await;

    eprintln!("baseline: {} bare TransactWriteItems from {} clients ...", o.orders, o.clients);
    let baseline = bare_transact_rate(&stack.dynamodb, &stack.config.table_name, o.orders, o.clients).await;
    println!(
        "  bare TransactWriteItems on the same emulator: {baseline:.0}/s; orders/s is {:.1}% of it",
        100.0 * rate / baseline
    );
    let probes = o.orders.min(500);
    eprintln!("baseline: bare SQS and EventBridge rates, {probes} messages from {} clients ...", o.clients);
    rates::on_localstack_and_moto(&localstack, probes, o.clients).await?.print();
    if oversold != 0 {
        return Err("OVERSOLD".into());
    }
    Ok(())
}
