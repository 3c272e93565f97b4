//! Couriers, through a port: booking a parcel returns its waybill number and label; tracking a
//! waybill returns its checkpoints; a chase asks the courier to look into a delayed parcel.
//! Production
//! talks to the courier gateway over HTTPS ([`HttpCourier`]); the local stack's mock courier
//! serves the same contract. A booking is keyed by the shipment and courier, so a retried booking
//! (a lost response, a redelivered request) gets the same waybill rather than a second parcel.

use crate::domain::fulfilment_policy::Speed;
use crate::domain::shipment::Waybill;
use crate::domain::tracking::{AlertKind, Checkpoint};
use crate::domain::{CourierId, ShipmentId};
use crate::personal::ParcelAddress;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// What the courier is asked to carry, and where: the one outbound message that holds the
/// customer's name, phone and street in the clear, since the courier prints them on the label
/// and calls the number at the door. It goes over HTTPS to the courier gateway only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub shipment_id: ShipmentId,
    pub courier: CourierId,
    pub speed: Speed,
    /// Where the parcel goes; for a return, where the courier collects it.
    pub address: ParcelAddress,
    pub weight_grams: u64,
    pub volume_cm3: u64,
    /// Declared value when insured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insured_value_minor: Option<i64>,
    /// A return from the customer to the warehouse, for this after-sales ticket: a parcel of
    /// its own, booked once per ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_for: Option<String>,
}

impl Booking {
    /// One parcel per shipment and courier: a retry gets the same waybill, and a courier chosen
    /// again (the first suspended) is a new booking, not the first courier's waybill.
    pub fn idempotency_key(&self) -> String {
        if let Some(ticket) = &self.return_for {
            return format!("return:{ticket}:{}", self.courier.as_str());
        }
        format!("{}:{}", self.shipment_id, self.courier.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CourierError {
    #[error("the courier refused the booking: {0}")]
    Refused(String),
    #[error("the courier could not be reached: {0}")]
    Unavailable(String),
}

pub type BookingFuture<'a> = Pin<Box<dyn Future<Output = Result<Waybill, CourierError>> + Send + 'a>>;
pub type TrackingFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Checkpoint>, CourierError>> + Send + 'a>>;
pub type ChaseFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CourierError>> + Send + 'a>>;

/// A request to the courier to look into a delayed or doubtful parcel. The key is the alert's,
/// so a repeated chase of the same alert is one case at the courier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chase {
    pub courier: CourierId,
    pub waybill_number: String,
    pub reason: AlertKind,
    pub idempotency_key: String,
}

pub trait Courier: Send + Sync {
    /// Book `booking`; the same shipment booked again returns the same waybill.
    fn book<'a>(&'a self, booking: &'a Booking) -> BookingFuture<'a>;

    /// Every checkpoint the courier has for the waybill (the caller keeps each once).
    fn track<'a>(&'a self, courier: &'a CourierId, waybill_number: &'a str) -> TrackingFuture<'a>;

    fn chase<'a>(&'a self, chase: &'a Chase) -> ChaseFuture<'a>;
}

/// The courier gateway's HTTP contract: `POST {base}/waybills` with the booking as JSON and
/// [`Booking::idempotency_key`] as `Idempotency-Key`; 200/201 with `{"waybill_number", "label_url"}`.
/// `GET {base}/waybills/{courier}/{number}/checkpoints` answers `{"checkpoints": [...]}`;
/// `POST {base}/chases` takes a [`Chase`] with its key as `Idempotency-Key`.
#[derive(Clone)]
pub struct HttpCourier {
    api: crate::outbound::JsonApi,
}

#[derive(Deserialize)]
struct BookedWaybill {
    waybill_number: String,
    label_url: String,
}

impl From<crate::outbound::OutboundError> for CourierError {
    fn from(err: crate::outbound::OutboundError) -> Self {
        match err {
            refused @ crate::outbound::OutboundError::Refused { .. } => Self::Refused(refused.to_string()),
            crate::outbound::OutboundError::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

impl HttpCourier {
    /// A client for the gateway at `base` (https, or http on loopback for the local stack).
    pub fn new(base: impl Into<String>) -> Self {
        Self { api: crate::outbound::JsonApi::new(base) }
    }

    async fn post(&self, booking: &Booking) -> Result<Waybill, CourierError> {
        let body = serde_json::to_vec(booking).expect("a booking serialises");
        let booked: BookedWaybill =
            self.api.call_for(hyper::Method::POST, "/waybills", Some((body, booking.idempotency_key()))).await?;
        Ok(Waybill { number: booked.waybill_number, label_url: booked.label_url })
    }

    async fn checkpoints(&self, courier: &CourierId, number: &str) -> Result<Vec<Checkpoint>, CourierError> {
        #[derive(Deserialize)]
        struct Answer {
            checkpoints: Vec<Checkpoint>,
        }
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(CourierError::Refused(format!("waybill number {number:?} is not letters and digits")));
        }
        let path = format!("/waybills/{}/{number}/checkpoints", courier.as_str());
        let answer: Answer = self.api.call_for(hyper::Method::GET, &path, None).await?;
        Ok(answer.checkpoints)
    }
}

impl Courier for HttpCourier {
    fn book<'a>(&'a self, booking: &'a Booking) -> BookingFuture<'a> {
        Box::pin(self.post(booking))
    }

    fn track<'a>(&'a self, courier: &'a CourierId, waybill_number: &'a str) -> TrackingFuture<'a> {
        Box::pin(self.checkpoints(courier, waybill_number))
    }

    fn chase<'a>(&'a self, chase: &'a Chase) -> ChaseFuture<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(chase).expect("a chase serialises");
            let key = chase.idempotency_key.clone();
            self.api.call(hyper::Method::POST, "/chases", Some((body, key))).await.map(|_| ()).map_err(Into::into)
        })
    }
}
