//! The events of fulfilment: shipments made, moved, short, handed over; orders shipped. Like
//! every event they carry ids, SKUs and amounts, never the customer's address or phone.

use crate::domain::fulfilment_policy::Speed;
use crate::domain::shipment::{MissingUnits, ParcelType};
use crate::domain::{CourierId, OrderId, ShipmentId, ShipmentStatus, Sku, WarehouseId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippedLine {
    pub sku: Sku,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentCreated {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub warehouse: WarehouseId,
    pub lines: Vec<ShippedLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<CourierId>,
    pub parcel_type: ParcelType,
    #[serde(with = "time::serde::rfc3339")]
    pub dispatch_by: OffsetDateTime,
    /// A second member of staff must check it before it is ready.
    pub needs_check: bool,
}

/// Any other move of a shipment (picking, packed, checked, ready, backordered, cancelled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentStatusChanged {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub warehouse: WarehouseId,
    pub from: ShipmentStatus,
    pub to: ShipmentStatus,
    /// The units a cancelled shipment returned to stock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returned: Vec<ShippedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortageDetected {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub warehouse: WarehouseId,
    /// Units found missing, written off.
    pub missing: Vec<MissingUnits>,
    #[serde(with = "time::serde::rfc3339")]
    pub answer_by: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentDispatched {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub warehouse: WarehouseId,
    pub courier: CourierId,
    pub speed: Speed,
    pub waybill_number: String,
    pub insured: bool,
    /// When the courier took it: the month its KPIs count it in.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub handed_over_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderShipped {
    pub order_id: OrderId,
}
