//! Fulfilment: from a paid (or approved cash-on-delivery) order to parcels handed to couriers.
//!
//! - Function `fulfilment` (SQS, fed by the OrderPaid and CashOnDeliveryApproved rules): makes
//!   the order's shipments, one per warehouse its lines were allocated to ([`make_shipments`]),
//!   exactly once however often the message comes.
//! - Function `fulfilment-api` (HTTP, [`routes`]): the warehouse's waves, scans, packing,
//!   shortages, checks, labels, photos and hand-overs; the customer's answer to a shortage.
//! - The scheduled sweeper calls [`sweep_due`] for shortages nobody answered and backorders
//!   whose date came ([`shortage`]).
//!
//! Every change is a conditional write of the shipment (with the stock and order writes that go
//! with it, in one transaction); its events come from the table's stream.

mod cancel;
mod dispatch;
mod picking;
mod plan;
pub mod routes;
mod shortage;
mod view;

pub use cancel::{cancel_paid_order, cancels_through_fulfilment, CancelRefused};
pub use shortage::sweep_due;

use super::{each_message, BusEnvelope, Common, TtlCache};
use crate::aws::s3::S3Bucket;
use crate::courier::Courier;
use crate::domain::{FulfilmentPolicy, Order, OrderId, OrderStatus, PaymentMethod, Shipment};
use crate::personal::Sealer;
use crate::photos::DispatchPhotos;
use crate::store::{ShipmentWrite, Store, StoreError};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::Deserialize;
use std::sync::Arc;
use thiserror::Error;
use time::OffsetDateTime;
use tracing::info;

/// What every fulfilment step needs: the table, the time, the policy. The sweeper and the
/// `fulfilment` function have only this; fulfilment-api adds the courier, the photo bucket and
/// the sealer that opens a parcel's address ([`FulfilmentDeps`]).
#[derive(Clone)]
pub struct FulfilmentCore {
    pub common: Common,
    policy: Arc<TtlCache<FulfilmentPolicy>>,
    /// Attempts at one change before giving up on contention.
    pub max_attempts: usize,
}

#[derive(Clone)]
pub struct FulfilmentDeps {
    pub core: FulfilmentCore,
    pub courier: Arc<dyn Courier>,
    pub photos: DispatchPhotos,
    /// Opens the address of a parcel being packed, for the warehouse and the courier's booking.
    pub sealer: Arc<Sealer>,
}

impl std::ops::Deref for FulfilmentDeps {
    type Target = FulfilmentCore;
    fn deref(&self) -> &FulfilmentCore {
        &self.core
    }
}

impl FulfilmentDeps {
    pub fn new(common: Common, courier: Arc<dyn Courier>, photos: DispatchPhotos, sealer: Arc<Sealer>) -> Self {
        Self { core: FulfilmentCore::new(common), courier, photos, sealer }
    }

    /// fulfilment-api's dependencies: the standard AWS configuration chain, the photo bucket
    /// (`DISPATCH_PHOTO_BUCKET`), the courier gateway (`COURIER_GATEWAY_URL`) and the personal
    /// data key (`PERSONAL_DATA_KEY_ID`).
    pub async fn from_env(config: &crate::config::Config) -> Result<Self, String> {
        let aws = crate::aws::config().await;
        let common = Common::new(aws_sdk_dynamodb::Client::new(&aws), config, Arc::new(crate::clock::SystemClock));
        let bucket = std::env::var("DISPATCH_PHOTO_BUCKET").map_err(|_| "DISPATCH_PHOTO_BUCKET is not set")?;
        let gateway = std::env::var("COURIER_GATEWAY_URL").map_err(|_| "COURIER_GATEWAY_URL is not set")?;
        let courier = crate::courier::HttpCourier::new(gateway);
        let photos = DispatchPhotos::new(S3Bucket::from_config(&aws, &bucket).map_err(|e| e.to_string())?);
        let sealer = Sealer::from_env(&aws).map_err(|e| e.to_string())?;
        Ok(Self::new(common, Arc::new(courier), photos, sealer))
    }
}

