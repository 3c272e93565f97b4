//! Function stock-reservation (SQS, fed by the OrderReceived rule): reserve an order's stock or
//! reject it, exactly once however often the message comes.
//!
//! The happy path is two AWS calls whatever the number of lines: one `TransactWriteItems` that
//! reserves every line in the regional warehouse, writes the hold and moves the order on, and one
//! `PutEvents`. Only when that warehouse is short are stock levels read (one `BatchGetItem` per
//! hundred SKU-warehouse pairs) to plan a neighbour transfer or a line-by-line split.
//!
//! Redelivery is safe because the transaction is conditional on the order still being RECEIVED;
//! a repeat finds it decided and publishes the decision again, which repairs a lost publish.

use super::{partial_batch_failures, Common, TtlCache};
use crate::domain::{
    plan_allocation, single_warehouse, Allocation, AllocationPlan, HoldPolicy, OrderId, OrderStatus, PaymentMethod,
    Quantity, ShortLine, Sku, WarehouseCatalogue, WarehouseId,
};
use crate::events::{DomainEvent, OrderReceived, OrderRejected, StockReserved};
use crate::store::{ReserveError, StoreError};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;
use std::sync::Arc;
use thiserror::Error;
use time::{Duration, OffsetDateTime};
use tracing::info;

#[derive(Debug, Clone, Copy)]
pub struct ReservationSettings {
    pub hold: Duration,
    pub cod_hold: Duration,
    /// How long the warehouse catalogue and the hold policy are trusted before being read again.
    pub cache_ttl: Duration,
    /// Attempts at one order before the message is left for SQS to redeliver.
    pub max_attempts: usize,
}

impl ReservationSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self { hold: config.hold_duration, cod_hold: config.cod_hold_duration, ..Self::default() }
    }

    /// The policy in force while operations have saved none.
    pub fn default_hold_policy(&self) -> HoldPolicy {
        HoldPolicy::from_durations(self.hold, self.cod_hold)
    }
}

impl Default for ReservationSettings {
    fn default() -> Self {
        Self {
            hold: Duration::minutes(crate::config::Config::DEFAULT_HOLD_MINUTES),
            cod_hold: Duration::minutes(crate::config::Config::DEFAULT_COD_HOLD_MINUTES),
            cache_ttl: Duration::minutes(1),
            max_attempts: 4,
        }
    }
}

#[derive(Clone)]
pub struct ReservationDeps {
    pub common: Common,
    pub settings: ReservationSettings,
    catalogue: Arc<TtlCache<WarehouseCatalogue>>,
    policy: Arc<TtlCache<HoldPolicy>>,
}

impl ReservationDeps {
    pub fn new(common: Common, settings: ReservationSettings) -> Self {
        Self {
            common,
            catalogue: Arc::new(TtlCache::new(settings.cache_ttl)),
            policy: Arc::new(TtlCache::new(settings.cache_ttl)),
            settings,
        }
    }

    async fn catalogue(&self, now: OffsetDateTime) -> Result<Arc<WarehouseCatalogue>, StoreError> {
        self.catalogue.get_or_load(now, || self.common.store.warehouses()).await
    }

    /// The hold policy operations saved, or the one configured at deploy time.
    async fn hold_policy(&self, now: OffsetDateTime) -> Result<Arc<HoldPolicy>, StoreError> {
        let fallback = self.settings.default_hold_policy();
        self.policy.get_or_load(now, || async { Ok(self.common.store.hold_policy().await?.unwrap_or(fallback)) }).await
    }
}

