//! A shipment: the part of a paid order one warehouse sends, from its creation to the hand-over
//! to a courier. Its state machine ([`ShipmentStatus::ways_out`]) lists every transition and what
//! triggers it; the store's write conditions follow it. Scans are checked here, against the
//! shipment alone, so a refused scan is refused before anything is written.

use super::fulfilment_policy::CourierChoice;
use super::values::{Currency, Invalid, OrderId, Sku, WarehouseId};
use super::PaymentMethod;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

// Dates travel as `YYYY-MM-DD`.
time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShipmentStatus {
    /// Waiting for a pick wave.
    Pending,
    /// In a wave: pickers scan its units.
    Picking,
    /// Every unit picked and packed.
    Packed,
    /// Checked by a second member of staff (high value, or a SKU often returned).
    Checked,
    /// Waybill booked, label printed: waiting for the courier.
    Ready,
    /// Given to the courier, with a photo of the parcel. Final for fulfilment.
    HandedOver,
    /// Units were missing at picking: the customer is asked what to do.
    Shortage,
    /// The customer chose to wait for the missing units until a date.
    Backordered,
    /// Stopped: the order was cancelled, or every unit was refunded.
    Cancelled,
}

/// What moves a shipment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipmentTrigger {
    /// A warehouse user: a wave, a scan, a pack, a check, a label, a hand-over.
    Warehouse,
    /// The customer: a shortage answered, the order cancelled.
    Customer,
    /// The scheduled sweeper: a shortage unanswered in time, a backorder's date reached.
    Sweeper,
}

impl ShipmentStatus {
    pub const ALL: [ShipmentStatus; 9] = [
        Self::Pending,
        Self::Picking,
        Self::Packed,
        Self::Checked,
        Self::Ready,
        Self::HandedOver,
        Self::Shortage,
        Self::Backordered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Picking => "PICKING",
            Self::Packed => "PACKED",
            Self::Checked => "CHECKED",
            Self::Ready => "READY",
            Self::HandedOver => "HANDED_OVER",
            Self::Shortage => "SHORTAGE",
            Self::Backordered => "BACKORDERED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Every next status and what moves the shipment there. A cancel of the order reaches every
    /// status before the hand-over.
    pub fn ways_out(self) -> &'static [(ShipmentStatus, ShipmentTrigger)] {
        use ShipmentStatus::*;
        use ShipmentTrigger::*;
        match self {
            Pending => &[(Picking, Warehouse), (Cancelled, Customer)],
            Picking => &[(Packed, Warehouse), (Shortage, Warehouse), (Cancelled, Customer)],
            Packed => &[(Checked, Warehouse), (Ready, Warehouse), (Cancelled, Customer)],
            Checked => &[(Ready, Warehouse), (Cancelled, Customer)],
            Ready => &[(HandedOver, Warehouse), (Cancelled, Customer)],
            // Answered (or defaulted): exchange waits for a wave again, refund packs what is left
            // (or cancels when nothing is), wait backorders.
            Shortage => &[
                (Pending, Customer),
                (Packed, Customer),
                (Backordered, Customer),
                (Cancelled, Customer),
                (Pending, Sweeper),
                (Packed, Sweeper),
                (Backordered, Sweeper),
                (Cancelled, Sweeper),
            ],
            // At its date: the units are there (back to a wave), or the short lines are refunded.
            Backordered => &[(Pending, Sweeper), (Packed, Sweeper), (Cancelled, Sweeper), (Cancelled, Customer)],
            HandedOver | Cancelled => &[],
        }
    }

    pub fn can_become(self, next: ShipmentStatus) -> bool {
        self.ways_out().iter().any(|(to, _)| *to == next)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::HandedOver | Self::Cancelled)
    }
}

/// A shipment's id: its order and its number within the order (`<order id>-<n>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShipmentId {
    pub order_id: OrderId,
    pub number: u32,
}

