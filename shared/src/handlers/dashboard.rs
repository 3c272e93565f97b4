//! Function dashboard (SQS, fed by the Dashboard rule): keeps the operations dashboard's
//! counters up to date from the bus events (see [`crate::domain::dashboard`] for what moves
//! which counter). Each event is counted once, in the hour the bus took it (seconds after the
//! change), however late it is processed, under the channel of the order it is about. An
//! order's events also time the stages of its flow ([`crate::domain::order_stages`]).

use super::{each_message, BusEnvelope, Common};
use crate::domain::dashboard::{hour_of, tally, Metric};
use crate::domain::order_stages::{ends, timed, End, Stage};
use crate::domain::ShipmentId;
use crate::store::StoreError;
use crate::store::STAGE_COUNTED_FOR;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use thiserror::Error;
use time::OffsetDateTime;

/// The channel counted for an event about no order of ours (a payment for an unknown order);
/// not a valid channel id, so no real channel shares it.
pub const UNKNOWN_CHANNEL: &str = "(unknown)";

#[derive(Clone)]
pub struct DashboardDeps {
    pub common: Common,
}

#[derive(Debug, Error)]
pub enum DashboardError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn handle_batch(deps: &DashboardDeps, event: SqsEvent) -> SqsBatchResponse {
    each_message(&event, "dashboard event", |m| count_message(deps, m)).await
}

async fn count_message(deps: &DashboardDeps, message: &SqsMessage) -> Result<(), DashboardError> {
    let envelope = BusEnvelope::of(message).map_err(DashboardError::Malformed)?;
    let Some(mut tally) = tally(&envelope.detail_type, &envelope.detail) else {
        return Ok(());
    };
    let event_id = envelope.detail["event_id"].as_str().ok_or(DashboardError::Malformed("no event_id".into()))?;
    let store = &deps.common.store;
    let channel = match (tally.channel.take(), &tally.order_id) {
        (Some(channel), _) => channel,
        (None, Some(order_id)) => store.order_channel(order_id).await?.unwrap_or_else(|| UNKNOWN_CHANNEL.into()),
        (None, None) => UNKNOWN_CHANNEL.into(),
    };
    if let Some((shipment, delivered_at)) = &tally.delivered {
        let shipment = ShipmentId::parse(shipment).map_err(|_| DashboardError::Malformed("shipment_id".into()))?;
        let tracking = store.shipment(&shipment).await?.and_then(|s| s.tracking);
        if let Some(handed_over_at) = tracking.and_then(|t| t.handed_over_at) {
            let seconds = (*delivered_at - handed_over_at).whole_seconds().max(0);
            tally.increments.extend([(Metric::ParcelsTimed, 1), (Metric::DeliverySeconds, seconds)]);
        }
    }
    let now = deps.common.clock.now();
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let on_bus = envelope.time.as_deref().and_then(|t| time::OffsetDateTime::parse(t, rfc3339).ok());
    let at = on_bus.unwrap_or(now);
    store.count_event(event_id, &hour_of(at), &channel, &tally.increments, now).await?;
    match &tally.order_id {
        Some(order_id) => {
            time_stages(deps, order_id, &channel, ends(&envelope.detail_type, &envelope.detail), (at, now)).await
        }
        None => Ok(()),
    }
}

/// Keeps the stage ends an event of `order_id` marks (at `at`, the bus's time; `now` is the
/// clock's), then counts each stage it ends
/// or begins that now has both ends known: once, however many of its events see it complete.
async fn time_stages(
    deps: &DashboardDeps,
    order_id: &str,
    channel: &str,
    ends: Vec<End>,
    (at, now): (OffsetDateTime, OffsetDateTime),
) -> Result<(), DashboardError> {
    if ends.is_empty() {
        return Ok(());
    }
    let store = &deps.common.store;
    let marked: Vec<(End, OffsetDateTime)> = ends.iter().map(|end| (*end, at)).collect();
    let kept = store.keep_stage_ends(order_id, &marked, now).await?;
    let known = |end: End| kept.iter().find(|(field, _)| *field == end.field()).map(|(_, at)| *at);
    let touched = |stage: Stage| ends.iter().any(|end| matches!(end, End::Entered(s) | End::Left(s) if *s == stage));
    for timed in timed(known).into_iter().filter(|t| touched(t.stage)) {
        let id = format!("stage:{order_id}:{}", timed.stage.name());
        store.count_once(&id, (&hour_of(timed.left_at), channel), &timed.increments, now + STAGE_COUNTED_FOR).await?;
    }
    Ok(())
}
