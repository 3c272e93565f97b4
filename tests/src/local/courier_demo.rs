//! The mock courier's side of the demo: parcels moved along their journeys, each step sent to
//! the courier webhook as a signed push, as a courier's system would send it.
//!
//! - `POST /_mock-courier/waybills/{courier}/{number}/advance`: the parcel's next step (picked
//!   up, at the hub, out for delivery, delivered; or lost, or left with a neighbour, as its
//!   handling says), pushed to the webhook.
//! - `POST /_mock-courier/waybills/{courier}/{number}/handling` with
//!   `{"handling": "normal" | "stall" | "lose" | "misdeliver"}`: how the courier treats the
//!   parcel from now on.
//! - `POST /_mock-courier/waybills/{courier}/{number}/collection`: the cash collected for a
//!   cash-on-delivery parcel (its order's total unless `amount_minor` is given), pushed.
//! - On a timer (`LocalOptions::courier_moves_every`), every handed-over parcel takes its next
//!   step, so a parcel left alone is delivered in a few ticks.

use super::gateway::{deliver_signed, json, plain, Gateway};
use super::stand_ins::StandIns;
use crate::courier::Handling;
use hyper::body::Bytes;
use orderflow::domain::ShipmentStatus;
use serde_json::{json as value, Value};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HandlingRequest {
    handling: Handling,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CollectionRequest {
    #[serde(default)]
    amount_minor: Option<i64>,
}

impl StandIns {
    /// `POST /_mock-courier/waybills/{courier}/{number}/{action}`.
    pub(super) async fn courier_action(&self, gateway: &Gateway, path: &str, body: &[u8]) -> hyper::Response<Bytes> {
        let parts: Vec<&str> = path.trim_start_matches("/_mock-courier/waybills/").split('/').collect();
        let [courier, number, action] = parts.as_slice() else { return plain(404, "Not Found") };
        if self.courier.bookings().iter().all(|(b, w)| b.courier.as_str() != *courier || w.number != *number) {
            return plain(404, "no such waybill");
        }
        match *action {
            "advance" => match self.courier.advance(number, self.clock.now()) {
                Some(step) => {
                    let step = serde_json::to_value(&step).expect("a checkpoint serialises");
                    let pushed = self.push(gateway, courier, value!({"waybill": number, "checkpoints": [step]})).await;
                    json(200, &value!({ "checkpoint": step, "webhook": pushed }))
                }
                None => json(409, &value!({ "message": "the parcel is stalled or its journey has ended" })),
            },
            "handling" => match serde_json::from_slice::<HandlingRequest>(body) {
                Ok(request) => {
                    self.courier.handle(number, request.handling);
                    json(200, &value!({ "waybill_number": number, "handling": request.handling }))
                }
                Err(e) => plain(400, &format!("expected {{\"handling\": \"stall\"}}: {e}")),
            },
            "collection" => self.collect(gateway, courier, number, body).await,
            _ => plain(404, "Not Found"),
        }
    }

    async fn collect(&self, gateway: &Gateway, courier: &str, number: &str, body: &[u8]) -> hyper::Response<Bytes> {
        let request: CollectionRequest = match body {
            [] => CollectionRequest::default(),
            body => match serde_json::from_slice(body) {
                Ok(request) => request,
                Err(e) => return plain(400, &format!("expected {{\"amount_minor\": 1990}} or nothing: {e}")),
            },
        };
        let shipment =
            self.courier.bookings().into_iter().find(|(_, w)| w.number == number).map(|(b, _)| b.shipment_id);
        let order = match shipment {
            Some(id) => self.store.order(id.order_id).await.ok().flatten(),
            None => None,
        };
        let Some(order) = order else { return plain(404, "no order for this waybill") };
        let at = self.clock.now().format(&time::format_description::well_known::Rfc3339).expect("a time formats");
        let amount = request.amount_minor.unwrap_or(order.total_minor);
        let collection = value!({"amount_minor": amount, "currency": order.currency.code(), "collected_at": at});
        let pushed = self.push(gateway, courier, value!({"waybill": number, "collection": collection})).await;
        json(200, &value!({ "collection": collection, "webhook": pushed }))
    }

    /// Every parcel with the courier takes its next step (the timer's tick).
    pub(super) async fn move_parcels(&self, gateway: &Gateway) {
        for (booking, waybill) in self.courier.bookings() {
            let handed_over = matches!(
                self.store.shipment(&booking.shipment_id).await,
                Ok(Some(s)) if s.status == ShipmentStatus::HandedOver
            );
            if !handed_over {
                continue;
            }
            if let Some(step) = self.courier.advance(&waybill.number, self.clock.now()) {
                let step = serde_json::to_value(&step).expect("a checkpoint serialises");
                let body = value!({"waybill": waybill.number, "checkpoints": [step]});
                let pushed = self.push(gateway, booking.courier.as_str(), body).await;
                tracing::info!(waybill = %waybill.number, status = %step["status"], webhook = %pushed["status"], "mock courier moved a parcel");
            }
        }
    }

    /// Sign `body` (given a fresh event id) with the courier's secret and deliver it to the
    /// webhook route, as the courier would; the webhook's status and answer.
    async fn push(&self, gateway: &Gateway, courier: &str, mut body: Value) -> Value {
        body["event_id"] = value!(format!("push_{}", ulid::Ulid::new()));
        let (payload, signature) = crate::courier::signed_push(courier, &body, self.clock.now().unix_timestamp());
        let path = format!("/couriers/{courier}/webhook");
        deliver_signed(gateway, &path, "courier-signature", signature, payload)
            .await
            .unwrap_or_else(|missing| value!({ "status": 500, "body": missing }))
    }
}
