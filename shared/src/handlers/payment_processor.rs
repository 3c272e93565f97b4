//! Function payment-processor (SQS, fed by the PaymentEventReceived and ParkedPaymentsDue rules:
//! the stream announces every event the webhook stored, and every order that leaves RECEIVED with
//! payments parked on it): apply each payment event to its order, exactly once however many
//! deliveries arrive, however concurrently. The resolution and the order change are one
//! transaction; what they announce comes from the table's stream.
//!
//! | event | order | effect | announced |
//! |---|---|---|---|
//! | succeeded, exact amount | AWAITING_PAYMENT | PAID, hold committed, units sold | OrderPaid |
//! | succeeded, other amount or currency | AWAITING_PAYMENT | PAYMENT_MISMATCH, units held for review | PaymentMismatch |
//! | succeeded | EXPIRED / CANCELLED, stock there | PAID, units taken again and sold | OrderPaid (late) |
//! | succeeded | EXPIRED / CANCELLED, stock gone | REFUND_REQUIRED | RefundRequested |
//! | succeeded | PAID by this payment | nothing | nothing |
//! | succeeded | PAID by another payment | nothing | RefundRequested (duplicate charge) |
//! | succeeded, exact amount | PAYMENT_MISMATCH | PAID, units sold; the payment under review to be refunded | OrderPaid, RefundRequested |
//! | succeeded | REJECTED, AWAITING_REVIEW, COD_APPROVED, … | nothing | RefundRequested |
//! | succeeded | unknown order | kept in the ledger, shown to staff | nothing |
//! | succeeded | RECEIVED (not reserved yet) | parked on the order, applied when it moves on | ParkedPaymentsDue (later) |
//! | failed / cancelled | AWAITING_PAYMENT | failure recorded, hold kept (or, by setting, order cancelled and hold released in the same transaction) | nothing (OrderCancelled) |

use super::{each_message, BusEnvelope, Common};
use crate::domain::payment::{PaymentEvent, PaymentEventType, PaymentKey, PaymentUnderReview};
use crate::domain::{Currency, Order, OrderId, OrderStatus, PaymentMethod};
use crate::store::{CancelCause, InboxStatus, OrderChange, Resolution, ResolveError, SettledBy, StoreError};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;
use thiserror::Error;
use time::OffsetDateTime;
use tracing::{info, warn};

#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessorSettings {
    /// A failed payment releases the hold at once instead of letting the customer retry.
    pub release_hold_on_failure: bool,
}

