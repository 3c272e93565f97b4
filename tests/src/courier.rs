//! The local stack's mock courier: books waybills through the Courier port, the same waybill for
//! the same shipment and courier however often it is asked (as the courier gateway's idempotency key
//! promises), and keeps every booking for tests and the demo to look at.

use orderflow::courier::{Booking, BookingFuture, Courier};
use orderflow::domain::shipment::Waybill;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct MockCourier {
    booked: Mutex<HashMap<String, (Booking, Waybill)>>,
}

impl MockCourier {
    /// Every booking made, by shipment.
    pub fn bookings(&self) -> Vec<(Booking, Waybill)> {
        self.booked.lock().expect("courier lock").values().cloned().collect()
    }
}

impl Courier for MockCourier {
    fn book<'a>(&'a self, booking: &'a Booking) -> BookingFuture<'a> {
        Box::pin(async move {
            let mut booked = self.booked.lock().expect("courier lock");
            let count = booked.len() + 1;
            let (_, waybill) = booked.entry(booking.idempotency_key()).or_insert_with(|| {
                let number = format!("{}{count:08}", booking.courier.as_str().to_ascii_uppercase());
                let label_url = format!("https://labels.mock-courier.invalid/{number}.pdf");
                (booking.clone(), Waybill { number, label_url })
            });
            Ok(waybill.clone())
        })
    }
}