impl FulfilmentCore {
    pub fn new(common: Common) -> Self {
        Self { common, policy: Arc::new(TtlCache::new(time::Duration::minutes(1))), max_attempts: 5 }
    }

    /// The `fulfilment` function's dependencies: the table through the AWS configuration chain.
    pub async fn from_env(config: &crate::config::Config) -> Self {
        Self::new(Common::from_aws(config).await)
    }

    /// The policy operations saved (trusted for a minute), or the default.
    pub async fn policy(&self, now: OffsetDateTime) -> Result<Arc<FulfilmentPolicy>, StoreError> {
        let store = &self.common.store;
        self.policy.get_or_load(now, || async { Ok(store.fulfilment_policy().await?.unwrap_or_default()) }).await
    }
}

#[derive(Debug, Error)]
pub enum FulfilmentError {
    #[error("message body is not an OrderPaid or CashOnDeliveryApproved event: {0}")]
    Malformed(String),
    #[error("order {0} is not in the table")]
    OrderMissing(OrderId),
    #[error("still contended after {0} attempts")]
    Contended(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Deserialize)]
struct OrderRef {
    order_id: OrderId,
}

/// Handle one SQS batch; each failed message is reported on its own for redelivery (and, past
/// maxReceiveCount, the dead-letter queue).
pub async fn handle_batch(deps: &FulfilmentCore, event: SqsEvent) -> SqsBatchResponse {
    each_message(&event, "fulfilment", |m| process_message(deps, m)).await
}

async fn process_message(deps: &FulfilmentCore, message: &SqsMessage) -> Result<(), FulfilmentError> {
    let order: OrderRef = BusEnvelope::of(message)
        .and_then(|e| e.detail_of(&["OrderPaid", "CashOnDeliveryApproved"]))
        .map_err(FulfilmentError::Malformed)?;
    make_shipments(deps, order.order_id).await
}

/// Whether fulfilment serves an order in this status.
pub(crate) fn ships(order: &Order) -> bool {
    match order.status {
        OrderStatus::Paid => true,
        OrderStatus::CodApproved => order.payment_method == PaymentMethod::CashOnDelivery,
        _ => false,
    }
}

/// Make the order's shipments, once: a repeat finds them made (or the order cancelled
/// meanwhile) and changes nothing.
pub async fn make_shipments(deps: &FulfilmentCore, order_id: OrderId) -> Result<(), FulfilmentError> {
    let store = &deps.common.store;
    for _ in 0..deps.max_attempts {
        let (order, _) = store.order_and_shipments(order_id).await?;
        let order = order.ok_or(FulfilmentError::OrderMissing(order_id))?;
        if order.shipments.is_some() || !ships(&order) {
            info!(order_id = %order_id, status = order.status.as_str(), "shipments made before, or not to be made");
            return Ok(());
        }
        let now = deps.common.clock.now();
        let policy = deps.policy(now).await?;
        let shipments = plan::shipments_for(store, &order, &policy, now).await?;
        let count = u32::try_from(shipments.len()).unwrap_or(u32::MAX);
        let mut writes = vec![store.order_shipment_count(&order, count, now)];
        writes.extend(
            shipments.iter().map(|s| store.put_shipment(crate::store::ShipmentWrite { shipment: s, seen: None })),
        );
        if store.commit(writes).await? {
            info!(order_id = %order_id, shipments = count, "shipments made");
            return Ok(());
        }
    }
    Err(FulfilmentError::Contended(deps.max_attempts))
}

/// The stock counter a shipment's units sit in: paid units are sold; cash-on-delivery units stay
/// reserved until the courier collects.
pub(crate) fn units_counter(shipment: &Shipment) -> &'static str {
    match shipment.payment_method {
        PaymentMethod::Online => "sold",
        PaymentMethod::CashOnDelivery => "reserved",
    }
}

