//! The events of logistics: couriers' pushes received, parcels tracked, delayed, delivered or
//! lost, not-received claims, cash collected; orders delivered. Ids, codes and amounts only: the
//! place of a checkpoint is a depot or a town, never the customer's street.

use crate::domain::tracking::{AlertKind, Checkpoint, ClaimResolution, TrackingStatus};
use crate::domain::{CourierId, Currency, OrderId, ShipmentId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A courier's report that it collected the cash for a cash-on-delivery parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionReport {
    pub amount_minor: i64,
    pub currency: Currency,
    #[serde(with = "time::serde::rfc3339")]
    pub collected_at: OffsetDateTime,
}

/// One signed push of a courier's, as stored in the inbox: checkpoints of one waybill, or a
/// cash collection for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourierPush {
    pub courier: CourierId,
    /// The courier's id of its push. Named apart from `event_id`, which every announcement's
    /// detail carries as its own id and would otherwise replace this one on the bus.
    #[serde(rename = "courier_event_id")]
    pub event_id: String,
    pub waybill: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoints: Vec<Checkpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionReport>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

/// What every parcel event names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelRef {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub courier: CourierId,
    pub waybill_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingUpdated {
    #[serde(flatten)]
    pub parcel: ParcelRef,
    pub status: TrackingStatus,
    pub raw_code: String,
    #[serde(with = "time::serde::rfc3339")]
    pub latest_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelStuck {
    #[serde(flatten)]
    pub parcel: ParcelRef,
    pub alert_id: String,
    pub kind: AlertKind,
    #[serde(with = "time::serde::rfc3339")]
    pub raised_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelAlertCleared {
    #[serde(flatten)]
    pub parcel: ParcelRef,
    pub alert_id: String,
    pub kind: AlertKind,
    #[serde(with = "time::serde::rfc3339")]
    pub cleared_at: OffsetDateTime,
}

/// A parcel's delivery ended: DELIVERED (on time or not), LOST or RETURNED_TO_SENDER.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelDeliveryEnded {
    #[serde(flatten)]
    pub parcel: ParcelRef,
    pub status: TrackingStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Delivered by the promised time (false unless delivered).
    pub on_time: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotReceivedClaimOpened {
    #[serde(flatten)]
    pub parcel: ParcelRef,
    pub claim_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub resolve_by: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotReceivedClaimResolved {
    #[serde(flatten)]
    pub parcel: ParcelRef,
    pub claim_id: String,
    pub resolution: ClaimResolution,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashCollected {
    #[serde(flatten)]
    pub parcel: ParcelRef,
    pub report_id: String,
    pub amount_minor: i64,
    pub currency: Currency,
    /// What the parcel's units are worth: a different amount is for finance to look at.
    pub expected_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDelivered {
    pub order_id: OrderId,
    /// When the last parcel was delivered: the after-sales window counts from here.
    #[serde(with = "time::serde::rfc3339")]
    pub delivered_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUndelivered {
    pub order_id: OrderId,
}
