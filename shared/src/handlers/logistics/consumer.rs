//! Function tracking (SQS, fed by the logistics rule): every message is idempotent.
//!
//! | event | what is done |
//! |---|---|
//! | CourierPushReceived | its checkpoints recorded on the parcel (each once); a collection applied once |
//! | ParcelStuck | the courier chased and the customer told, once per alert |
//! | ShipmentDispatched, ParcelDeliveryEnded, NotReceivedClaimOpened | the courier's month counted, once per event |

use super::{change_parcel, kpi, LogisticsDeps, LogisticsError, ParcelChange};
use crate::courier::Chase;
use crate::domain::tracking::CashCollection;
use crate::domain::{PaymentMethod, ShipmentId};
use crate::events::logistics::{CourierPush, ParcelStuck};
use crate::handlers::{each_message, BusEnvelope};
use crate::notify::CustomerMessage;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::{info, warn};

pub async fn handle_batch(deps: &LogisticsDeps, event: SqsEvent) -> SqsBatchResponse {
    each_message(&event, "tracking", |m| process_message(deps, m)).await
}

async fn process_message(deps: &LogisticsDeps, message: &SqsMessage) -> Result<(), LogisticsError> {
    let envelope = BusEnvelope::of(message).map_err(LogisticsError::Malformed)?;
    let detail_type = envelope.detail_type.clone();
    let event_id = envelope.detail.get("event_id").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    match detail_type.as_str() {
        "CourierPushReceived" => {
            apply_push(deps, &envelope.detail_of(&["CourierPushReceived"]).map_err(LogisticsError::Malformed)?).await
        }
        "ParcelStuck" => chase(deps, &envelope.detail_of(&["ParcelStuck"]).map_err(LogisticsError::Malformed)?).await,
        _ => kpi::count(deps, &event_id, envelope).await,
    }
}

/// Record a push's checkpoints on its parcel, then its collection, each once.
pub async fn apply_push(deps: &LogisticsDeps, push: &CourierPush) -> Result<(), LogisticsError> {
    let store = &deps.common.store;
    // Unknown: a push for a waybill nobody booked here (or not yet linked) goes back to the
    // queue and, if it never matches, to the dead-letter queue for a person to look at.
    let id = store
        .shipment_of_waybill(&push.courier, &push.waybill)
        .await?
        .ok_or_else(|| LogisticsError::UnknownWaybill(format!("{}:{}", push.courier, push.waybill)))?;
    if !push.checkpoints.is_empty() {
        change_parcel::<(), _>(deps, &id, |_, mut tracking| {
            if tracking.record(&push.checkpoints) == 0 {
                return ParcelChange::Nothing;
            }
            ParcelChange::Change { tracking: Box::new(tracking), extra: Vec::new(), audit: Vec::new() }
        })
        .await?
        .ok();
        info!(shipment_id = %id, checkpoints = push.checkpoints.len(), "courier push applied");
    }
    if let Some(report) = &push.collection {
        collect(deps, &id, push, report).await?;
    }
    Ok(())
}

/// A cash-on-delivery parcel's collection: recorded on the parcel and added to the order's
/// payment in one transaction, once per parcel however often the courier reports it.
async fn collect(
    deps: &LogisticsDeps,
    id: &ShipmentId,
    push: &CourierPush,
    report: &crate::events::logistics::CollectionReport,
) -> Result<(), LogisticsError> {
    let store = &deps.common.store;
    let outcome = change_parcel::<&'static str, _>(deps, id, |view, mut tracking| {
        if view.order.payment_method != PaymentMethod::CashOnDelivery {
            return ParcelChange::Refused("not a cash-on-delivery order");
        }
        if tracking.collection.is_some() {
            return ParcelChange::Nothing;
        }
        if report.currency != view.order.currency {
            return ParcelChange::Refused("collected in another currency");
        }
        tracking.collection = Some(CashCollection {
            report_id: push.event_id.clone(),
            amount_minor: report.amount_minor,
            collected_at: report.collected_at,
        });
        let paid = view.order.paid_minor.unwrap_or(0).saturating_add(report.amount_minor);
        let fully =
            (paid >= view.order.total_minor && view.order.cash_collected_at.is_none()).then_some(report.collected_at);
        let order_write = store.order_cash_collected(view.order, report.amount_minor, fully, view.now);
        ParcelChange::Change { tracking: Box::new(tracking), extra: vec![order_write], audit: Vec::new() }
    })
    .await?;
    match outcome {
        Ok(Some(_)) => info!(shipment_id = %id, amount_minor = report.amount_minor, "cash collected"),
        Ok(None) => info!(shipment_id = %id, "collection reported again; applied before"),
        // Kept in the inbox and logged: finance reconciles the courier's statement.
        Err(why) => warn!(shipment_id = %id, why, "collection report not applied"),
    }
    Ok(())
}

