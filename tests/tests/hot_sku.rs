//! A flash-sale SKU's stock split over shard items, against the emulators: concurrent orders
//! never oversell and sell every unit the shards hold together, a line larger than any shard is
//! served by gathering, the units an order holds move on the shard that reserved them, and a
//! merge brings every available unit home. Staff see one figure per SKU and warehouse.

use orderflow::clock::Clock;
use orderflow::domain::{OrderId, OrderStatus, Sku, WarehouseId};
use orderflow::events::OrderReceived;
use orderflow::handlers::fulfilment::make_shipments;
use orderflow::handlers::hold_expiry::sweep;
use orderflow::handlers::stock_reservation::reserve_order;
use orderflow::store::AuditTrail;
use orderflow_tests::fixtures::{
    cancel_order, deliver_payment, from_own_customer, one_warehouse, order_body, payment_event, process_payment_queue,
    reserved_orders, staff, submit, TEST_PRICE_MINOR,
};
use orderflow_tests::warehouse::{hand_over, shipments};
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use time::Duration;

const SHARDS_ROUTE: &str = "/admin/stock/{sku}/{warehouse}/shards";

async fn split(stack: &Stack, sku: &str, shards: i64) -> (u16, Value) {
    let path = format!("/admin/stock/{sku}/HZ/shards");
    staff(&stack.staff(), "PUT", &path, SHARDS_ROUTE, Some(json!({ "shards": shards }))).await
}

/// `orders` orders of `quantity` units of `sku`, submitted at once, then reserved at once by
/// `containers` warm reservation functions (each with its own caches); each order's status after.
async fn race(
    stack: &Stack,
    sku: &str,
    quantity: i64,
    orders: usize,
    containers: usize,
) -> Vec<(OrderId, OrderStatus)> {
    let intake = stack.intake();
    let body = order_body(&[(sku, quantity)], "Zhejiang");
    let submissions = (0..orders).map(|i| {
        let (intake, body) = (intake.clone(), from_own_customer(&body));
        let key = format!("{sku}-{i}-{}", ulid::Ulid::new());
        tokio::spawn(async move { submit(&intake, &key, &body).await })
    });
    let mut ids = Vec::new();
    for submitted in futures::future::join_all(submissions).await {
        let (status, accepted) = submitted.unwrap();
        assert_eq!(status, 202, "{accepted}");
        ids.push(OrderId::parse(accepted["order_id"].as_str().unwrap()).unwrap());
    }
    let functions: Vec<_> = (0..containers).map(|_| stack.reservation()).collect();
    let reservations = ids.iter().enumerate().map(|(i, id)| {
        let (deps, store, id) = (functions[i % containers].clone(), stack.store(), *id);
        tokio::spawn(async move {
            let order = store.order(id).await.unwrap().unwrap();
            reserve_order(&deps, &OrderReceived::of(&order)).await.unwrap();
        })
    });
    futures::future::join_all(reservations).await.into_iter().for_each(Result::unwrap);
    let mut outcome = Vec::new();
    for id in ids {
        outcome.push((id, stack.store().order(id).await.unwrap().unwrap().status));
    }
    outcome
}

fn count(outcome: &[(OrderId, OrderStatus)], status: OrderStatus) -> usize {
    outcome.iter().filter(|(_, s)| *s == status).count()
}

/// A stocktake of HOT in HZ as operations.
async fn take_stock(stack: &Stack, available: i64) -> (u16, Value) {
    let body = Some(json!({ "available": available }));
    staff(&stack.staff(), "PUT", "/admin/stock/HOT/HZ", "/admin/stock/{sku}/{warehouse}", body).await
}

