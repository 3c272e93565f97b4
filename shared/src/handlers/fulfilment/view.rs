//! A shipment as staff read it (`GET /admin/shipments/{id}`): the parcel, where it goes as far
//! as every reader of the order sees (country to district, postal code, a locker's station and
//! number) and the phone's last four digits. The warehouse ([`crate::access::PACKING`]) also gets
//! its address in the clear (`deliver_to`: recipient, phone, street, house number) while it packs
//! the parcel: from its pick wave until the courier takes it. Before (waiting for a wave, a
//! shortage, a backorder) and after (handed over, cancelled), it sees what customer service sees;
//! anyone else asks for the clear values with a reason (`POST /admin/orders/{id}/personal-data`).

use super::routes::{shipment_in, store_problem};
use super::FulfilmentDeps;
use crate::auth::Caller;
use crate::domain::{Destination, Shipment, ShipmentId, ShipmentStatus};
use crate::handlers::booking::vault_problem;
use crate::http::{json_response, Problem};
use crate::personal::{parcel_address, ParcelAddress};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;
use tracing::info;

#[derive(Serialize)]
struct StaffShipmentView<'a> {
    #[serde(flatten)]
    shipment: &'a Shipment,
    ship_to: &'a Destination,
    phone_hint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    deliver_to: Option<ParcelAddress>,
}

/// Whether `caller` reads `shipment`'s address in the clear now: it is packing the parcel.
fn packs(caller: &Caller, shipment: &Shipment) -> bool {
    use ShipmentStatus::{Checked, Packed, Picking, Ready};
    caller.has_any(crate::access::PACKING) && matches!(shipment.status, Picking | Packed | Checked | Ready)
}

pub(super) async fn read(deps: &FulfilmentDeps, caller: &Caller, id: &ShipmentId) -> Result<Response<Body>, Problem> {
    let (order, shipments) = deps.common.store.order_and_shipments(id.order_id).await.map_err(store_problem)?;
    let shipment = shipment_in(&shipments, id)?;
    let order = order.ok_or_else(|| Problem::not_found("shipment"))?;
    let deliver_to = if packs(caller, shipment) {
        let address = parcel_address(&deps.sealer, &order).await.map_err(vault_problem)?;
        info!(actor = %caller.actor(), shipment_id = %id, opened = address.is_some(), "parcel address read for packing");
        address
    } else {
        None
    };
    let view =
        StaffShipmentView { shipment, ship_to: &order.shipping_address, phone_hint: &order.phone_hint, deliver_to };
    Ok(json_response(StatusCode::OK, &view))
}