#[derive(Debug, Error)]
pub enum ReservationError {
    #[error("message body is not an OrderReceived event: {0}")]
    Malformed(String),
    #[error("order {0} is not in the table")]
    OrderMissing(OrderId),
    #[error("still contended after {0} attempts")]
    Contended(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The SQS message body: an EventBridge envelope around the OrderReceived detail.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: serde_json::Value,
}

/// Handle one SQS batch. Messages are decided concurrently and their events published together
/// (one PutEvents per ten). Each failure is reported on its own, so SQS redelivers only those
/// and, past the queue's maxReceiveCount, moves them to the DLQ.
pub async fn handle_batch(deps: &ReservationDeps, event: SqsEvent) -> SqsBatchResponse {
    let decisions = futures::future::join_all(event.records.iter().map(|m| process_message(deps, m))).await;
    let mut failed: Vec<(&SqsMessage, String)> = Vec::new();
    let mut announced: Vec<(&SqsMessage, DomainEvent)> = Vec::new();
    for (message, decision) in event.records.iter().zip(decisions) {
        match decision {
            Ok(Some(event)) => announced.push((message, event)),
            Ok(None) => {}
            Err(err) => failed.push((message, err.to_string())),
        }
    }
    let events: Vec<DomainEvent> = announced.iter().map(|(_, e)| e.clone()).collect();
    let results = deps.common.events.publish_all(&events).await;
    for ((message, _), result) in announced.iter().zip(results) {
        if let Err(err) = result {
            // The decision is stored; redelivery finds it and announces it again.
            failed.push((message, err.to_string()));
        }
    }
    partial_batch_failures(failed, "reservation")
}

pub fn parse_message(message: &SqsMessage) -> Result<OrderReceived, ReservationError> {
    let body = message.body.as_deref().ok_or_else(|| ReservationError::Malformed("empty body".into()))?;
    let envelope: Envelope = serde_json::from_str(body).map_err(|e| ReservationError::Malformed(e.to_string()))?;
    if envelope.detail_type != "OrderReceived" {
        return Err(ReservationError::Malformed(format!("unexpected detail-type {}", envelope.detail_type)));
    }
    serde_json::from_value(envelope.detail).map_err(|e| ReservationError::Malformed(e.to_string()))
}

async fn process_message(
    deps: &ReservationDeps,
    message: &SqsMessage,
) -> Result<Option<DomainEvent>, ReservationError> {
    let received = parse_message(message)?;
    reserve_order(deps, &received).await
}

/// Reserve stock for one received order, or reject it naming the short SKUs. Returns the event
/// that announces the decision, for the caller to publish.
pub async fn reserve_order(
    deps: &ReservationDeps,
    received: &OrderReceived,
) -> Result<Option<DomainEvent>, ReservationError> {
    let store = &deps.common.store;
    let now = deps.common.clock.now();
    let next = match received.payment_method {
        PaymentMethod::Online => OrderStatus::AwaitingPayment,
        PaymentMethod::CashOnDelivery => OrderStatus::AwaitingReview,
    };
    let policy = deps.hold_policy(now).await?;
    let hold_expires_at =
        now + policy.hold_for(received.payment_method, &received.channel, received.lines.iter().map(|l| &l.sku));
    let lines: Vec<(Sku, Quantity)> = received.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect();
    let catalogue = deps.catalogue(now).await?;
    let preference = catalogue.preference_for(&received.province);
    let Some(regional) = preference.first() else {
        let short =
            lines.iter().map(|(sku, q)| ShortLine { sku: sku.clone(), requested: q.get(), available: 0 }).collect();
        return reject(deps, received.order_id, short, now).await;
    };

    let mut plan = single_warehouse(&lines, regional);
    for _ in 0..deps.settings.max_attempts {
        match store.reserve(received.order_id, &plan, next, hold_expires_at, now).await {
            Ok(()) => {
                info!(order_id = %received.order_id, warehouses = ?distinct_warehouses(&plan), "stock reserved");
                return Ok(Some(stock_reserved(received.order_id, plan, hold_expires_at)));
            }
            Err(ReserveError::OrderNotReceived) => return republish_decision(deps, received.order_id).await,
            Err(ReserveError::Short(_) | ReserveError::Conflict) => {
                let skus: Vec<Sku> = lines.iter().map(|(sku, _)| sku.clone()).collect();
                let levels = store.stock_levels(&skus, &preference).await?;
                match plan_allocation(&lines, &preference, &levels) {
                    AllocationPlan::Served(next_plan) => plan = next_plan,
                    AllocationPlan::Short(short) => return reject(deps, received.order_id, short, now).await,
                }
            }
            Err(ReserveError::Store(err)) => return Err(err.into()),
        }
    }
    Err(ReservationError::Contended(deps.settings.max_attempts))
}

fn distinct_warehouses(plan: &[Allocation]) -> Vec<&WarehouseId> {
    let mut ids: Vec<&WarehouseId> = plan.iter().map(|a| &a.warehouse).collect();
    ids.dedup();
    ids
}

fn stock_reserved(order_id: OrderId, allocations: Vec<Allocation>, hold_expires_at: OffsetDateTime) -> DomainEvent {
    DomainEvent::StockReserved(StockReserved { order_id, allocations, hold_expires_at })
}

async fn reject(
    deps: &ReservationDeps,
    order_id: OrderId,
    short_lines: Vec<ShortLine>,
    now: OffsetDateTime,
) -> Result<Option<DomainEvent>, ReservationError> {
    if !deps.common.store.reject(order_id, &short_lines, now).await? {
        return republish_decision(deps, order_id).await;
    }
    info!(order_id = %order_id, short = short_lines.len(), "order rejected: stock short");
    Ok(Some(DomainEvent::OrderRejected(OrderRejected { order_id, short_lines })))
}

/// The order was decided before (this is a redelivery, or it was cancelled meanwhile): announce
/// the decision again so a publish lost the first time is not lost for good.
async fn republish_decision(
    deps: &ReservationDeps,
    order_id: OrderId,
) -> Result<Option<DomainEvent>, ReservationError> {
    let order = deps.common.store.order(order_id).await?.ok_or(ReservationError::OrderMissing(order_id))?;
    Ok(match order.status {
        status if status.holds_stock() || status == OrderStatus::Paid => {
            let expires = order.hold_expires_at.unwrap_or(order.updated_at);
            Some(stock_reserved(order_id, order.reserved_allocations(), expires))
        }
        OrderStatus::Rejected => {
            Some(DomainEvent::OrderRejected(OrderRejected { order_id, short_lines: order.short_lines }))
        }
        OrderStatus::Received => {
            return Err(ReservationError::Store(StoreError::Aws(
                "reservation refused for an order still RECEIVED".into(),
            )))
        }
        // Cancelled or expired: someone else's event tells that story.
        _ => None,
    })
}
