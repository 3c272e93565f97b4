//! Function stock-reservation (SQS, fed by the OrderReceived rule): reserve an order's stock or
//! reject it, exactly once however often the message comes.
//!
//! The happy path is one AWS call whatever the number of lines: one `TransactWriteItems` that
//! reserves every line in the regional warehouse, writes the hold and moves the order on. Only
//! when that warehouse is short are stock levels read (one `BatchGetItem` per hundred
//! SKU-warehouse pairs) to plan a neighbour transfer or a line-by-line split. The decision's event
//! (StockReserved or OrderRejected) comes from the table's stream.
//!
//! Redelivery is safe because the transaction is conditional on the order still being RECEIVED:
//! a repeat finds it decided (or cancelled meanwhile) and changes nothing.

use super::{each_message, BusEnvelope, Common, TtlCache};
use crate::domain::{
    plan_allocation, single_warehouse, Allocation, AllocationPlan, HoldPolicy, OrderId, OrderStatus, PaymentMethod,
    Quantity, ShardLevels, ShortLine, Sku, WarehouseCatalogue, WarehouseId,
};
use crate::events::OrderReceived;
use crate::store::{ReserveError, ShardLayouts, StoreError};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
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
    layouts: Arc<TtlCache<ShardLayouts>>,
}

impl ReservationDeps {
    pub fn new(common: Common, settings: ReservationSettings) -> Self {
        Self {
            common,
            catalogue: Arc::new(TtlCache::new(settings.cache_ttl)),
            policy: Arc::new(TtlCache::new(settings.cache_ttl)),
            layouts: Arc::new(TtlCache::new(settings.cache_ttl)),
            settings,
        }
    }

    async fn catalogue(&self, now: OffsetDateTime) -> Result<Arc<WarehouseCatalogue>, StoreError> {
        self.catalogue.get_or_load(now, || self.common.store.warehouses()).await
    }

