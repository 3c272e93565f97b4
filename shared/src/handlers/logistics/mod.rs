//! Logistics: a handed-over parcel followed until it is delivered or declared lost.
//!
//! - Function `courier-webhook` (HTTP, [`webhook`]): couriers' signed pushes into the inbox.
//! - Function `tracking` (SQS, [`consumer`]): pushes applied, stuck parcels chased and their
//!   customers told, couriers' monthly counters kept.
//! - Function `tracking-poller` (schedule, [`poller`]): parcels due polled within each
//!   courier's rates, alerts raised at their thresholds, the month-end courier review ([`kpi`]).
//! - Function `logistics-api` (HTTP, [`routes`]): tracking for the customer, not-received
//!   claims, the staff alert list, claim resolutions, KPIs and the logistics policy.
//!
//! Every change goes through [`change_parcel`]: read the order and its shipments, change one
//! parcel's tracking, re-evaluate its alerts, and write it conditionally with what follows (the
//! staff alert list, the order delivered or undelivered). Events come from the stream.

pub mod consumer;
pub mod customer;
pub mod kpi;
pub mod poller;
pub mod routes;
pub mod webhook;

use super::{Common, TtlCache};
use crate::courier::Courier;
use crate::domain::tracking::{Tracking, TrackingStatus};
use crate::domain::{LogisticsPolicy, Order, OrderStatus, Shipment, ShipmentId, ShipmentStatus};
use crate::notify::Notifier;
use crate::store::{ShipmentWrite, StoreError};
use aws_sdk_dynamodb::types::TransactWriteItem;
use std::sync::Arc;
use thiserror::Error;
use time::OffsetDateTime;

#[derive(Clone)]
pub struct LogisticsDeps {
    pub common: Common,
    pub courier: Arc<dyn Courier>,
    pub notifier: Arc<dyn Notifier>,
    policy: Arc<TtlCache<LogisticsPolicy>>,
    /// Attempts at one change before giving up on contention.
    pub max_attempts: usize,
}

#[derive(Debug, Error)]
pub enum LogisticsError {
    #[error("shipment {0} is not in the table")]
    ShipmentMissing(ShipmentId),
    #[error("no shipment has waybill {0}")]
    UnknownWaybill(String),
    #[error("still contended after {0} attempts")]
    Contended(usize),
    #[error("another delivery is chasing alert {0}")]
    ChaseInProgress(String),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("the courier failed: {0}")]
    Courier(#[from] crate::courier::CourierError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LogisticsDeps {
    pub fn new(common: Common, courier: Arc<dyn Courier>, notifier: Arc<dyn Notifier>) -> Self {
        Self { common, courier, notifier, policy: Arc::new(TtlCache::new(time::Duration::minutes(1))), max_attempts: 5 }
    }

    /// The deployed function's dependencies: the AWS configuration chain, the courier gateway
    /// (`COURIER_GATEWAY_URL`) and the notification queue (`NOTIFICATION_QUEUE_URL`).
    pub async fn from_env(config: &crate::config::Config) -> Result<Self, String> {
        let aws = crate::aws::config().await;
        let common = Common::new(aws_sdk_dynamodb::Client::new(&aws), config, Arc::new(crate::clock::SystemClock));
        let gateway = std::env::var("COURIER_GATEWAY_URL").map_err(|_| "COURIER_GATEWAY_URL is not set")?;
        let queue = std::env::var("NOTIFICATION_QUEUE_URL").map_err(|_| "NOTIFICATION_QUEUE_URL is not set")?;
        let courier = crate::courier::HttpCourier::new(gateway);
        let sqs = crate::aws::json_service::JsonService::sqs(&aws).map_err(|e| e.to_string())?;
        let notifier = crate::notify::SqsNotifier::new(sqs, queue);
        Ok(Self::new(common, Arc::new(courier), Arc::new(notifier)))
    }

    /// The policy operations saved (trusted for a minute), or the default.
    pub async fn policy(&self, now: OffsetDateTime) -> Result<Arc<LogisticsPolicy>, StoreError> {
        let store = &self.common.store;
        self.policy.get_or_load(now, || async { Ok(store.logistics_policy().await?.unwrap_or_default()) }).await
    }
}

/// What a change of a parcel sees: the order, the shipment as read, the time and the policy.
pub struct ParcelView<'a> {
    pub order: &'a Order,
    /// Every shipment of the order, as read (this one among them).
    pub shipments: &'a [Shipment],
    pub shipment: &'a Shipment,
    pub now: OffsetDateTime,
    pub policy: &'a LogisticsPolicy,
}

