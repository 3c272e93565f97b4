//! Fulfilment benchmark (not part of CI).
//!
//! `tests/bin/bench-fulfilment [--orders 2000] [--consumers 4] [--handed-over 200]`
//!
//! 1. Burst: `--orders` paid orders, made through the store; their OrderPaid events reach the
//!    FulfilmentQueue as in production (the table's stream, the event relay, the bus, the
//!    template's rule). Once all are waiting, `--consumers` concurrent consumers (the SQS event
//!    source at that concurrency: batches of 10, partial batch failures, deletes) make the
//!    shipments: shipments made per second, every order checked for exactly one shipment, AWS
//!    calls per shipment by operation, and the relay's calls for the ShipmentCreated events.
//! 2. Paid to handed over: `--handed-over` of those shipments taken through the fulfilment API as
//!    a warehouse would (waves of 50, a scan, pack, label through the Courier port, the photo's
//!    presigned PUT and the upload, hand-over): AWS calls per shipment by function and
//!    operation, the relay's included. The upload itself is the handheld's PUT to S3, not a
//!    function's call, and is left out.

use orderflow::handlers::fulfilment::handle_batch;
use orderflow_tests::bulk::{self, Fate};
use orderflow_tests::calls::CallCounter;
use orderflow_tests::cli::option;
use orderflow_tests::emulators::LocalStack;
use orderflow_tests::fixtures::{one_warehouse, warehouse_staff};
use orderflow_tests::warehouse::{call, post, scan, upload_photo};
use orderflow_tests::Stack;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const QUEUE: &str = "FulfilmentQueue";
const SKU: &str = "PARCEL";

/// Messages waiting on the queue, by the harness's own client.
async fn waiting(stack: &Stack) -> Result<usize, String> {
    let attributes = stack
        .sqs
        .get_queue_attributes()
        .queue_url(stack.provisioned.queue_url(QUEUE))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let count = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|v| v.parse().ok());
    Ok(count.unwrap_or(0))
}

/// The SQS event source at `consumers` concurrency: receive up to 10, invoke, delete what did
/// not fail; until `expected` messages were handled and the queue is empty.
async fn consume(stack: &Arc<Stack>, consumers: usize, expected: usize) -> usize {
    let handled = Arc::new(AtomicUsize::new(0));
    let workers = (0..consumers).map(|_| {
        let (stack, handled) = (stack.clone(), handled.clone());
        tokio::spawn(async move {
            let deps = stack.fulfilment_core("fulfilment");
            loop {
                let event = stack.receive(QUEUE, 10, 1).await;
                if event.records.is_empty() {
                    if handled.load(Ordering::Relaxed) >= expected {
                        return;
                    }
                    continue;
                }
                let response = handle_batch(&deps, event.clone()).await;
                let failed: Vec<&str> =
                    response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
                let done: Vec<_> = (event.records.into_iter())
                    .filter(|m| !failed.contains(&m.message_id.as_deref().unwrap_or_default()))
                    .collect();
                handled.fetch_add(done.len(), Ordering::Relaxed);
                stack.delete(QUEUE, &done).await;
            }
        })
    });
    futures::future::join_all(workers).await;
    handled.load(Ordering::Relaxed)
}

/// Take shipments of warehouse HZ from pending to handed over, a wave of up to 50 at a time,
/// until `count` are; how many were.
async fn hand_over(stack: &Stack, count: usize) -> usize {
    let mut handed = 0;
    while handed < count {
        let size = (count - handed).min(50);
        let path = "/admin/warehouses/HZ/waves";
        let body = Some(json!({ "max_shipments": size }));
        let (status, wave) = call(stack, &warehouse_staff(), "POST", path, "/admin/warehouses/{id}/waves", body).await;
        assert_eq!(status, 201, "{wave}");
        let wave_id = wave["wave"]["wave_id"].as_str().expect("a wave id");
        for shipment in wave["wave"]["shipments"].as_array().expect("the wave's shipments") {
            let shipment = shipment.as_str().expect("a shipment id");
            assert_eq!(scan(stack, wave_id, shipment, SKU, 1).await.0, 200);
            for step in ["pack", "label"] {
                assert_eq!(post(stack, &warehouse_staff(), shipment, step, None).await.0, 200, "{step}");
            }
            upload_photo(stack, shipment, 4096).await;
            assert_eq!(post(stack, &warehouse_staff(), shipment, "hand-over", None).await.0, 200);
            handed += 1;
        }
    }
    handed
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let orders = option("--orders", 2_000)?;
    let consumers = option("--consumers", 4)?;
    let handed_over = option("--handed-over", 200)?.min(orders);
    let localstack = LocalStack::start(None).map_err(|e| e.to_string())?;
    let calls = CallCounter::default();
    let stack = Arc::new(Stack::for_benchmark(&localstack.endpoint, &calls).await?);
    stack.seed(&one_warehouse(&[(SKU, orders as i64)])).await?;

    eprintln!("making {orders} paid orders and relaying their events ...");
    let ids = bulk::orders(&stack, SKU, orders, stack.clock.now(), Fate::Paid).await;
    stack.relay().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while waiting(&stack).await? < orders && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("{} OrderPaid waiting on {QUEUE}; consuming ...", waiting(&stack).await?);

    calls.reset();
    let started = Instant::now();
    let handled = consume(&stack, consumers, orders).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut one_each = 0;
    for id in &ids {
        let (_, shipments) = stack.store().order_and_shipments(*id).await.map_err(|e| e.to_string())?;
        one_each += usize::from(shipments.len() == 1);
    }
    println!("fulfilment: a burst of {orders} OrderPaid, {consumers} concurrent consumers");
    println!("  messages handled      {handled} in {elapsed:.1} s");
    println!("  shipments made/s      {:.0}", orders as f64 / elapsed);
    println!("  orders with exactly one shipment: {one_each} of {orders}");
    stack.relay().await;
    println!("  then the relay's share: the ShipmentCreated events (and the orders' own changes)");
    calls.print_per(orders, "shipment");

    eprintln!("taking {handed_over} shipments to the courier ...");
    calls.reset();
    let started = Instant::now();
    let handed = hand_over(&stack, handed_over).await;
    let elapsed = started.elapsed().as_secs_f64();
    stack.relay().await;
    println!("paid to handed over: {handed} shipments through the fulfilment API in {elapsed:.1} s, then relayed");
    calls.print_per(handed, "shipment");
    let sold = stack.stock(SKU, "HZ").await;
    println!(
        "  stock after           available {} sold {} (every unit sold once: {})",
        sold.available,
        sold.sold,
        sold.sold as usize == orders
    );
    orderflow_tests::rates::on_localstack_and_moto(&localstack, 500, 16).await?.print();
    Ok(())
}
