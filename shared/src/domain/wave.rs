//! Pick waves: which pending shipments of a warehouse are picked together (those due to leave in
//! the same hour, by the same courier, in the same kind of parcel), and the pick list that walks
//! the warehouse once, bin by bin.

use super::shipment::{ParcelType, Shipment, ShipmentId};
use super::values::{CourierId, Sku, WarehouseId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The most shipments one wave takes (one transaction writes them all with the wave).
pub const MAX_WAVE_SHIPMENTS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    pub wave_id: String,
    pub warehouse: WarehouseId,
    /// The hour the wave's shipments are promised to leave by.
    #[serde(with = "time::serde::rfc3339")]
    pub dispatch_hour: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<CourierId>,
    pub parcel_type: ParcelType,
    pub shipments: Vec<ShipmentId>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What a shipment is grouped by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WaveKey {
    pub dispatch_hour: OffsetDateTime,
    pub courier: Option<CourierId>,
    pub parcel_type: ParcelType,
}

impl WaveKey {
    pub fn of(shipment: &Shipment) -> Self {
        let at = shipment.dispatch_by;
        let hour = at.replace_minute(0).and_then(|t| t.replace_second(0)).and_then(|t| t.replace_nanosecond(0));
        Self {
            dispatch_hour: hour.unwrap_or(at),
            courier: shipment.courier.as_ref().map(|c| c.courier.clone()),
            parcel_type: shipment.parcel_type,
        }
    }
}

/// The next wave from `pending` (soonest due first): the group of the soonest shipment, at most
/// `max` of them. Empty when nothing is pending.
pub fn next_wave(pending: &[Shipment], max: usize) -> (Option<WaveKey>, Vec<&Shipment>) {
    let mut sorted: Vec<&Shipment> = pending.iter().collect();
    sorted.sort_by_key(|s| (s.dispatch_by, s.shipment_id.clone()));
    let Some(first) = sorted.first() else { return (None, Vec::new()) };
    let key = WaveKey::of(first);
    let members = sorted.into_iter().filter(|s| WaveKey::of(s) == key).take(max.clamp(1, MAX_WAVE_SHIPMENTS)).collect();
    (Some(key), members)
}

/// One stop of the picker's walk: what to take from a bin, and for which shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PickStop {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    pub sku: Sku,
    pub barcode: String,
    pub quantity: u32,
    pub shipment_id: ShipmentId,
}

/// Every unit still to pick in `shipments`, ordered by bin (SKUs without a bin last), then SKU.
pub fn pick_list(shipments: &[Shipment]) -> Vec<PickStop> {
    let mut stops: Vec<PickStop> = shipments
        .iter()
        .flat_map(|s| {
            s.lines.iter().filter(|l| l.remaining() > 0).map(|l| PickStop {
                bin: l.bin.clone(),
                sku: l.sku.clone(),
                barcode: l.barcode.clone(),
                quantity: l.remaining(),
                shipment_id: s.shipment_id.clone(),
            })
        })
        .collect();
    stops.sort_by(|a, b| {
        (a.bin.is_none(), &a.bin, &a.sku, &a.shipment_id).cmp(&(b.bin.is_none(), &b.bin, &b.sku, &b.shipment_id))
    });
    stops
}
