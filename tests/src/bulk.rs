//! Many one-line orders at once, straight through the store (no HTTP, no bus), for the
//! benchmarks: each order stored as intake stores it and reserved as reservation reserves it,
//! then left holding until a given time or paid as the payment processor pays it; and paid
//! orders' parcels made by fulfilment and recorded delivered.

use crate::fixtures::{catalogue_item, order_body, TEST_PRICE_MINOR};
use orderflow::domain::{
    parse_order_request, price_lines, single_warehouse, Limits, Order, OrderId, OrderStatus, Quantity, Sku, WarehouseId,
};
use orderflow::store::IdempotencyRecord;
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
    /// Paid at once, each by a customer of its own (`bulk-<n>`).
    PaidByOwnCustomer,
}

/// `count` orders of one `sku` unit from warehouse HZ (Zhejiang), made by 32 concurrent workers
/// at `now`; their ids, the `i`th order's `i`th (customer `bulk-<i>` with [`Fate::PaidByOwnCustomer`]).
pub async fn orders(stack: &crate::Stack, sku: &str, count: usize, now: OffsetDateTime, fate: Fate) -> Vec<OrderId> {
    let store = &stack.store();
    // Sealed as intake seals them, with the benchmark's own warm sealer.
    let sealer = stack.sealer_for("bulk");
    let personal = orderflow::personal::PersonalData {
        recipient: "Li Lei".into(),
        phone: orderflow::domain::Phone::parse("13800138000").expect("valid"),
        street: Some("Wensan Road".into()),
        house_number: Some("88".into()),
        client_ip: None,
    };
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
        let (sealer, personal) = (sealer.clone(), personal.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return ids;
                }
                let mut draft = draft.clone();
                if let Fate::PaidByOwnCustomer = fate {
                    draft.customer_id = orderflow::domain::CustomerId::parse(&format!("bulk-{i}")).expect("valid");
                }
                let id = OrderId::generate();
                let sealed = sealer.seal(&personal, &orderflow::personal::order_context(id)).await.expect("sealed");
                let order = Order::receive(draft, id, sealed, now);
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
                    Fate::Paid | Fate::PaidByOwnCustomer => Some(now + time::Duration::minutes(30)),
                };
                store.reserve(id, &plan, OrderStatus::AwaitingPayment, expires_at, now).await.expect("reserved");
                if let Fate::Paid | Fate::PaidByOwnCustomer = fate {
                    let paid = store.commit(store.pay_change(id, &plan, &format!("pay_{id}"), now)).await;
                    assert!(paid.expect("paid"), "the order was awaiting payment");
                }
                ids.push((i, id));
            }
        })
    });
    let mut ids: Vec<(usize, OrderId)> =
        futures::future::join_all(workers).await.into_iter().flat_map(Result::unwrap).collect();
    ids.sort_unstable();
    ids.into_iter().map(|(_, id)| id).collect()
}

/// Make each paid order's shipments (fulfilment's own function) and record them handed over and
/// delivered at `now` with the order DELIVERED, as the last courier report leaves them (one
/// transaction of the store's own writes, without the picking and the courier's pushes between),
/// by 16 concurrent workers.
pub async fn deliver(stack: &crate::Stack, ids: &[OrderId], now: OffsetDateTime) {
    use orderflow::domain::tracking::{Tracking, TrackingStatus};
    use orderflow::domain::ShipmentStatus;
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(ids.to_vec());
    let workers = (0..16).map(|_| {
        let (deps, next, ids) = (stack.fulfilment_core("fulfilment"), next.clone(), ids.clone());
        tokio::spawn(async move {
            let store = deps.common.store.clone();
            while let Some(&id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                orderflow::handlers::fulfilment::make_shipments(&deps, id).await.expect("shipments made");
                let (order, shipments) = store.order_and_shipments(id).await.expect("read");
                let order = order.expect("the order");
                let mut writes = Vec::new();
                for shipment in &shipments {
                    let mut tracking = Tracking::default();
                    tracking.hand_over(now);
                    (tracking.status, tracking.delivered_at) = (Some(TrackingStatus::Delivered), Some(now));
                    let changed = orderflow::domain::Shipment {
                        status: ShipmentStatus::HandedOver,
                        tracking: Some(tracking),
                        ..shipment.clone()
                    };
                    writes.push(
                        store
                            .put_shipment(orderflow::store::ShipmentWrite { shipment: &changed, seen: Some(shipment) }),
                    );
                }
                writes.push(store.order_delivery_ends(&order, OrderStatus::Delivered, Some(now), now));
                assert!(store.commit(writes).await.expect("delivered"), "nothing else moves these orders");
            }
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker.expect("worker");
    }
}
