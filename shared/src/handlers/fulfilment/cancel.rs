//! A cancel racing fulfilment: before any shipment is handed over, the order's shipments stop,
//! their units go back to available, and a paid order's payment (less shortage refunds) is
//! refunded once (its RefundRequested comes from the order's move to CANCELLED_AFTER_PAYMENT).
//! After a hand-over the cancel is refused: after-sales takes over. The hand-over and the
//! cancel both write the shipment conditionally on its version, so only one of them wins.

use super::units_counter;
use crate::domain::{Order, OrderId, OrderStatus, PaymentMethod, Shipment, ShipmentStatus, Sku, WarehouseId};
use crate::store::{ShipmentWrite, Store, StoreError};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum CancelRefused {
    #[error("a shipment of the order was handed over to a courier")]
    HandedOver,
    #[error("the order is {0:?}")]
    NotCancellable(OrderStatus),
    #[error("the order changed meanwhile")]
    Changed,
    #[error("no such order")]
    Missing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Cancel a paid (or approved cash-on-delivery) order with whatever shipments it has; the status
/// it ended in.
pub async fn cancel_paid_order(store: &Store, id: OrderId, now: OffsetDateTime) -> Result<OrderStatus, CancelRefused> {
    let (order, shipments) = store.order_and_shipments(id).await?;
    let order = order.ok_or(CancelRefused::Missing)?;
    let next = match (order.status, order.payment_method) {
        (OrderStatus::Paid, _) => OrderStatus::CancelledAfterPayment,
        (OrderStatus::CodApproved, PaymentMethod::CashOnDelivery) => OrderStatus::Cancelled,
        (status, _) => return Err(CancelRefused::NotCancellable(status)),
    };
    if shipments.iter().any(|s| s.status == ShipmentStatus::HandedOver) {
        return Err(CancelRefused::HandedOver);
    }
    let mut writes = Vec::new();
    let stopped: Vec<Shipment> = shipments
        .iter()
        .filter(|s| !s.status.is_final())
        .map(|s| Shipment { status: ShipmentStatus::Cancelled, updated_at: now, ..s.clone() })
        .collect();
    // One stock write per (SKU, warehouse, counter): a transaction may not touch an item twice,
    // and two shipments (an exchange's and the original) may hold one SKU in one warehouse.
    let mut back: BTreeMap<(&Sku, &WarehouseId, &str), u32> = BTreeMap::new();
    for (before, after) in shipments.iter().filter(|s| !s.status.is_final()).zip(&stopped) {
        writes.push(store.put_shipment(ShipmentWrite { shipment: after, seen: Some(before) }));
        for line in &before.lines {
            *back.entry((&line.sku, &before.warehouse, units_counter(before))).or_default() += line.quantity;
        }
    }
    writes.extend(back.into_iter().map(|((sku, warehouse, counter), quantity)| {
        store.stock_shift(sku, warehouse, quantity, (counter, "available"), now)
    }));
    if order.shipments.is_none() {
        // Not yet made into shipments: the order's own allocations go back (shipment creation
        // is conditional on the order's status, so it cannot follow this cancel).
        let counter = if next == OrderStatus::Cancelled { "reserved" } else { "sold" };
        writes.extend(order.reserved_allocations().iter().map(|a| store.stock_move(a, counter, "available", now)));
    }
    let due = (next == OrderStatus::CancelledAfterPayment).then(|| super::refund_due(&order, &shipments));
    writes.extend(store.order_moves(&order, next, due, now));
    writes.push(store.month_bump(order.customer_id.as_str(), "cancels", now));
    if store.commit(writes).await? {
        Ok(next)
    } else {
        Err(CancelRefused::Changed)
    }
}

/// Whether the customer's cancel of `order` goes through fulfilment (it is paid, or its
/// shipments exist) rather than releasing a hold.
pub fn cancels_through_fulfilment(order: &Order) -> bool {
    order.status == OrderStatus::Paid || (order.status == OrderStatus::CodApproved && order.shipments.is_some())
}
