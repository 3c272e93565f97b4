//! Function payment-processor (SQS, fed by the webhook): apply each payment event to its order,
//! exactly once however many deliveries arrive, however concurrently.
//!
//! | event | order | effect | announced |
//! |---|---|---|---|
//! | succeeded, exact amount | AWAITING_PAYMENT | PAID, hold committed, units sold | OrderPaid |
//! | succeeded, other amount or currency | AWAITING_PAYMENT | PAYMENT_MISMATCH, units held for review | PaymentMismatch |
//! | succeeded | EXPIRED / CANCELLED, stock there | PAID, units taken again and sold | OrderPaid (late) |
//! | succeeded | EXPIRED / CANCELLED, stock gone | REFUND_REQUIRED | RefundRequested |
//! | succeeded | PAID by this payment | nothing | nothing |
//! | succeeded | PAID by another payment | nothing | RefundRequested (duplicate charge) |
//! | succeeded | REJECTED, AWAITING_REVIEW, … | nothing | RefundRequested |
//! | succeeded | unknown order | kept in the ledger, shown to staff | nothing |
//! | succeeded | RECEIVED (not reserved yet) | retried later | — |
//! | failed / cancelled | AWAITING_PAYMENT | failure recorded, hold kept (or released, by setting) | nothing |

use super::{partial_batch_failures, Common};
use crate::domain::payment::{PaymentEvent, PaymentEventType};
use crate::domain::{Currency, Order, OrderStatus};
use crate::events::{DomainEvent, OrderPaid, PaymentMismatch, RefundRequested};
use crate::store::{CancelError, OrderChange, PaymentKey, PaymentRecord, Resolution, ResolveError, StoreError};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use std::time::{Duration as StdDuration, Instant};
use thiserror::Error;
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

#[derive(Debug, Clone, Copy)]
pub struct ProcessorSettings {
    /// A failed payment releases the hold at once instead of letting the customer retry.
    pub release_hold_on_failure: bool,
    /// How long the processor that resolved an event owns its announcement.
    pub announce_lease: Duration,
    /// How long a concurrent delivery waits for that announcement before giving up for now.
    pub wait_for_announcement: StdDuration,
}

impl Default for ProcessorSettings {
    fn default() -> Self {
        Self {
            release_hold_on_failure: false,
            announce_lease: Duration::seconds(30),
            wait_for_announcement: StdDuration::from_secs(2),
        }
    }
}

impl ProcessorSettings {
    /// `RELEASE_HOLD_ON_PAYMENT_FAILURE=true` releases at once.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let release = get("RELEASE_HOLD_ON_PAYMENT_FAILURE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Self { release_hold_on_failure: release, ..Self::default() }
    }
}

#[derive(Clone)]
pub struct ProcessorDeps {
    pub common: Common,
    pub settings: ProcessorSettings,
}

#[derive(Debug, Error)]
pub enum PaymentError {
    #[error("message is not a payment event: {0}")]
    Malformed(String),
    #[error("payment event {0} is not in the inbox")]
    NotInInbox(String),
    #[error("order not reserved yet; retry later")]
    OrderNotReserved,
    #[error("another delivery is announcing this event; retry later")]
    AnnouncementInProgress,
    #[error("order kept changing")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] crate::events::PublishError),
}

pub async fn handle_batch(deps: &ProcessorDeps, event: SqsEvent) -> SqsBatchResponse {
    let outcomes = futures::future::join_all(event.records.iter().map(|m| process_message(deps, m))).await;
    let failed = event.records.iter().zip(outcomes).filter_map(|(m, outcome)| Some((m, outcome.err()?.to_string())));
    partial_batch_failures(failed, "payment event")
}

async fn process_message(deps: &ProcessorDeps, message: &SqsMessage) -> Result<(), PaymentError> {
    let body = message.body.as_deref().ok_or_else(|| PaymentError::Malformed("empty body".into()))?;
    let event: PaymentEvent = serde_json::from_str(body).map_err(|e| PaymentError::Malformed(e.to_string()))?;
    process(deps, &event).await
}