impl ProcessorSettings {
    /// `RELEASE_HOLD_ON_PAYMENT_FAILURE=true` releases at once.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let release = get("RELEASE_HOLD_ON_PAYMENT_FAILURE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Self { release_hold_on_failure: release }
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
    #[error("order still awaiting reservation; retry later")]
    OrderNotReserved,
    #[error("order kept changing")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Deserialize)]
struct ParkedPayments {
    order_id: OrderId,
    payments: Vec<PaymentKey>,
}

/// What to do with a payment event given its order as read.
enum Decision {
    Resolve(Resolution, OrderChange),
    /// The order is still RECEIVED: keep the payment until reservation decided it.
    Park(OrderId),
}

pub async fn handle_batch(deps: &ProcessorDeps, event: SqsEvent) -> SqsBatchResponse {
    each_message(&event, "payment event", |m| process_message(deps, m)).await
}

async fn process_message(deps: &ProcessorDeps, message: &SqsMessage) -> Result<(), PaymentError> {
    let envelope = BusEnvelope::of(message).map_err(PaymentError::Malformed)?;
    let malformed = |e: serde_json::Error| PaymentError::Malformed(e.to_string());
    match envelope.detail_type.as_str() {
        "PaymentEventReceived" => process(deps, &serde_json::from_value(envelope.detail).map_err(malformed)?).await,
        "ParkedPaymentsDue" => {
            let parked: ParkedPayments = serde_json::from_value(envelope.detail).map_err(malformed)?;
            for key in &parked.payments {
                apply(deps, key, InboxStatus::Parked).await?;
            }
            info!(order_id = %parked.order_id, payments = parked.payments.len(), "parked payments applied");
            Ok(())
        }
        other => Err(PaymentError::Malformed(format!("unexpected detail-type {other}"))),
    }
}

/// Apply one payment event the webhook stored.
pub async fn process(deps: &ProcessorDeps, event: &PaymentEvent) -> Result<(), PaymentError> {
    apply(deps, &PaymentKey::of(event), InboxStatus::Received).await
}

/// Apply the stored event at `key` if it is still `from` (RECEIVED when it arrives, PARKED once
/// its order moved on). Anything else means it was applied, or parked, before.
async fn apply(deps: &ProcessorDeps, key: &PaymentKey, from: InboxStatus) -> Result<(), PaymentError> {
    const ATTEMPTS: usize = 4;
    let store = &deps.common.store;
    for _ in 0..ATTEMPTS {
        let record = store.payment_record(key).await?.ok_or_else(|| PaymentError::NotInInbox(key.event_id.clone()))?;
        if record.status != from {
            info!(event_id = %key.event_id, status = ?record.status, "payment event dealt with before (a repeat delivery)");
            return Ok(());
        }
        let event = &record.event;
        let now = deps.common.clock.now();
        let order = match event.order_id() {
            Some(id) => store.order(id).await?,
            None => None,
        };
        let outcome = match decide(deps, event, key, order.as_ref(), now).await? {
            Decision::Park(_) if from == InboxStatus::Parked => return Err(PaymentError::OrderNotReserved),
            Decision::Park(order_id) => match store.park_payment(key, order_id, now).await? {
                true => {
                    info!(event_id = %key.event_id, order_id = %order_id, "payment parked until the order is reserved");
                    return Ok(());
                }
                false => continue,
            },
            Decision::Resolve(resolution, change) => {
                let outcome = store.resolve_payment(key, from, &resolution, change, now).await;
                outcome.map(|()| resolution)
            }
        };
        match outcome {
            Ok(resolution) => {
                crate::telemetry::metrics::payment_resolved(&resolution);
                info!(event_id = %key.event_id, ?resolution, "payment event resolved");
                return Ok(());
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
    key: &PaymentKey,
    order: Option<&Order>,
    now: OffsetDateTime,
) -> Result<Decision, PaymentError> {
    let store = &deps.common.store;
    let payment_id = event.data.payment_id.as_str();
    let Some(order) = order else {
        warn!(event_id = %event.id, "payment for an unknown order kept for staff");
        let resolution =
            if event.event_type == PaymentEventType::Succeeded { Resolution::UnknownOrder } else { Resolution::Failed };
        return Ok(Decision::Resolve(resolution, Vec::new()));
    };
    let id = order.order_id;
    if order.has_reviewed_payment(payment_id) {
        // The provider re-reported the mismatched payment under a new event id: it is under
        // review, or was accepted or refunded already.
        return Ok(Decision::Resolve(Resolution::AlreadyApplied, Vec::new()));
    }
    if event.event_type != PaymentEventType::Succeeded {
        let reason =
            event.data.failure_reason.clone().unwrap_or_else(|| format!("{:?}", event.event_type).to_lowercase());
        let change = match order.status {
            // Released at once: the cancel rides in the resolving transaction, so a redelivery
            // finds the event resolved and the order cancelled together, never one without the
            // other.
            OrderStatus::AwaitingPayment if deps.settings.release_hold_on_failure => {
                store.cancel_change(order, CancelCause::Customer, now)
            }
            OrderStatus::AwaitingPayment => store.failure_change(id, &reason, now),
            _ => Vec::new(),
        };
        return Ok(Decision::Resolve(Resolution::Failed, change));
    }
    let exact = event.data.amount_minor == order.total_minor && event.currency() == Some(order.currency);
    // Every refund counts in the customer's month, for the refund-rate risk rule.
    let refunds = || store.month_bump(order.customer_id.as_str(), "refunds", now);
    let refund = |reason: &str| (Resolution::RefundRequired { reason: reason.to_owned() }, vec![refunds()]);
    // An order whose hold ended (expired, cancelled) goes to REFUND_REQUIRED with the refund.
    let refund_ended = |reason: &str| {
        let mut change = store.refund_required_change(id, order.status, payment_id, now);
        change.push(refunds());
        (Resolution::RefundRequired { reason: reason.to_owned() }, change)
    };
    let (resolution, change) = match order.status {
        OrderStatus::Received => return Ok(Decision::Park(id)),
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
            store.mismatch_change(
                id,
                &PaymentUnderReview {
                    key: key.clone(),
                    payment_id: payment_id.to_owned(),
                    amount_minor: event.data.amount_minor,
                    currency: event.data.currency.clone(),
                },
                now,
            ),
        ),
        OrderStatus::PaymentMismatch if exact => match &order.payment_under_review {
            Some(review) => {
                let hold =
                    store.hold(id).await?.ok_or_else(|| StoreError::Aws("order under review has no hold".into()))?;
                let by = SettledBy::FurtherPayment { payment_id };
                (Resolution::Paid, store.settle_mismatch_change(order, review, &hold.allocations, &by, now))
            }
            None => refund("order already has a payment under review"),
        },
        // The payment that paid it, reported again under another event id: nothing to do (a
        // cancelled order's refund was requested by its cancel).
        OrderStatus::Paid
        | OrderStatus::Shipped
        | OrderStatus::Delivered
        | OrderStatus::Archived
        | OrderStatus::Undelivered
        | OrderStatus::CancelledAfterPayment
        | OrderStatus::RefundRequired
            if order.payment_id.as_deref() == Some(payment_id) =>
        {
            (Resolution::AlreadyApplied, Vec::new())
        }
        OrderStatus::Paid
        | OrderStatus::Shipped
        | OrderStatus::Delivered
        | OrderStatus::Archived
        | OrderStatus::Undelivered
        | OrderStatus::CancelledAfterPayment => (Resolution::DuplicateCharge, vec![refunds()]),
        // A cash-on-delivery order was never to be paid online: one that expired in review or
        // that staff rejected is not revived by a payment (that would undo the decision).
        OrderStatus::Expired | OrderStatus::Cancelled if order.payment_method == PaymentMethod::CashOnDelivery => {
            refund_ended("cash-on-delivery order paid online")
        }
        // Its address is gone (erased once the revival grace passed): nothing could be shipped.
        OrderStatus::Expired | OrderStatus::Cancelled if order.personal.is_none() => {
            refund_ended("paid after the order's personal data was erased")
        }
        OrderStatus::Expired | OrderStatus::Cancelled => {
            let mut allocations = order.reserved_allocations();
            let levels = if allocations.is_empty() || !exact {
                None
            } else {
                let skus: Vec<_> = allocations.iter().map(|a| a.sku.clone()).collect();
                let warehouses: Vec<_> = allocations.iter().map(|a| a.warehouse.clone()).collect();
                Some(store.shard_levels(&skus, &warehouses).await?)
            };
            // The units come from whichever item has them now (for a split SKU, not
            // necessarily the shard the lapsed hold was on).
            let in_stock = levels.is_some_and(|levels| {
                allocations.iter_mut().all(|a| {
                    let level = levels.get(&(a.sku.clone(), a.warehouse.clone()));
                    let shard = level.and_then(|l| l.pick(i64::from(a.quantity.get()), 0));
                    a.shard = shard.unwrap_or(0);
                    shard.is_some()
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
                refund_ended(reason)
            }
        }
        OrderStatus::Rejected => refund("order was rejected: stock short"),
        OrderStatus::PendingVerification | OrderStatus::PendingReview | OrderStatus::Frozen => {
            refund("order was not yet released by risk control")
        }
        OrderStatus::AwaitingReview | OrderStatus::CodApproved => refund("cash-on-delivery order paid online"),
        OrderStatus::PaymentMismatch | OrderStatus::RefundRequired => {
            refund("order already has a payment under review")
        }
    };
    Ok(Decision::Resolve(resolution, change))
}

fn currency_code(currency: Currency) -> String {
    serde_json::to_value(currency).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
