//! From packed to handed over: the second person's check, the waybill booked through the
//! Courier port (label printed: READY), the photo's upload URL, and the hand-over, refused until
//! the photo is there. The last hand-over of an order ships it, in the same transaction.

use super::routes::{conflict, json_body, shipment_in, store_problem, unavailable, until_written};
use super::{change_of_one, ships, FulfilmentDeps};
use crate::courier::Booking;
use crate::domain::{Order, PaymentMethod, Shipment, ShipmentId, ShipmentStatus};
use crate::handlers::booking::{booking_address, courier_problem};
use crate::http::{json_response, Problem};
use crate::photos::{DispatchPhotos, PhotoError};
use crate::store::ShipmentWrite;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use tracing::info;

async fn read(deps: &FulfilmentDeps, id: &ShipmentId) -> Result<Shipment, Problem> {
    deps.common.store.shipment(id).await.map_err(store_problem)?.ok_or_else(|| Problem::not_found("shipment"))
}

/// Save a change staff made to a parcel, audited as `action` by `who`.
async fn save(
    deps: &FulfilmentDeps,
    (who, action): (&str, &str),
    changed: Shipment,
    seen: &Shipment,
) -> Result<Option<Shipment>, Problem> {
    let store = &deps.common.store;
    let write = store.put_shipment(ShipmentWrite { shipment: &changed, seen: Some(seen) });
    let audit = store.shipment_audit(who, action, (seen, &changed), serde_json::Value::Null, changed.updated_at);
    Ok(store.commit(vec![write, audit]).await.map_err(store_problem)?.then_some(changed))
}

/// A second member of staff checks the packed parcel: never one who picked it.
pub(super) async fn check(deps: &FulfilmentDeps, who: &str, id: &ShipmentId) -> Result<Response<Body>, Problem> {
    let checked = until_written(deps, || async {
        let shipment = read(deps, id).await?;
        if shipment.status != ShipmentStatus::Packed {
            return Err(conflict("shipment-not-packed", format!("the shipment is {}", shipment.status.as_str())));
        }
        if shipment.pickers.iter().any(|p| p == who) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "check-by-picker",
                "Checked by its picker",
                "the check must be made by someone who did not pick this shipment",
            ));
        }
        let now = deps.common.clock.now();
        let changed = Shipment {
            status: ShipmentStatus::Checked,
            checked_by: Some(who.to_owned()),
            updated_at: now,
            ..shipment.clone()
        };
        save(deps, (who, "shipment.check"), changed, &shipment).await
    })
    .await?;
    info!(actor = %who, shipment_id = %id, "checked");
    Ok(json_response(StatusCode::OK, &checked))
}

/// Book the waybill (the courier chosen when the shipment was made, chosen again if it has since
/// been suspended or the policy dropped it) and mark the shipment READY. The booking carries the
/// parcel's address in the clear: the courier prints it on the label.
pub(super) async fn label(deps: &FulfilmentDeps, who: &str, id: &ShipmentId) -> Result<Response<Body>, Problem> {
    let ready = until_written(deps, || async {
        // The shipment and its order (the booking's address) in one query of the order's partition.
        let (order, shipments) = deps.common.store.order_and_shipments(id.order_id).await.map_err(store_problem)?;
        let shipment = shipment_in(&shipments, id)?;
        let order = order.ok_or_else(|| Problem::not_found("order"))?;
        let needs_check = !shipment.check_reasons.is_empty();
        match shipment.status {
            ShipmentStatus::Packed if needs_check => {
                return Err(conflict("check-required", "a second member of staff must check this shipment first")
                    .with_extension("check_reasons", &shipment.check_reasons))
            }
            ShipmentStatus::Packed | ShipmentStatus::Checked => {}
            other => return Err(conflict("shipment-not-packed", format!("the shipment is {}", other.as_str()))),
        }
        let now = deps.common.clock.now();
        let mut changed = shipment.clone();
        let booking = booking_for(deps, &mut changed, &order, now).await?;
        let waybill = deps.courier.book(&booking).await.map_err(courier_problem)?;
        // The courier's pushes name the waybill: the link finds the shipment they are about.
        let store = &deps.common.store;
        let link = store.link_waybill(&booking.courier, &waybill.number, id);
        changed.waybill = Some(waybill);
        changed.status = ShipmentStatus::Ready;
        changed.updated_at = now;
        let write = store.put_shipment(ShipmentWrite { shipment: &changed, seen: Some(shipment) });
        let detail =
            serde_json::json!({ "courier": booking.courier, "waybill": changed.waybill.as_ref().map(|w| &w.number) });
        let audit = store.shipment_audit(who, "shipment.label", (shipment, &changed), detail, now);
        Ok(store.commit(vec![write, link, audit]).await.map_err(store_problem)?.then_some(changed))
    })
    .await?;
    info!(actor = %who, shipment_id = %id, "waybill booked");
    Ok(json_response(StatusCode::OK, &ready))
}