/// Apply one payment event.
pub async fn process(deps: &ProcessorDeps, event: &PaymentEvent) -> Result<(), PaymentError> {
    const ATTEMPTS: usize = 4;
    let store = &deps.common.store;
    let key = PaymentKey::of(event);
    for _ in 0..ATTEMPTS {
        let record = store.payment_record(&key).await?.ok_or_else(|| PaymentError::NotInInbox(event.id.clone()))?;
        if record.resolution.is_some() {
            return announce_once(deps, &key, record).await;
        }
        let now = deps.common.clock.now();
        let order = match event.order_id() {
            Some(id) => store.order(id).await?,
            None => None,
        };
        let (resolution, change) = decide(deps, event, order.as_ref(), now).await?;
        let lease_until = (now + deps.settings.announce_lease).unix_timestamp();
        match store.resolve_payment(&key, &resolution, lease_until, change, now).await {
            Ok(()) => {
                info!(event_id = %event.id, ?resolution, "payment event resolved");
                if resolution == Resolution::Failed && deps.settings.release_hold_on_failure {
                    release_after_failure(deps, order.as_ref(), now).await?;
                }
                return announce(deps, &key, event, &resolution).await;
            }
            Err(ResolveError::AlreadyResolved) | Err(ResolveError::OrderChanged) => continue,
            Err(ResolveError::Store(err)) => return Err(err.into()),
        }
    }
    Err(PaymentError::Contended)
}

/// What an event does to the order as read, and the writes that do it.
async fn decide(
    deps: &ProcessorDeps,
    event: &PaymentEvent,
    order: Option<&Order>,
    now: OffsetDateTime,
) -> Result<(Resolution, OrderChange), PaymentError> {
    let store = &deps.common.store;
    let payment_id = event.data.payment_id.as_str();
    let Some(order) = order else {
        warn!(event_id = %event.id, "payment for an unknown order kept for staff");
        return Ok((
            if event.event_type == PaymentEventType::Succeeded { Resolution::UnknownOrder } else { Resolution::Failed },
            Vec::new(),
        ));
    };
    let id = order.order_id;
    if event.event_type != PaymentEventType::Succeeded {
        let reason =
            event.data.failure_reason.clone().unwrap_or_else(|| format!("{:?}", event.event_type).to_lowercase());
        let change = if order.status == OrderStatus::AwaitingPayment {
            store.failure_change(id, &reason, now)
        } else {
            Vec::new()
        };
        return Ok((Resolution::Failed, change));
    }
    let exact = event.data.amount_minor == order.total_minor && event.currency() == Some(order.currency);
    // Every refund counts in the customer's month, for the refund-rate risk rule.
    let refunds = || store.month_bump(order.customer_id.as_str(), "refunds", now);
    let refund = |reason: &str| (Resolution::RefundRequired { reason: reason.to_owned() }, vec![refunds()]);
    Ok(match order.status {
        OrderStatus::Received => return Err(PaymentError::OrderNotReserved),
        OrderStatus::AwaitingPayment if exact => {
            let hold =
                store.hold(id).await?.ok_or_else(|| StoreError::Aws("order awaiting payment has no hold".into()))?;
            (Resolution::Paid, store.pay_change(id, &hold.allocations, payment_id, now))
        }
        OrderStatus::AwaitingPayment => (
            Resolution::Mismatched {
                expected_minor: order.total_minor,
                expected_currency: currency_code(order.currency),
            },
            store.mismatch_change(id, payment_id, now),
        ),
        OrderStatus::Paid if order.payment_id.as_deref() == Some(payment_id) => {
            (Resolution::AlreadyApplied, Vec::new())
        }
        OrderStatus::Paid => (Resolution::DuplicateCharge, vec![refunds()]),
        OrderStatus::Expired | OrderStatus::Cancelled => {
            let allocations = order.reserved_allocations();
            let levels = if allocations.is_empty() || !exact {
                None
            } else {
                let skus: Vec<_> = allocations.iter().map(|a| a.sku.clone()).collect();
                let warehouses: Vec<_> = allocations.iter().map(|a| a.warehouse.clone()).collect();
                Some(store.stock_levels(&skus, &warehouses).await?)
            };
            let in_stock = levels.is_some_and(|levels| {
                allocations.iter().all(|a| {
                    levels.get(&(a.sku.clone(), a.warehouse.clone())).copied().unwrap_or(0)
                        >= i64::from(a.quantity.get())
                })
            });
            if in_stock {
                // Conditions re-check the stock in the write; if it went meanwhile, we decide again.
                (Resolution::LatePaid, store.late_pay_change(id, order.status, &allocations, payment_id, now))
            } else {
                let reason = if exact {
                    "paid after the hold ended; stock no longer available"
                } else {
                    "paid after the hold ended, with the wrong amount"
                };
                let mut change = store.refund_required_change(id, order.status, payment_id, now);
                change.push(refunds());
                (Resolution::RefundRequired { reason: reason.into() }, change)
            }
        }
        OrderStatus::Rejected => refund("order was rejected: stock short"),
        OrderStatus::PendingVerification | OrderStatus::PendingReview | OrderStatus::Frozen => {
            refund("order was not yet released by risk control")
        }
        OrderStatus::AwaitingReview => refund("cash-on-delivery order paid online"),
        OrderStatus::PaymentMismatch | OrderStatus::RefundRequired => {
            refund("order already has a payment under review")
        }
    })
}

