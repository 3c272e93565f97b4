//! The cost of protecting personal data at intake (not part of CI).
//!
//! `tests/bin/bench-personal-data [--seals 20000] [--orders 200]`
//!
//! 1. In process, with a warm data key and fingerprint key (each fetched from LocalStack's KMS
//!    once, as a warm function has them): what intake does per order (seal the five fields,
//!    fingerprint phone, address and IP) and what a resend does (open the phone's field), µs.
//! 2. Cold: the first seal and the first fingerprint of a new instance, each a KMS round trip
//!    (to LocalStack on loopback: AWS KMS adds its network latency, a few ms in region).
//! 3. `--orders` orders through intake on the local stack: KMS calls per order by operation,
//!    beside intake's other AWS calls, and intake's latency.

use orderflow::domain::Phone;
use orderflow::personal::{order_context, PersonalData};
use orderflow_tests::calls::CallCounter;
use orderflow_tests::cli::option;
use orderflow_tests::emulators::LocalStack;
use orderflow_tests::fixtures::{from_own_customer, one_warehouse, order_body, submit};
use orderflow_tests::Stack;
use std::hint::black_box;
use std::time::Instant;

fn clear() -> PersonalData {
    PersonalData {
        recipient: "Li Lei".into(),
        phone: Phone::parse("13800138000").expect("valid"),
        street: Some("Wensan Road".into()),
        house_number: Some("88".into()),
        client_ip: Some("198.51.100.23".into()),
    }
}

fn millis(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let seals = option("--seals", 20_000)?;
    let orders = option("--orders", 200)?;
    let localstack = LocalStack::start(None).map_err(|e| e.to_string())?;
    let calls = CallCounter::default();
    let stack = Stack::for_benchmark(&localstack.endpoint, &calls).await?;
    let store = stack.store();

    // Cold: a new instance's first seal and first fingerprint.
    let keys = stack.personal_keys_for("bench");
    let data = clear();
    let id = orderflow::domain::OrderId::generate();
    let started = Instant::now();
    let sealed = keys.sealer.seal(&data, &order_context(id)).await.map_err(|e| e.to_string())?;
    let first_seal = millis(started);
    let started = Instant::now();
    let fingerprinter = keys.fingerprints.fingerprinter(&store).await.map_err(|e| e.to_string())?;
    let first_fingerprint = millis(started);
    println!("cold instance (LocalStack KMS on loopback): first seal {first_seal:.2} ms (GenerateDataKey), first fingerprint key {first_fingerprint:.2} ms (GetItem, GenerateDataKey, conditional PutItem)");

    // Warm: per order, what intake and a resend do.
    let ip: std::net::IpAddr = "198.51.100.23".parse().expect("an IP");
    let started = Instant::now();
    for _ in 0..seals {
        let id = orderflow::domain::OrderId::generate();
        black_box(keys.sealer.seal(black_box(&data), &order_context(id)).await.map_err(|e| e.to_string())?);
        black_box(fingerprinter.phone(&data.phone));
        black_box(fingerprinter.address(&["CN", "Zhejiang", "Hangzhou", "", "Wensan Road", "88"]));
        black_box(fingerprinter.ip(ip));
    }
    let per_order = started.elapsed().as_secs_f64() * 1e6 / seals as f64;
    let started = Instant::now();
    for _ in 0..seals {
        black_box(keys.sealer.open_field(&sealed, &order_context(id), "phone").await.map_err(|e| e.to_string())?);
    }
    let per_open = started.elapsed().as_secs_f64() * 1e6 / seals as f64;
    println!("warm, in process, {seals} orders: seal 5 fields + 3 fingerprints {per_order:.2} µs per order; open the phone (resend) {per_open:.2} µs");

    // Through intake: KMS calls per order among the rest, and latency.
    stack.seed(&one_warehouse(&[("TEA", 1_000_000)])).await?;
    let intake = stack.intake();
    calls.reset();
    let mut latencies = Vec::with_capacity(orders);
    for i in 0..orders {
        let body = from_own_customer(&order_body(&[("TEA", 1)], "Zhejiang"));
        let started = Instant::now();
        let (status, answer) = submit(&intake, &format!("bench-{i}"), &body).await;
        latencies.push(millis(started));
        assert_eq!(status, 202, "{answer}");
    }
    latencies.sort_by(f64::total_cmp);
    let median = latencies[latencies.len() / 2];
    println!("intake, {orders} orders from a new instance (emulators on loopback): median {median:.2} ms, AWS calls per order:");
    for (operation, count) in calls.snapshot() {
        println!("    {operation:<40} {:.3}", count as f64 / orders as f64);
    }
    println!("  sealing's share of the median: {:.1} %", per_order / 1e3 / median * 100.0);
    Ok(())
}