impl ShipmentId {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let malformed = || Invalid::new("shipment-id-malformed", "a shipment id is <order id>-<number>");
        let (order, number) = value.rsplit_once('-').ok_or_else(malformed)?;
        let order_id = OrderId::parse(order).map_err(|_| malformed())?;
        let number: u32 = number.parse().map_err(|_| malformed())?;
        if !(1..=999).contains(&number) {
            return Err(malformed());
        }
        Ok(Self { order_id, number })
    }
}

impl std::fmt::Display for ShipmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.order_id, self.number)
    }
}

impl TryFrom<String> for ShipmentId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).map_err(|e| e.detail)
    }
}

impl From<ShipmentId> for String {
    fn from(value: ShipmentId) -> String {
        value.to_string()
    }
}

/// A batch of units scanned for a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickedBatch {
    pub batch: String,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    pub expires_on: Option<Date>,
    pub scanned_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentLine {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price_minor: i64,
    /// The barcode on the units, from the catalogue; the SKU itself when it names none.
    pub barcode: String,
    pub perishable: bool,
    pub weight_grams: u32,
    pub volume_cm3: u32,
    /// Where the SKU lies in this warehouse, from the stock item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    #[serde(default)]
    pub picked: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<PickedBatch>,
}

impl ShipmentLine {
    pub fn remaining(&self) -> u32 {
        self.quantity.saturating_sub(self.picked)
    }
}

/// The size class a wave groups parcels by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParcelType {
    Envelope,
    Box,
    Bulky,
}

impl ParcelType {
    pub fn of(weight_grams: u64, volume_cm3: u64) -> Self {
        if weight_grams <= 500 && volume_cm3 <= 2_000 {
            Self::Envelope
        } else if weight_grams <= 20_000 && volume_cm3 <= 60_000 {
            Self::Box
        } else {
            Self::Bulky
        }
    }
}

/// Units of one line found missing at picking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingUnits {
    pub sku: Sku,
    pub missing: u32,
    pub unit_price_minor: i64,
}

/// What the customer may choose when units are missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "choice", rename_all = "snake_case", deny_unknown_fields)]
pub enum ShortageAnswer {
    /// Refund exactly the missing units.
    Refund,
    /// Wait until `until` for the units to come back into stock.
    Wait {
        #[serde(with = "iso_date")]
        until: Date,
    },
    /// Another SKU (at the same price) from this warehouse, or the same SKU from another one.
    Exchange {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sku: Option<Sku>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        warehouse: Option<WarehouseId>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortage {
    pub missing: Vec<MissingUnits>,
    pub reason: String,
    pub reported_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// After this the policy's default answer applies.
    #[serde(with = "time::serde::rfc3339")]
    pub answer_by: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<ShortageAnswer>,
    /// `customer` or `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
}

impl Shortage {
    pub fn value_minor(&self) -> i64 {
        self.missing.iter().map(|m| i64::from(m.missing) * m.unit_price_minor).sum()
    }
}

/// A refund of missing units, requested once (its id is the shipment's and the count).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortageRefund {
    pub refund_id: String,
    pub lines: Vec<MissingUnits>,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waybill {
    pub number: String,
    pub label_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub warehouse: WarehouseId,
    pub status: ShipmentStatus,
    pub payment_method: PaymentMethod,
    /// The payment a refund of missing units goes back to (none for cash on delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    pub currency: Currency,
    /// The destination region, for courier choice.
    pub province: String,
    pub lines: Vec<ShipmentLine>,
    #[serde(with = "time::serde::rfc3339")]
    pub dispatch_by: OffsetDateTime,
    pub parcel_type: ParcelType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<CourierChoice>,
    /// Why a second member of staff must check it; empty when no check is needed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check_reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pickers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortage: Option<Shortage>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    pub backorder_until: Option<Date>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<ShortageRefund>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waybill: Option<Waybill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_key: Option<String>,
    /// The photo's ETag when the parcel was handed over: an object put at the key later (its
    /// upload URL lives a few minutes) no longer matches the evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_etag: Option<String>,
    /// The parcel's tracking, from its waybill on (see [`super::tracking`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<super::tracking::Tracking>,
    /// An after-sales parcel to the customer for this ticket (an exchange's replacement, goods
    /// sent back after QC): prepaid, and the order's status does not follow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ticket: Option<super::ticket::TicketId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: u64,
}

/// One scan at picking, as the handheld sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    pub shipment_id: ShipmentId,
    pub barcode: String,
    pub quantity: u32,
    pub batch: String,
    #[serde(default, with = "iso_date::option")]
    pub expires_on: Option<Date>,
}

/// Why a scan was refused. Nothing is recorded for a refused scan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanRefused {
    #[error("the shipment is {0:?}, not being picked")]
    NotPicking(ShipmentStatus),
    #[error("the shipment belongs to another wave")]
    OtherShipment,
    #[error("no line of this shipment has barcode {0}")]
    WrongSku(String),
    #[error("only {remaining} more of this SKU are to be picked")]
    OverPick { remaining: u32 },
    #[error("quantity must be 1 to 999")]
    BadQuantity,
    #[error("batch must be 1 to 64 characters")]
    BadBatch,
    #[error("this SKU is perishable: the expiry date is required")]
    ExpiryRequired,
    #[error("the batch expired on {0}")]
    Expired(Date),
    #[error("the batch expires on {expires_on}, within {min_days} days")]
    ShortDated { expires_on: Date, min_days: u32 },
}

