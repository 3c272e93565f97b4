//! Many one-line orders at once, straight through the store (no HTTP, no bus), for the
//! benchmarks: each order stored as intake stores it and reserved as reservation reserves it,
//! then left holding until a given time or paid as the payment processor pays it.

use crate::fixtures::{catalogue_item, order_body, TEST_PRICE_MINOR};
use orderflow::domain::{
    parse_order_request, price_lines, single_warehouse, Limits, Order, OrderId, OrderStatus, Quantity, Sku, WarehouseId,
};
use orderflow::store::{IdempotencyRecord, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use time::OffsetDateTime;

/// What becomes of each bulk order once reserved.
#[derive(Clone, Copy)]
pub enum Fate {
    /// Its hold expires at the time the function gives for the order's index.
    HeldUntil(fn(OffsetDateTime, usize, usize) -> OffsetDateTime),
    /// Paid at once: units sold, the hold committed (its OrderPaid comes from the stream).
    Paid,
}

/// `count` orders of one `sku` unit from warehouse HZ (Zhejiang), made by 32 concurrent workers
/// at `now`; their ids.
pub async fn orders(store: &Store, sku: &str, count: usize, now: OffsetDateTime, fate: Fate) -> Vec<OrderId> {
    let request =
        parse_order_request(&order_body(&[(sku, 1)], "Zhejiang"), None, &Limits::default(), now).expect("valid order");
    let sku = Sku::parse(sku).expect("a valid SKU");
    let catalogue = std::collections::HashMap::from([(sku.clone(), catalogue_item(sku.as_str(), TEST_PRICE_MINOR))]);
    let (lines, total) = price_lines(&request.lines, &catalogue, request.currency, now).expect("priced");
    let draft = request.priced(lines, total);
    let plan = single_warehouse(&[(sku, Quantity::new(1).unwrap())], &WarehouseId::parse("HZ").unwrap());
    let next = Arc::new(AtomicUsize::new(0));
    let workers = (0..32).map(|_| {
        let (store, draft, plan, next) = (store.clone(), draft.clone(), plan.clone(), next.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return ids;
                }
                let order = Order::receive(draft.clone(), OrderId::generate(), None, now);
                let id = order.order_id;
                let record = IdempotencyRecord {
                    request_hash: String::new(),
                    order_id: id,
                    ttl: now.unix_timestamp() + 3_600,
                    response_status: 202,
                    response_body: String::new(),
                };
                store
                    .claim_key_and_create_order(&format!("bulk-{id}"), &record, &order, Vec::new())
                    .await
                    .expect("stored");
                let expires_at = match fate {
                    Fate::HeldUntil(at) => Some(at(now, i, count)),
                    Fate::Paid => Some(now + time::Duration::minutes(30)),
                };
                store.reserve(id, &plan, OrderStatus::AwaitingPayment, expires_at, now).await.expect("reserved");
                if let Fate::Paid = fate {
                    let paid = store.commit(store.pay_change(id, &plan, &format!("pay_{id}"), now)).await;
                    assert!(paid.expect("paid"), "the order was awaiting payment");
                }
                ids.push(id);
            }
        })
    });
    futures::future::join_all(workers).await.into_iter().flat_map(Result::unwrap).collect()
}