/// A parcel after-sales sends the customer for `ticket` (an exchange's replacement, goods sent
/// back after QC): the order's next shipment, planned as any other (courier, check, bins) from
/// `warehouse`, prepaid: its units are sold already and the courier collects nothing.
pub(crate) fn after_sales_parcel(
    order: &Order,
    ticket: &crate::domain::ticket::TicketId,
    warehouse: &crate::domain::WarehouseId,
    lines: &[(crate::domain::Sku, u32, i64)],
    policy: &FulfilmentPolicy,
    facts: &crate::store::FulfilmentFacts,
    now: OffsetDateTime,
) -> Shipment {
    let number = order.shipments.unwrap_or(0) + 1;
    let lines = lines.iter().map(|(sku, q, price)| plan::line(facts, warehouse, sku.clone(), *q, *price)).collect();
    let mut parcel = plan::new_shipment(order, number, warehouse.clone(), lines, policy, facts, now);
    parcel.payment_method = PaymentMethod::Online;
    parcel.for_ticket = Some(ticket.clone());
    parcel
}

/// How the order ends when `shipments` (as they will be after this change) have all ended:
/// SHIPPED if any was handed over, else cancelled with what is still to refund. `None` while
/// one is still under way.
pub(crate) fn order_outcome(order: &Order, shipments: &[Shipment]) -> Option<(OrderStatus, Option<i64>)> {
    if !shipments.iter().all(|s| s.status.is_final()) {
        return None;
    }
    if shipments.iter().any(|s| s.status == crate::domain::ShipmentStatus::HandedOver) {
        return Some((OrderStatus::Shipped, None));
    }
    match order.payment_method {
        PaymentMethod::CashOnDelivery => Some((OrderStatus::Cancelled, None)),
        PaymentMethod::Online => Some((OrderStatus::CancelledAfterPayment, Some(refund_due(order, shipments)))),
    }
}

/// `changed` written over its read version, with `extra`; its siblings as read; the order moved
/// on if every shipment has now ended, else as read (unless `extra` writes it).
pub(super) fn change_of_one(
    store: &Store,
    order: &Order,
    shipments: &[Shipment],
    changed: &Shipment,
    extra: Vec<TransactWriteItem>,
    order_written: bool,
    now: OffsetDateTime,
) -> Vec<TransactWriteItem> {
    let seen = shipments.iter().find(|s| s.shipment_id == changed.shipment_id);
    let mut writes = vec![store.put_shipment(ShipmentWrite { shipment: changed, seen })];
    writes.extend(extra);
    writes
        .extend(shipments.iter().filter(|s| s.shipment_id != changed.shipment_id).map(|s| store.shipment_unchanged(s)));
    // An exchange from another warehouse writes the order itself (its shipment count): the
    // order is then not ending, and one transaction may not touch it twice. An after-sales
    // parcel leaves a delivered order as it is.
    if changed.for_ticket.is_some() {
        if !order_written {
            writes.push(store.order_unchanged(order));
        }
    } else if !order_written {
        let after: Vec<Shipment> = shipments
            .iter()
            .map(|s| if s.shipment_id == changed.shipment_id { changed.clone() } else { s.clone() })
            .collect();
        match order_outcome(order, &after) {
            Some((next, due)) => writes.extend(store.order_moves(order, next, due, now)),
            None => writes.push(store.order_unchanged(order)),
        }
    }
    writes
}

/// What was paid online and not yet refunded by shortage refunds (nothing, for cash on
/// delivery: the courier collects for what is delivered).
pub(crate) fn refund_due(order: &Order, shipments: &[Shipment]) -> i64 {
    if order.payment_method == PaymentMethod::CashOnDelivery {
        return 0;
    }
    let paid = order.paid_minor.unwrap_or(order.total_minor);
    let refunded: i64 = shipments.iter().flat_map(|s| &s.refunds).map(|r| r.amount_minor).sum();
    paid.saturating_sub(refunded).max(0)
}