    /// The (SKU, warehouse) pairs whose stock is split, and over how many shards.
    async fn layouts(&self, now: OffsetDateTime) -> Result<Arc<ShardLayouts>, StoreError> {
        self.layouts.get_or_load(now, || self.common.store.shard_layouts()).await
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

/// Handle one SQS batch. Messages are decided concurrently; each failure is reported on its own,
/// so SQS redelivers only those and, past the queue's maxReceiveCount, moves them to the DLQ.
pub async fn handle_batch(deps: &ReservationDeps, event: SqsEvent) -> SqsBatchResponse {
    each_message(&event, "reservation", |m| process_message(deps, m)).await
}

/// The OrderReceived an SQS message carries (an EventBridge envelope around it).
pub fn parse_message(message: &SqsMessage) -> Result<OrderReceived, ReservationError> {
    BusEnvelope::of(message).and_then(|e| e.detail_of(&["OrderReceived"])).map_err(ReservationError::Malformed)
}

async fn process_message(deps: &ReservationDeps, message: &SqsMessage) -> Result<(), ReservationError> {
    let received = parse_message(message)?;
    reserve_order(deps, &received).await
}

/// Reserve stock for one received order, or reject it naming the short SKUs.
pub async fn reserve_order(deps: &ReservationDeps, received: &OrderReceived) -> Result<(), ReservationError> {
    let store = &deps.common.store;
    let now = deps.common.clock.now();
    let policy = deps.hold_policy(now).await?;
    let next = match received.payment_method {
        PaymentMethod::Online => OrderStatus::AwaitingPayment,
        // Approved by the policy: held with no expiry, ready for fulfilment.
        PaymentMethod::CashOnDelivery if policy.approves_cod(received.risk_score) => OrderStatus::CodApproved,
        PaymentMethod::CashOnDelivery => OrderStatus::AwaitingReview,
    };
    let hold_expires_at = (next != OrderStatus::CodApproved).then(|| {
        now + policy.hold_for(received.payment_method, &received.channel, received.lines.iter().map(|l| &l.sku))
    });
    let lines: Vec<(Sku, Quantity)> = received.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect();
    let catalogue = deps.catalogue(now).await?;
    let preference = catalogue.preference_for(&received.province);
    let Some(regional) = preference.first() else {
        let short =
            lines.iter().map(|(sku, q)| ShortLine { sku: sku.clone(), requested: q.get(), available: 0 }).collect();
        return reject(deps, received.order_id, short, now).await;
    };

    let layouts = deps.layouts(now).await?;
    let mut plan = first_tries(single_warehouse(&lines, regional), &layouts, received.order_id);
    for _ in 0..deps.settings.max_attempts {
        match store.reserve(received.order_id, &plan, next, hold_expires_at, now).await {
            Ok(()) => {
                info!(order_id = %received.order_id, warehouses = ?distinct_warehouses(&plan), "stock reserved");
                return Ok(());
            }
            Err(ReserveError::OrderNotReceived) => {
                info!(order_id = %received.order_id, "order decided before (a redelivery, or cancelled meanwhile)");
                return Ok(());
            }
            Err(ReserveError::OrderMissing) => return Err(ReservationError::OrderMissing(received.order_id)),
            Err(ReserveError::Short(_) | ReserveError::Conflict) => {
                match replan(deps, received.order_id, &lines, &preference, now).await? {
                    AllocationPlan::Served(next_plan) => plan = next_plan,
                    AllocationPlan::Short(short) => return reject(deps, received.order_id, short, now).await,
                }
            }
            Err(ReserveError::Store(err)) => return Err(err.into()),
        }
    }
    Err(ReservationError::Contended(deps.settings.max_attempts))
}

/// Where line `i` of an order starts looking among a split SKU's shards: spread by order id.
fn spread_seed(order_id: OrderId, line: usize) -> u64 {
    u64::from(order_id.bucket(u32::MAX)).wrapping_add(line as u64)
}

/// The unread first try: each line of a split SKU on its order's shard, the rest on the SKU's
/// own item.
fn first_tries(mut plan: Vec<Allocation>, layouts: &ShardLayouts, order_id: OrderId) -> Vec<Allocation> {
    for (i, allocation) in plan.iter_mut().enumerate() {
        if let Some(active) = layouts.get(&(allocation.sku.clone(), allocation.warehouse.clone())) {
            allocation.shard = ShardLevels::first_choice(*active, spread_seed(order_id, i));
        }
    }
    plan
}

/// Plan again on the levels as they are now: warehouses by the units summed over each one's
/// items, then for each line the item to take them from. A split SKU's items are read in two
/// round trips, not one snapshot, so a shortage seen across a rebalance is read again before the
/// order is rejected.
async fn replan(
    deps: &ReservationDeps,
    order_id: OrderId,
    lines: &[(Sku, Quantity)],
    preference: &[WarehouseId],
    now: OffsetDateTime,
) -> Result<AllocationPlan, ReservationError> {
    let skus: Vec<Sku> = lines.iter().map(|(sku, _)| sku.clone()).collect();
    let mut read_again = true;
    loop {
        let levels = deps.common.store.shard_levels(&skus, preference).await?;
        let totals = levels.iter().map(|(pair, level)| (pair.clone(), level.total())).collect();
        match plan_allocation(lines, preference, &totals) {
            AllocationPlan::Served(plan) => return Ok(take_from_shards(deps, order_id, plan, &levels, now).await?),
            AllocationPlan::Short(_) if read_again && levels.values().any(|l| l.by_shard().len() > 1) => {
                read_again = false
            }
            short => return Ok(short),
        }
    }
}

/// For each planned line, the item to take its units from. A line no one shard can serve,
/// though the sum can, has units gathered onto its shard first: a split SKU is never short
/// while its shards together have the units.
async fn take_from_shards(
    deps: &ReservationDeps,
    order_id: OrderId,
    mut plan: Vec<Allocation>,
    levels: &std::collections::HashMap<(Sku, WarehouseId), ShardLevels>,
    now: OffsetDateTime,
) -> Result<AllocationPlan, StoreError> {
    for (i, allocation) in plan.iter_mut().enumerate() {
        let Some(level) = levels.get(&(allocation.sku.clone(), allocation.warehouse.clone())) else { continue };
        let (quantity, seed) = (i64::from(allocation.quantity.get()), spread_seed(order_id, i));
        allocation.shard = match level.pick(quantity, seed) {
            Some(shard) => shard,
            None => {
                let target = ShardLevels::first_choice(level.active(), seed);
                if let Some(deltas) = level.gather(target, quantity) {
                    let pair = (&allocation.sku, &allocation.warehouse);
                    let gathered = deps.common.store.gather_stock(pair, &deltas, now).await?;
                    info!(order_id = %order_id, sku = %allocation.sku, shard = target, gathered, "units gathered onto one shard");
                }
                target
            }
        };
    }
    Ok(AllocationPlan::Served(plan))
}

fn distinct_warehouses(plan: &[Allocation]) -> Vec<&WarehouseId> {
    let mut ids: Vec<&WarehouseId> = plan.iter().map(|a| &a.warehouse).collect();
    ids.dedup();
    ids
}

async fn reject(
    deps: &ReservationDeps,
    order_id: OrderId,
    short_lines: Vec<ShortLine>,
    now: OffsetDateTime,
) -> Result<(), ReservationError> {
    if deps.common.store.reject(order_id, &short_lines, now).await? {
        info!(order_id = %order_id, short = short_lines.len(), "order rejected: stock short");
    } else {
        info!(order_id = %order_id, "order decided before (a redelivery, or cancelled meanwhile)");
    }
    Ok(())
}