fn currency_code(currency: Currency) -> String {
    serde_json::to_value(currency).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

async fn release_after_failure(
    deps: &ProcessorDeps,
    order: Option<&Order>,
    now: OffsetDateTime,
) -> Result<(), PaymentError> {
    let Some(order) = order.filter(|o| o.status == OrderStatus::AwaitingPayment) else { return Ok(()) };
    match deps.common.store.cancel(order, now).await {
        Ok(released) => {
            let event =
                DomainEvent::OrderCancelled(crate::events::OrderCancelled { order_id: order.order_id, released });
            deps.common.events.publish(&event).await?;
            Ok(())
        }
        // Paid, expired or cancelled meanwhile: nothing left to release.
        Err(CancelError::StatusChanged) => Ok(()),
        Err(CancelError::Store(err)) => Err(err.into()),
    }
}

/// The event a resolution announces, if any.
pub fn announcement(event: &PaymentEvent, resolution: &Resolution) -> Option<DomainEvent> {
    let order_id = event.order_id();
    let refund = |reason: &str| {
        Some(DomainEvent::RefundRequested(RefundRequested {
            order_id: event.data.order_id.clone(),
            payment_id: event.data.payment_id.clone(),
            amount_minor: event.data.amount_minor,
            currency: event.data.currency.clone(),
            reason: reason.to_owned(),
        }))
    };
    match resolution {
        Resolution::Paid | Resolution::LatePaid => Some(DomainEvent::OrderPaid(OrderPaid {
            order_id: order_id?,
            payment_id: event.data.payment_id.clone(),
            amount_minor: event.data.amount_minor,
            currency: event.currency()?,
            late: *resolution == Resolution::LatePaid,
        })),
        Resolution::Mismatched { expected_minor, expected_currency } => {
            Some(DomainEvent::PaymentMismatch(PaymentMismatch {
                order_id: order_id?,
                payment_id: event.data.payment_id.clone(),
                expected_minor: *expected_minor,
                expected_currency: expected_currency.clone(),
                received_minor: event.data.amount_minor,
                received_currency: event.data.currency.clone(),
            }))
        }
        Resolution::DuplicateCharge => refund("duplicate charge: the order was paid by another payment"),
        Resolution::RefundRequired { reason } => refund(reason),
        Resolution::AlreadyApplied | Resolution::UnknownOrder | Resolution::Failed => None,
    }
}

async fn announce(
    deps: &ProcessorDeps,
    key: &PaymentKey,
    event: &PaymentEvent,
    resolution: &Resolution,
) -> Result<(), PaymentError> {
    if let Some(domain_event) = announcement(event, resolution) {
        deps.common.events.publish(&domain_event).await?;
    }
    deps.common.store.mark_announced(key).await?;
    Ok(())
}

/// A delivery of an event already resolved: announce it only if nobody is, or did.
async fn announce_once(deps: &ProcessorDeps, key: &PaymentKey, mut record: PaymentRecord) -> Result<(), PaymentError> {
    let store = &deps.common.store;
    let give_up_at = Instant::now() + deps.settings.wait_for_announcement;
    loop {
        if record.announced {
            return Ok(());
        }
        let now = deps.common.clock.now();
        let resolution = record.resolution.clone().expect("resolved records carry their resolution");
        if record.lease_until <= now.unix_timestamp() {
            let lease = (now + deps.settings.announce_lease).unix_timestamp();
            if store.take_announce_lease(key, record.lease_until, lease).await? {
                return announce(deps, key, &record.event, &resolution).await;
            }
        } else if Instant::now() >= give_up_at {
            return Err(PaymentError::AnnouncementInProgress);
        } else {
            tokio::time::sleep(StdDuration::from_millis(25)).await;
        }
        record = store.payment_record(key).await?.ok_or_else(|| PaymentError::NotInInbox(key.event_id.clone()))?;
    }
}
