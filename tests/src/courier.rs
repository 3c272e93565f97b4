//! The local stack's mock courier: books waybills through the Courier port, the same waybill for
//! the same shipment and courier however often it is asked (as the courier gateway's idempotency
//! key promises); keeps each parcel's checkpoints and answers polls with them; moves a parcel
//! along its journey on demand ([`MockCourier::advance`]) in one of the ways a courier can
//! (normally, stalled, lost, mis-delivered); records chases; and signs pushes as a courier would
//! ([`signed_push`]). Everything is kept for tests and the demo to look at.

use orderflow::courier::{Booking, BookingFuture, Chase, ChaseFuture, Courier, CourierError, TrackingFuture};
use orderflow::domain::shipment::Waybill;
use orderflow::domain::tracking::{Checkpoint, DeliveryPlace, Recipient, TrackingStatus};
use orderflow::domain::CourierId;
use std::collections::HashMap;
use std::sync::Mutex;
use time::OffsetDateTime;

/// How the courier treats a parcel from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handling {
    #[default]
    Normal,
    /// Never moves again.
    Stall,
    /// Its next step is LOST.
    Lose,
    /// Delivered to a neighbour, signed by someone else.
    Misdeliver,
}

#[derive(Default)]
pub struct MockCourier {
    booked: Mutex<HashMap<String, (Booking, Waybill)>>,
    parcels: Mutex<HashMap<String, (Vec<Checkpoint>, Handling)>>,
    polls: Mutex<Vec<(String, std::time::Instant)>>,
    chases: Mutex<Vec<Chase>>,
}

impl MockCourier {
    /// Every booking made, by shipment.
    pub fn bookings(&self) -> Vec<(Booking, Waybill)> {
        self.booked.lock().expect("courier lock").values().cloned().collect()
    }

    /// The courier and waybill number booked for `shipment_id`.
    pub fn waybill_of(&self, shipment_id: &str) -> Option<(CourierId, String)> {
        let booked = self.booked.lock().expect("courier lock");
        let found = booked.values().find(|(b, _)| b.shipment_id.to_string() == shipment_id);
        found.map(|(b, w)| (b.courier.clone(), w.number.clone()))
    }

    /// The courier's own record gains `checkpoint` (answered to the next poll).
    pub fn report(&self, waybill: &str, checkpoint: Checkpoint) {
        self.parcels.lock().expect("courier lock").entry(waybill.to_owned()).or_default().0.push(checkpoint);
    }

    pub fn handle(&self, waybill: &str, handling: Handling) {
        self.parcels.lock().expect("courier lock").entry(waybill.to_owned()).or_default().1 = handling;
    }

    /// The parcel's next step at `at`, as its handling has it (none when stalled or ended).
    pub fn advance(&self, waybill: &str, at: OffsetDateTime) -> Option<Checkpoint> {
        let mut parcels = self.parcels.lock().expect("courier lock");
        let (checkpoints, handling) = parcels.entry(waybill.to_owned()).or_default();
        let done = checkpoints.last().is_some_and(|c| c.status.is_final());
        if done || *handling == Handling::Stall {
            return None;
        }
        let step = |status, raw: &str, place: &str| Checkpoint {
            at,
            status,
            raw_code: raw.into(),
            place: place.into(),
            signed_by: None,
            left_at: None,
        };
        let next = match (checkpoints.len(), *handling) {
            (0, _) => step(TrackingStatus::InTransit, "PICKED_UP", "Hangzhou depot"),
            (_, Handling::Lose) => step(TrackingStatus::Lost, "PARCEL_LOST", "Shanghai hub"),
            (1, _) => step(TrackingStatus::InTransit, "ARRIVED_HUB", "Shanghai hub"),
            (2, _) => step(TrackingStatus::OutForDelivery, "OUT_FOR_DELIVERY", "Local station"),
            (_, Handling::Misdeliver) => Checkpoint {
                signed_by: Some(Recipient::Other),
                left_at: Some(DeliveryPlace::Neighbour),
                ..step(TrackingStatus::Delivered, "SIGNED_BY_NEIGHBOUR", "Local station")
            },
            _ => Checkpoint {
                signed_by: Some(Recipient::Customer),
                left_at: Some(DeliveryPlace::Door),
                ..step(TrackingStatus::Delivered, "SIGNED", "Local station")
            },
        };
        checkpoints.push(next.clone());
        Some(next)
    }

    /// Every poll made: waybill and when.
    pub fn polls(&self) -> Vec<(String, std::time::Instant)> {
        self.polls.lock().expect("courier lock").clone()
    }

    /// Every chase asked for, repeats included (a courier drops a repeated idempotency key;
    /// tests count what the code asked).
    pub fn chases(&self) -> Vec<Chase> {
        self.chases.lock().expect("courier lock").clone()
    }
}

impl Courier for MockCourier {
    fn book<'a>(&'a self, booking: &'a Booking) -> BookingFuture<'a> {
        Box::pin(async move {
            let mut booked = self.booked.lock().expect("courier lock");
            let count = booked.len() + 1;
            let (_, waybill) = booked.entry(booking.idempotency_key()).or_insert_with(|| {
                let number = format!("{}{count:08}", booking.courier.as_str().to_ascii_uppercase().replace('-', ""));
                let label_url = format!("https://labels.mock-courier.invalid/{number}.pdf");
                (booking.clone(), Waybill { number, label_url })
            });
            Ok(waybill.clone())
        })
    }

    fn track<'a>(&'a self, _courier: &'a CourierId, waybill_number: &'a str) -> TrackingFuture<'a> {
        Box::pin(async move {
            self.polls.lock().expect("courier lock").push((waybill_number.to_owned(), std::time::Instant::now()));
            let parcels = self.parcels.lock().expect("courier lock");
            Ok(parcels.get(waybill_number).map(|(c, _)| c.clone()).unwrap_or_default())
        })
    }

    fn chase<'a>(&'a self, chase: &'a Chase) -> ChaseFuture<'a> {
        Box::pin(async move {
            if chase.waybill_number.is_empty() {
                return Err(CourierError::Refused("no waybill".into()));
            }
            self.chases.lock().expect("courier lock").push(chase.clone());
            Ok(())
        })
    }
}

/// The local stack's couriers and their push secrets (`courier:secret`, as
/// `COURIER_WEBHOOK_SECRETS` has them).
pub const LOCAL_COURIERS: [&str; 4] = ["standard-post", "sf", "zto", "jd"];

pub fn local_courier_secret(courier: &str) -> String {
    format!("local-courier-secret-{courier}")
}

pub fn local_courier_secrets() -> String {
    LOCAL_COURIERS.iter().map(|c| format!("{c}:{}", local_courier_secret(c))).collect::<Vec<_>>().join(",")
}

/// A push body and its `Courier-Signature`, signed with `courier`'s local secret at `now`.
pub fn signed_push(courier: &str, body: &serde_json::Value, now: i64) -> (String, String) {
    let payload = body.to_string();
    let signature = orderflow::domain::payment::sign(local_courier_secret(courier).as_bytes(), now, payload.as_bytes());
    (payload, signature)
}