impl ScanRefused {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotPicking(_) => "shipment-not-picking",
            Self::OtherShipment => "scan-other-shipment",
            Self::WrongSku(_) => "scan-wrong-sku",
            Self::OverPick { .. } => "scan-over-pick",
            Self::BadQuantity => "scan-quantity-invalid",
            Self::BadBatch => "scan-batch-invalid",
            Self::ExpiryRequired => "scan-expiry-required",
            Self::Expired(_) => "scan-batch-expired",
            Self::ShortDated { .. } => "scan-batch-short-dated",
        }
    }

    pub fn field(&self) -> &'static str {
        match self {
            Self::NotPicking(_) | Self::OtherShipment => "shipment_id",
            Self::WrongSku(_) => "barcode",
            Self::OverPick { .. } | Self::BadQuantity => "quantity",
            Self::BadBatch => "batch",
            Self::ExpiryRequired | Self::Expired(_) | Self::ShortDated { .. } => "expires_on",
        }
    }
}

impl Shipment {
    /// The courier reports it delivered.
    /// After-sales still owes something on this parcel: it goes back to the customer and has
    /// not reached an end, or a not-received claim on it is not resolved.
    pub fn after_sales_pending(&self) -> bool {
        let ended = self.status == ShipmentStatus::Cancelled
            || self.tracking.as_ref().and_then(|t| t.status).is_some_and(super::tracking::TrackingStatus::is_final);
        let claim_open = self.tracking.as_ref().and_then(|t| t.claim.as_ref()).is_some_and(|c| c.resolution.is_none());
        (self.for_ticket.is_some() && !ended) || claim_open
    }

    pub fn is_delivered(&self) -> bool {
        self.tracking.as_ref().and_then(|t| t.status) == Some(super::tracking::TrackingStatus::Delivered)
    }

    /// What a settled not-received claim on it gave back (a refund or compensation).
    pub fn claim_refund_minor(&self) -> Option<i64> {
        self.tracking.as_ref()?.claim.as_ref()?.resolution?.amount_minor()
    }

    /// The cash the courier collected for it (cash on delivery).
    pub fn collected_minor(&self) -> i64 {
        self.tracking.as_ref().and_then(|t| t.collection.as_ref()).map_or(0, |c| c.amount_minor)
    }

    pub fn value_minor(&self) -> i64 {
        self.lines.iter().map(|l| i64::from(l.quantity) * l.unit_price_minor).sum()
    }