async fn shard_of(stack: &Stack, id: OrderId) -> u32 {
    stack.store().order(id).await.unwrap().unwrap().lines[0].stock_shard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_orders_for_fifty_units_split_over_eight_shards_reserve_exactly_fifty() {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("HOT", 50)])).await.unwrap();
    let (status, figure) = split(&stack, "HOT", 8).await;
    assert_eq!((status, figure["available"].as_i64(), figure["shards"].as_i64()), (200, Some(50), Some(8)), "{figure}");
    let by_shard: Vec<i64> = serde_json::from_value(figure["available_by_shard"].clone()).unwrap();
    assert_eq!(by_shard, vec![7, 7, 6, 6, 6, 6, 6, 6], "spread evenly, the total kept");

    let outcome = race(&stack, "HOT", 1, 200, 4).await;
    assert_eq!(count(&outcome, OrderStatus::AwaitingPayment), 50, "every unit sold, none twice");
    assert_eq!(count(&outcome, OrderStatus::Rejected), 150);
    let hot = stack.stock("HOT", "HZ").await;
    assert_eq!((hot.available, hot.reserved), (0, 50), "one figure: the sums over every item");
    assert_eq!(hot.available_by_shard, vec![0; 8], "no shard below zero, none left with a unit");
    let mut used = BTreeMap::<u32, usize>::new();
    for (id, _) in outcome.iter().filter(|(_, s)| *s == OrderStatus::AwaitingPayment) {
        *used.entry(shard_of(&stack, *id).await).or_default() += 1;
    }
    assert!(used.len() >= 6, "reservations spread over the shards: {used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_larger_than_any_shard_is_served_by_gathering_and_only_a_real_shortage_is_refused() {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("HOT", 6)])).await.unwrap();
    assert_eq!(split(&stack, "HOT", 3).await.0, 200);
    assert_eq!(stack.stock("HOT", "HZ").await.available_by_shard, vec![2, 2, 2]);

    let five = race(&stack, "HOT", 5, 1, 1).await;
    assert_eq!(five[0].1, OrderStatus::AwaitingPayment, "5 of the 6 units, though no shard had 5");
    let hot = stack.stock("HOT", "HZ").await;
    assert_eq!((hot.available, hot.reserved), (1, 5));
    assert_eq!(hot.available_by_shard.iter().sum::<i64>(), 1);
    assert_eq!(hot.available_by_shard.iter().filter(|a| **a < 0).count(), 0);

    let two = race(&stack, "HOT", 2, 1, 1).await;
    assert_eq!(two[0].1, OrderStatus::Rejected, "2 when the shards hold 1 in all");
    let rejected = stack.store().order(two[0].0).await.unwrap().unwrap();
    assert_eq!(rejected.short_lines[0].available, 1, "the shortage names the sum");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_cancellation_and_expiry_move_units_on_the_shard_that_reserved_them() {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("HOT", 8)])).await.unwrap();
    assert_eq!(split(&stack, "HOT", 4).await.0, 200);
    let outcome = race(&stack, "HOT", 1, 6, 2).await;
    assert_eq!(count(&outcome, OrderStatus::AwaitingPayment), 6);
    let ids: Vec<OrderId> = outcome.iter().map(|(id, _)| *id).collect();
    let shards: BTreeSet<u32> =
        futures::future::join_all(ids.iter().map(|id| shard_of(&stack, *id))).await.into_iter().collect();
    assert!(shards.len() > 1, "the six went to several shards: {shards:?}");

    let (paid, cancelled) = (ids[0], ids[1]);
    let now = clock.now().unix_timestamp();
    let event = payment_event("payment.succeeded", &paid.to_string(), TEST_PRICE_MINOR, "CNY", "pay_hot", now);
    assert_eq!(deliver_payment(&stack, &event).await.0, 200);
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(cancel_order(&stack.intake(), &cancelled.to_string()).await.0, 200);
    clock.advance(Duration::hours(2));
    sweep(&stack.expiry(), None).await.unwrap();

    let hot = stack.stock("HOT", "HZ").await;
    assert_eq!((hot.available, hot.reserved, hot.sold), (7, 0, 1), "one sold, five back on sale");
    let mut expected = vec![2; 4];
    expected[shard_of(&stack, paid).await as usize] -= 1;
    assert_eq!(hot.available_by_shard, expected, "each unit back on the shard it was reserved from");
    let statuses: Vec<OrderStatus> = futures::future::join_all(
        ids.iter().map(|id| async { stack.store().order(*id).await.unwrap().unwrap().status }),
    )
    .await;
    assert_eq!(statuses[0], OrderStatus::Paid);
    assert_eq!(statuses[1], OrderStatus::Cancelled);
    assert!(statuses[2..].iter().all(|s| *s == OrderStatus::Expired), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_brings_every_available_unit_home_and_a_stocktake_waits_for_it() {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("HOT", 20)])).await.unwrap();
    assert_eq!(split(&stack, "HOT", 5).await.0, 200);
    let layouts_before = stack.store().shard_layouts().await.unwrap();
    assert_eq!(count(&race(&stack, "HOT", 1, 7, 2).await, OrderStatus::AwaitingPayment), 7);
    let stocktake = take_stock(&stack, 30).await;
    assert_eq!((stocktake.0, stocktake.1["code"].as_str()), (409, Some("stock-split")));

    let (status, merged) = split(&stack, "HOT", 1).await;
    assert_eq!((status, merged["available"].as_i64(), merged["reserved"].as_i64()), (200, Some(13), Some(7)));
    assert_eq!(merged["available_by_shard"], json!([13, 0, 0, 0, 0]), "every available unit in the SKU's own item");
    let pair = (Sku::parse("HOT").unwrap(), WarehouseId::parse("HZ").unwrap());
    assert_eq!(layouts_before.get(&pair), Some(&5), "reservation read the split from the registry");
    let layouts = stack.store().shard_layouts().await.unwrap();
    assert!(!layouts.contains_key(&pair), "no longer spread");

    let after = race(&stack, "HOT", 1, 3, 1).await;
    assert!(after.iter().all(|(_, s)| *s == OrderStatus::AwaitingPayment));
    for (id, _) in &after {
        assert_eq!(shard_of(&stack, *id).await, 0, "new orders reserve on the SKU's own item");
    }
    let stocktake = take_stock(&stack, 30).await;
    assert_eq!((stocktake.0, stocktake.1["available"].as_i64()), (200, Some(30)));
    let trail = AuditTrail::Subject("stock/HOT/HZ".to_owned());
    let (audit, _) = stack.store().audit_trail(&trail, None, 50).await.unwrap();
    assert_eq!(audit.iter().filter(|r| r.action == "stock.split").count(), 2, "each split audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_is_refused_for_a_count_out_of_range_and_for_stock_never_recorded() {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("HOT", 5)])).await.unwrap();
    for shards in [0, 65, -1] {
        let (status, problem) = split(&stack, "HOT", shards).await;
        assert_eq!((status, problem["code"].as_str()), (400, Some("shards-out-of-range")), "{shards}");
    }
    assert_eq!(split(&stack, "NEVER", 4).await.0, 404);
    let (status, _) = orderflow_tests::fixtures::staff_as(
        Some(orderflow_tests::fixtures::warehouse_staff()),
        &stack.staff(),
        "PUT",
        "/admin/stock/HOT/HZ/shards",
        SHARDS_ROUTE,
        Some(json!({"shards": 4})),
    )
    .await;
    assert_eq!(status, 403, "operations decide a split, not the warehouse");
    assert_eq!(stack.stock("HOT", "HZ").await.shards, None, "nothing split");
}