/// What a change decided: the new tracking (alerts re-evaluated after), the order's own write
/// when the change makes one (its collected cash: then the order does not also follow the
/// parcel's delivery), and staff's audit record; or nothing to do.
pub enum ParcelChange<E> {
    Change { tracking: Box<Tracking>, extra: Vec<TransactWriteItem>, audit: Vec<TransactWriteItem> },
    Nothing,
    Refused(E),
}

/// Read, change one parcel and write it, until the write's conditions hold. Answers the parcel
/// as written (`None` when nothing changed). A change is refused by answering `Refused`.
pub async fn change_parcel<E, F>(
    deps: &LogisticsDeps,
    id: &ShipmentId,
    mut change: F,
) -> Result<Result<Option<Shipment>, E>, LogisticsError>
where
    F: FnMut(ParcelView<'_>, Tracking) -> ParcelChange<E>,
{
    let store = &deps.common.store;
    for _ in 0..deps.max_attempts {
        let (order, shipments) = store.order_and_shipments(id.order_id).await?;
        let order = order.ok_or_else(|| LogisticsError::ShipmentMissing(id.clone()))?;
        let shipment = shipments
            .iter()
            .find(|s| &s.shipment_id == id)
            .ok_or_else(|| LogisticsError::ShipmentMissing(id.clone()))?;
        let now = deps.common.clock.now();
        let policy = deps.policy(now).await?;
        let before = shipment.tracking.clone().unwrap_or_default();
        let view = ParcelView { order: &order, shipments: &shipments, shipment, now, policy: &policy };
        let (mut tracking, extra, audit) = match change(view, before.clone()) {
            ParcelChange::Change { tracking, extra, audit } => (*tracking, extra, audit),
            ParcelChange::Nothing => return Ok(Ok(None)),
            ParcelChange::Refused(e) => return Ok(Err(e)),
        };
        if let (Some(handed_over), None, Some(choice)) =
            (tracking.handed_over_at, tracking.promised_by, &shipment.courier)
        {
            tracking.promised_by = Some(handed_over + policy.delivery_days(choice.speed));
        }
        if shipment.status == ShipmentStatus::HandedOver {
            tracking.evaluate(&policy, now);
        }
        if tracking == before && extra.is_empty() {
            return Ok(Ok(None));
        }
        let changed = Shipment { tracking: Some(tracking), updated_at: now, ..shipment.clone() };
        let mut writes = vec![store.put_shipment(ShipmentWrite { shipment: &changed, seen: Some(shipment) })];
        writes.extend(store.open_alert_writes(shipment.tracking.as_ref(), &changed));
        let order_written = !extra.is_empty();
        writes.extend(extra);
        if !order_written {
            writes.extend(order_follows(store, &order, &shipments, &changed, now));
        }
        writes.extend(audit);
        if store.commit(writes).await? {
            return Ok(Ok(Some(changed)));
        }
    }
    Err(LogisticsError::Contended(deps.max_attempts))
}

/// The order moves when its parcels' deliveries have all ended: DELIVERED when every one was
/// delivered, UNDELIVERED when one was lost or returned. The other parcels must be as read, so
/// two last deliveries at once cannot both miss it.
fn order_follows(
    store: &crate::store::Store,
    order: &Order,
    shipments: &[Shipment],
    changed: &Shipment,
    now: OffsetDateTime,
) -> Vec<TransactWriteItem> {
    // After-sales parcels come after the order's delivery: the order does not follow them.
    if !matches!(order.status, OrderStatus::Shipped | OrderStatus::Undelivered) || changed.for_ticket.is_some() {
        return Vec::new();
    }
    let parcels: Vec<&Shipment> = shipments
        .iter()
        .map(|s| if s.shipment_id == changed.shipment_id { changed } else { s })
        .filter(|s| s.status == ShipmentStatus::HandedOver && s.for_ticket.is_none())
        .collect();
    let statuses: Vec<Option<TrackingStatus>> =
        parcels.iter().map(|s| s.tracking.as_ref().and_then(|t| t.status)).collect();
    let mut writes: Vec<TransactWriteItem> =
        parcels.iter().filter(|s| s.shipment_id != changed.shipment_id).map(|s| store.shipment_unchanged(s)).collect();
    let all = |wanted: fn(TrackingStatus) -> bool| statuses.iter().all(|s| s.is_some_and(wanted));
    let next = if all(|s| s == TrackingStatus::Delivered) {
        OrderStatus::Delivered
    } else if all(TrackingStatus::is_final) && order.status == OrderStatus::Shipped {
        OrderStatus::Undelivered
    } else {
        return writes;
    };
    let delivered_at = parcels.iter().filter_map(|s| s.tracking.as_ref()?.delivered_at).max();
    writes.push(store.order_delivery_ends(order, next, delivered_at.filter(|_| next == OrderStatus::Delivered), now));
    writes
}
