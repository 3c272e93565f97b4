//! Function fulfilment-api (API Gateway HTTP API): the warehouse's routes under
//! `/admin/warehouses/{id}/waves`, `/admin/waves` and `/admin/shipments` (warehouse staff, or
//! those who may administer), the fulfilment policy (operations, admin), and the customer's
//! answer to a shortage (`POST /shipments/{id}/shortage-answer`, the order's owner or the shop).

use super::{dispatch, picking, shortage, view, FulfilmentDeps};
use crate::domain::{FulfilmentPolicy, Shipment, ShipmentId};
pub(super) use crate::handlers::conflict;
pub(super) use crate::handlers::json_body;
use crate::handlers::{invalid, policy_document, warehouse_id};
use crate::http::{segments, Problem};
use crate::store::StoreError;
use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use std::future::Future;
use tracing::warn;

pub async fn handle(deps: &FulfilmentDeps, request: Request) -> Result<Response<Body>, Error> {
    Ok(route(deps, &request).await.unwrap_or_else(Problem::into_response))
}

async fn route(deps: &FulfilmentDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let path = request.uri().path().to_owned();
    let caller = crate::access::authorize(request)?;
    let method = request.method().clone();
    let parts = segments(&path);
    if let ["shipments", id, "shortage-answer"] = parts.as_slice() {
        if method != Method::POST {
            return Err(Problem::method_not_allowed());
        }
        return shortage::customer_answer(deps, &caller, request, &shipment_id(id)?).await;
    }
    if parts.first() != Some(&"admin") {
        return Err(Problem::route_not_found());
    }
    let who = &caller.actor();
    match (method, parts.as_slice()) {
        (Method::GET | Method::PUT, ["admin", "fulfilment-policy"]) => {
            let now = deps.common.clock.now();
            policy_document::<FulfilmentPolicy>(&deps.common.store, request, who, now).await
        }
        (Method::POST, ["admin", "warehouses", wh, "waves"]) => {
            picking::create_wave(deps, request, who, &warehouse_id(wh)?).await
        }
        (Method::GET, ["admin", "waves", wave]) => picking::read_wave(deps, wave).await,
        (Method::POST, ["admin", "waves", wave, "scans"]) => picking::scan(deps, request, who, wave).await,
        (Method::GET, ["admin", "shipments", id]) => view::read(deps, &caller, &shipment_id(id)?).await,
        (Method::POST, ["admin", "shipments", id, "pack"]) => picking::pack(deps, who, &shipment_id(id)?).await,
        (Method::POST, ["admin", "shipments", id, "shortage"]) => {
            picking::report_shortage(deps, request, who, &shipment_id(id)?).await
        }
        (Method::POST, ["admin", "shipments", id, "check"]) => dispatch::check(deps, who, &shipment_id(id)?).await,
        (Method::POST, ["admin", "shipments", id, "label"]) => dispatch::label(deps, who, &shipment_id(id)?).await,
        (Method::POST, ["admin", "shipments", id, "photo"]) => {
            dispatch::photo_upload(deps, request, &shipment_id(id)?).await
        }
        (Method::POST, ["admin", "shipments", id, "hand-over"]) => {
            dispatch::hand_over(deps, who, &shipment_id(id)?).await
        }
        (_, ["admin", "fulfilment-policy" | "waves" | "shipments", ..] | ["admin", "warehouses", _, "waves"]) => {
            Err(Problem::method_not_allowed())
        }
        _ => Err(Problem::route_not_found()),
    }
}

pub(super) fn unavailable(err: impl std::fmt::Display) -> Problem {
    warn!(error = %err, "fulfilment request failed");
    Problem::unavailable()
}

/// Shipment `id` among its order's `shipments` (as one query of the order's partition read
/// them), or 404.
pub(super) fn shipment_in<'a>(shipments: &'a [Shipment], id: &ShipmentId) -> Result<&'a Shipment, Problem> {
    shipments.iter().find(|s| &s.shipment_id == id).ok_or_else(|| Problem::not_found("shipment"))
}

fn shipment_id(raw: &str) -> Result<ShipmentId, Problem> {
    ShipmentId::parse(raw).map_err(|e| invalid("shipment_id", e.code, e.detail))
}

/// Read, decide and write until the write's conditions hold: `attempt` answers `Some` when its
/// write applied, `None` when something moved meanwhile (it is tried again on a fresh read).
pub(super) async fn until_written<T, F, Fut>(deps: &super::FulfilmentCore, mut attempt: F) -> Result<T, Problem>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Problem>>,
{
    for _ in 0..deps.max_attempts {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(crate::handlers::busy("shipment-busy", "the shipment kept changing while this request was applied; retry"))
}

pub(super) fn store_problem(err: StoreError) -> Problem {
    unavailable(err)
}