    pub fn weight_grams(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity) * u64::from(l.weight_grams)).sum()
    }

    pub fn volume_cm3(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity) * u64::from(l.volume_cm3)).sum()
    }

    pub fn fully_picked(&self) -> bool {
        self.lines.iter().all(|l| l.remaining() == 0)
    }

    /// What is still to pick, per line.
    pub fn unpicked(&self) -> Vec<MissingUnits> {
        let short = self.lines.iter().filter(|l| l.remaining() > 0);
        short
            .map(|l| MissingUnits { sku: l.sku.clone(), missing: l.remaining(), unit_price_minor: l.unit_price_minor })
            .collect()
    }

    /// Check `scan` against this shipment, picked in wave `wave_id` on `today`, and record it.
    /// A refused scan leaves the shipment as it was.
    pub fn record_scan(
        &mut self,
        scan: &Scan,
        wave_id: &str,
        picker: &str,
        today: Date,
        min_shelf_days: u32,
    ) -> Result<(), ScanRefused> {
        if self.wave_id.as_deref() != Some(wave_id) {
            return Err(ScanRefused::OtherShipment);
        }
        if self.status != ShipmentStatus::Picking {
            return Err(ScanRefused::NotPicking(self.status));
        }
        if !(1..=999).contains(&scan.quantity) {
            return Err(ScanRefused::BadQuantity);
        }
        let batch = scan.batch.trim();
        if batch.is_empty() || batch.len() > 64 {
            return Err(ScanRefused::BadBatch);
        }
        let line = self
            .lines
            .iter_mut()
            .find(|l| l.barcode == scan.barcode.trim())
            .ok_or_else(|| ScanRefused::WrongSku(scan.barcode.trim().chars().take(64).collect()))?;
        if scan.quantity > line.remaining() {
            return Err(ScanRefused::OverPick { remaining: line.remaining() });
        }
        if line.perishable {
            let expires_on = scan.expires_on.ok_or(ScanRefused::ExpiryRequired)?;
            if expires_on <= today {
                return Err(ScanRefused::Expired(expires_on));
            }
            if (expires_on - today).whole_days() < i64::from(min_shelf_days) {
                return Err(ScanRefused::ShortDated { expires_on, min_days: min_shelf_days });
            }
        }
        line.picked += scan.quantity;
        line.batches.push(PickedBatch {
            batch: batch.to_owned(),
            quantity: scan.quantity,
            expires_on: scan.expires_on,
            scanned_by: picker.to_owned(),
        });
        if !self.pickers.iter().any(|p| p == picker) {
            self.pickers.push(picker.to_owned());
        }
        Ok(())
    }

    /// Back to the pick queue, to be picked in a new wave by `dispatch_by` (the units still to
    /// pick: an exchange's, or a backorder's that came back).
    pub fn back_to_picking(&mut self, dispatch_by: OffsetDateTime) {
        self.status = ShipmentStatus::Pending;
        self.wave_id = None;
        self.dispatch_by = dispatch_by;
    }

    /// Add `line`'s units to the shipment: to the line of the same SKU if there is one (so
    /// every SKU stays one scannable line), else as a new line.
    pub fn add_units(&mut self, line: ShipmentLine) {
        match self.lines.iter_mut().find(|l| l.sku == line.sku) {
            Some(existing) => existing.quantity += line.quantity,
            None => self.lines.push(line),
        }
    }

    /// Take refunded units off the shipment's lines (lines left empty go).
    pub fn remove_units(&mut self, missing: &[MissingUnits]) {
        for gone in missing {
            if let Some(line) = self.lines.iter_mut().find(|l| l.sku == gone.sku) {
                line.quantity = line.quantity.saturating_sub(gone.missing);
                line.picked = line.picked.min(line.quantity);
            }
        }
        self.lines.retain(|l| l.quantity > 0);
    }
}

#[cfg(test)]
#[path = "shipment_tests.rs"]
mod tests;
