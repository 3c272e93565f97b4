//! Function dashboard (SQS, fed by the Dashboard rule): keeps the operations dashboard's
//! counters up to date from the bus events (see [`crate::domain::dashboard`] for what moves
//! which counter). Each event is counted once, in the hour the bus took it (seconds after the
//! change), however late it is processed, under the channel of the order it is about.

use super::{each_message, BusEnvelope, Common};
use crate::domain::dashboard::{hour_of, tally, Metric};
use crate::domain::ShipmentId;
use crate::store::StoreError;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use thiserror::Error;

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
    store.count_event(event_id, &hour_of(on_bus.unwrap_or(now)), &channel, &tally.increments, now).await?;
    Ok(())
}