/// How long one delivery of a ParcelStuck owns its chase: longer than the function's timeout
/// (the chase and the message take far less), shorter than the queue's 60 s redelivery, so the
/// retry of a crashed attempt finds the claim lapsed and takes it over.
const CHASE_LEASE: time::Duration = time::Duration::seconds(30);

/// Chase the courier and tell the customer about a raised alert, once. The alert is claimed
/// first (a conditional write of `chase_started_at`), so two deliveries of the event never both
/// call out; only a crash between the calls and `chased_at` repeats them, with the same
/// idempotency key for the courier and the notification service to drop.
pub async fn chase(deps: &LogisticsDeps, stuck: &ParcelStuck) -> Result<(), LogisticsError> {
    let id = &stuck.parcel.shipment_id;
    let alert_id = stuck.alert_id.clone();
    // Who to tell and about what, from the read the claim was decided on.
    let mut about = None;
    let claimed = change_parcel(deps, id, |view, mut tracking| {
        let Some(alert) = tracking.alerts.iter_mut().find(|a| a.id == alert_id) else {
            return ParcelChange::Nothing;
        };
        if alert.chased_at.is_some() || alert.cleared_at.is_some() {
            return ParcelChange::Nothing;
        }
        if alert.chase_started_at.is_some_and(|started| view.now - started < CHASE_LEASE) {
            return ParcelChange::Refused(LogisticsError::ChaseInProgress(alert_id.clone()));
        }
        alert.chase_started_at = Some(view.now);
        about = Some((alert.kind, view.order.customer_id.clone(), view.order.order_id));
        ParcelChange::Change { tracking: Box::new(tracking), extra: Vec::new(), audit: Vec::new() }
    })
    .await??;
    let (Some(_), Some((kind, customer_id, order_id))) = (claimed, about) else {
        return Ok(());
    };
    let key = format!("{id}:{alert_id}");
    let request = Chase {
        courier: stuck.parcel.courier.clone(),
        waybill_number: stuck.parcel.waybill_number.clone(),
        reason: kind,
        idempotency_key: key.clone(),
    };
    let message = CustomerMessage { template: kind.customer_template(), customer_id, order_id, key };
    let called = async {
        deps.courier.chase(&request).await?;
        deps.notifier.tell_customer(&message).await?;
        Ok::<_, LogisticsError>(())
    };
    let outcome = called.await;
    // Done: chased. Failed: the claim is given back, so the queue's retry chases at once.
    change_parcel::<(), _>(deps, id, |view, mut tracking| {
        match tracking.alerts.iter_mut().find(|a| a.id == alert_id && a.chased_at.is_none()) {
            Some(alert) if outcome.is_ok() => alert.chased_at = Some(view.now),
            Some(alert) => alert.chase_started_at = None,
            None => return ParcelChange::Nothing,
        }
        ParcelChange::Change { tracking: Box::new(tracking), extra: Vec::new(), audit: Vec::new() }
    })
    .await?
    .ok();
    outcome?;
    info!(shipment_id = %id, alert = %alert_id, "courier chased and customer told");
    Ok(())
}
