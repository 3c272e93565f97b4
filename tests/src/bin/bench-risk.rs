//! Risk scoring benchmark (not part of CI).
//!
//! `tests/bin/bench-risk [--scores 200000] [--orders 200]`
//!
//! 1. Scoring alone, in process: the sources' default rules against a busy customer's context;
//!    prints microseconds per order.
//! 2. What scoring adds to intake in AWS calls: `--orders` orders through the intake handler
//!    against the emulators, calls counted per operation.

use orderflow::domain::address::AddressKind;
use orderflow::domain::risk::{RiskContext, RiskRules, RiskSubject};
use orderflow::domain::PaymentMethod;
use orderflow_tests::calls::CallCounter;
use orderflow_tests::cli::option;
use orderflow_tests::emulators::LocalStack;
use orderflow_tests::fixtures::{from_own_customer, one_warehouse, order_body, submit};
use orderflow_tests::rates;
use orderflow_tests::Stack;
use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), String> {
    let scores = option("--scores", 200_000)?;
    let orders = option("--orders", 200)?;

    let rules = RiskRules::defaults();
    let context = RiskContext {
        customer_orders: vec![(60, 4)],
        device_orders: vec![(5, 3)],
        device_accounts: 2,
        previous_orders: 25,
        previous_total_minor: 400_000,
        known_addresses: (0..20).map(|i| format!("addr-{i}")).collect::<BTreeSet<_>>(),
        known_cards: BTreeSet::from(["card-1".to_owned()]),
        month_orders: 6,
        month_cancels: 1,
        month_refunds: 1,
    };
    let subject = RiskSubject {
        customer_id: "cust-1",
        tier: Some(2),
        phone: "+8613800138000",
        phone_fingerprint: "fp:phone",
        address_fingerprint: "addr-new",
        address_kind: AddressKind::Street,
        province: "Zhejiang",
        device_id: "dev-1",
        client_ip_fingerprint: Some("fp:ip"),
        card_fingerprint: Some("card-2"),
        payment_method: PaymentMethod::Online,
        total_minor: 59_900,
        resaleable_skus: vec!["PHONE-X"],
        at: time::OffsetDateTime::now_utc(),
    };
    let started = Instant::now();
    let mut total = 0u64;
    for _ in 0..scores {
        total += u64::from(black_box(rules.assess(black_box(&subject), black_box(&context))).score);
    }
    let per_order = started.elapsed().as_secs_f64() * 1e6 / scores as f64;
    println!(
        "risk scoring in process: {scores} orders, {} rules, {per_order:.2} µs per order (score {})",
        rules.rules.len(),
        total / scores as u64
    );

    let localstack = LocalStack::start(None).map_err(|e| e.to_string())?;
    let calls = CallCounter::default();
    let stack = Stack::for_benchmark(&localstack.endpoint, &calls).await?;
    stack.seed(&one_warehouse(&[("TEA", 1_000_000)])).await?;
    let intake = stack.intake();
    calls.reset();
    for i in 0..orders {
        let (status, body) =
            submit(&intake, &format!("bench-{i}"), &from_own_customer(&order_body(&[("TEA", 1)], "Zhejiang"))).await;
        assert_eq!(status, 202, "{body}");
    }
    println!(
        "intake with risk scoring: {orders} orders, AWS calls per order {:.2}",
        calls.total() as f64 / orders as f64
    );
    for (operation, count) in calls.snapshot() {
        println!("    {operation:<40} {:.3}", count as f64 / orders as f64);
    }
    println!("  scoring's share: the BatchGetItem (context, with the catalogue and profile) and the rules GetItem (once per minute per instance); its counters ride in the order's TransactWriteItems");
    rates::on_localstack_and_moto(&localstack, 500, 16).await?.print();
    Ok(())
}