/// What the courier is asked to carry for `shipment`, whose courier is chosen again here when
/// the one chosen at planning is suspended or no longer in the policy.
async fn booking_for(
    deps: &FulfilmentDeps,
    shipment: &mut Shipment,
    order: &Order,
    now: OffsetDateTime,
) -> Result<Booking, Problem> {
    let policy = deps.policy(now).await.map_err(store_problem)?;
    let still_usable = (shipment.courier.as_ref())
        .is_some_and(|c| policy.couriers.iter().any(|rule| rule.id == c.courier && !rule.suspended));
    if !still_usable {
        super::plan::choose_courier(shipment, order, &policy);
    }
    let Some(courier) = shipment.courier.clone() else {
        return Err(conflict("no-courier", "no courier of the fulfilment policy can take this parcel"));
    };
    Ok(Booking {
        shipment_id: shipment.shipment_id.clone(),
        courier: courier.courier,
        speed: courier.speed,
        address: booking_address(&deps.sealer, order).await?,
        weight_grams: shipment.weight_grams(),
        volume_cm3: shipment.volume_cm3(),
        insured_value_minor: courier.insured.then(|| shipment.value_minor()),
        return_for: None,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhotoRequest {
    content_type: String,
}

/// A presigned PUT for the parcel's photo.
pub(super) async fn photo_upload(
    deps: &FulfilmentDeps,
    request: &Request,
    id: &ShipmentId,
) -> Result<Response<Body>, Problem> {
    let body: PhotoRequest = json_body(request)?;
    let shipment = read(deps, id).await?;
    // Only a packed parcel is photographed: a photo taken earlier is no evidence of it.
    if !matches!(shipment.status, ShipmentStatus::Packed | ShipmentStatus::Checked | ShipmentStatus::Ready) {
        return Err(conflict("shipment-not-packed", format!("the shipment is {}", shipment.status.as_str())));
    }
    let upload = deps.photos.upload_url(&DispatchPhotos::key(id), &body.content_type).await.map_err(photo_problem)?;
    Ok(json_response(StatusCode::OK, &upload))
}

fn photo_problem(err: PhotoError) -> Problem {
    let (status, code) = match &err {
        PhotoError::Missing => (StatusCode::CONFLICT, "photo-missing"),
        PhotoError::NotAnImage(_) => (StatusCode::UNPROCESSABLE_ENTITY, "photo-not-an-image"),
        PhotoError::BadSize(_) => (StatusCode::UNPROCESSABLE_ENTITY, "photo-size"),
        PhotoError::Storage(_) => return unavailable(err),
    };
    Problem::new(status, code, "Dispatch photo", err.to_string()).with_field("photo")
}

/// Hand the parcel to the courier: READY, the photo there, the order not cancelled. When it is
/// the order's last shipment to end, the order is SHIPPED in the same transaction; otherwise its
/// siblings must be as read, so two last hand-overs cannot both miss shipping the order.
pub(super) async fn hand_over(deps: &FulfilmentDeps, who: &str, id: &ShipmentId) -> Result<Response<Body>, Problem> {
    let store = &deps.common.store;
    let handed = until_written(deps, || async {
        let (order, shipments) = store.order_and_shipments(id.order_id).await.map_err(store_problem)?;
        let order = order.ok_or_else(|| Problem::not_found("order"))?;
        let shipment = shipment_in(&shipments, id)?;
        if shipment.status != ShipmentStatus::Ready {
            return Err(conflict("shipment-not-ready", format!("the shipment is {}", shipment.status.as_str())));
        }
        if !ships(&order) && shipment.for_ticket.is_none() {
            return Err(conflict("order-not-shippable", format!("the order is {}", order.status.as_str())));
        }
        let key = DispatchPhotos::key(id);
        let etag = deps.photos.check(&key).await.map_err(photo_problem)?;
        let now = deps.common.clock.now();
        let mut tracking = shipment.tracking.clone().unwrap_or_default();
        tracking.hand_over(now);
        let changed = Shipment {
            status: ShipmentStatus::HandedOver,
            photo_key: Some(key),
            photo_etag: etag,
            tracking: Some(tracking),
            updated_at: now,
            ..shipment.clone()
        };
        // A cash-on-delivery parcel's units leave reserved now: the courier collects for them.
        let leaving: Vec<_> = (changed.lines.iter())
            .filter(|_| shipment.payment_method == PaymentMethod::CashOnDelivery)
            .map(|l| store.stock_shift(&l.sku, &changed.warehouse, l.quantity, ("reserved", "sold"), now))
            .collect();
        let mut writes = change_of_one(store, &order, &shipments, &changed, leaving, false, now);
        let detail = serde_json::json!({ "photo_etag": changed.photo_etag });
        writes.push(store.shipment_audit(who, "shipment.hand-over", (shipment, &changed), detail, now));
        Ok(store.commit(writes).await.map_err(store_problem)?.then_some(changed))
    })
    .await?;
    info!(actor = %who, shipment_id = %id, "handed over");
    Ok(json_response(StatusCode::OK, &handed))
}