/// A parcel's units leave the SKU's own item, whichever shard reserved them: on a split SKU the
/// reserved and sold counters are sums over the items, so that move must not be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cash_on_delivery_parcel_reserved_on_another_shard_is_handed_over_and_sums_stay_right() {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 16)])).await.unwrap();
    assert_eq!(split(&stack, "TEA", 16).await.0, 200);
    let mut body = order_body(&[("TEA", 1)], "Zhejiang");
    body["payment_method"] = json!("cash_on_delivery");
    // Orders until one is reserved off the SKU's own item; those before it stay reserved.
    let mut placed: i64 = 0;
    let order_id = loop {
        assert!(placed < 5, "one of five orders reserved off the SKU's own item");
        let id = reserved_orders(&stack, 1, &body).await[0];
        placed += 1;
        if shard_of(&stack, id).await != 0 {
            break id;
        }
    };
    let approve = format!("/admin/orders/{order_id}/approve");
    assert_eq!(staff(&stack.staff(), "POST", &approve, "/admin/orders/{id}/approve", None).await.0, 200);
    make_shipments(&stack.fulfilment_core("fulfilment"), order_id).await.unwrap();
    let shipment = shipments(&stack, order_id).await[0].shipment_id.to_string();
    hand_over(&stack, &shipment, &[("TEA", 1)]).await;

    let tea = stack.stock("TEA", "HZ").await;
    let still_held = placed - 1;
    assert_eq!(
        (tea.available, tea.reserved, tea.sold),
        (16 - placed, still_held, 1),
        "the handed-over unit is sold, summed"
    );
}

/// The first try of each order is unread: the layout comes from the registry the function
/// caches, and the order id picks the shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_units_to_spare_each_reservation_is_one_unread_write_spread_over_the_shards() {
    let (stack, _, calls) = Stack::for_test_counting_calls().await;
    stack.seed(&one_warehouse(&[("HOT", 800)])).await.unwrap();
    assert_eq!(split(&stack, "HOT", 8).await.0, 200);
    calls.reset();
    let outcome = race(&stack, "HOT", 1, 40, 2).await;
    assert_eq!(count(&outcome, OrderStatus::AwaitingPayment), 40);
    let reservation = calls.snapshot();
    let of = |operation: &str| reservation.get(&format!("stock-reservation DynamoDB.{operation}")).copied();
    assert_eq!(of("TransactWriteItems"), Some(40), "{reservation:?}");
    assert_eq!(of("BatchGetItem"), None, "no stock read: {reservation:?}");
    assert_eq!(of("Query"), Some(4), "the warehouses and the registry, once per warm function: {reservation:?}");
    let mut used = BTreeSet::new();
    for (id, _) in &outcome {
        used.insert(shard_of(&stack, *id).await);
    }
    assert!(used.len() >= 6, "spread by order id: {used:?}");
}
