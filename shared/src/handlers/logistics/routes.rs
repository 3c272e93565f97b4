//! Function logistics-api (API Gateway HTTP API):
//!
//! - The customer (the order's owner, or the shop for them): `GET /shipments/{id}/tracking`,
//!   `POST /shipments/{id}/not-received` (a claim on a delivered parcel: a 48 h clock),
//!   `POST /shipments/{id}/received` (the customer has it: clears an abnormal sign-off),
//!   `PUT /shipments/{id}/delivery-places` (where the parcel may be left): see [`customer`].
//! - Customer service (or operations, admin): `GET /admin/parcel-alerts` (open alerts, oldest
//!   first, paged), `POST /admin/shipments/{id}/claim-resolution`.
//! - Operations, admin: `POST /admin/shipments/{id}/lost`, `GET /admin/courier-kpis?month=`,
//!   `GET`/`PUT /admin/logistics-policy`.

use super::customer;
use super::{change_parcel, LogisticsDeps, LogisticsError, ParcelChange, ParcelView};
use crate::auth::Caller;
use crate::domain::tracking::ClaimResolution;
use crate::domain::{LogisticsPolicy, Shipment, ShipmentId, ShipmentStatus};
use crate::handlers::{conflict, invalid, json_body, policy_document};
use crate::http::{json_response, segments, Problem};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use tracing::{info, warn};

pub async fn handle(deps: &LogisticsDeps, request: Request) -> Result<Response<Body>, Error> {
    Ok(route(deps, &request).await.unwrap_or_else(Problem::into_response))
}

async fn route(deps: &LogisticsDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let path = request.uri().path().to_owned();
    let caller = crate::access::authorize(request)?;
    let who = caller.actor();
    let parts = segments(&path);
    match (request.method().clone(), parts.as_slice()) {
        (Method::GET, ["shipments", id, "tracking"]) => {
            let shipment = owned(deps, &caller, &shipment_id(id)?).await?;
            Ok(json_response(StatusCode::OK, &tracking_view(&shipment)))
        }
        (Method::POST, ["shipments", id, "not-received"]) => {
            customer::open_claim(deps, &caller, request, &shipment_id(id)?).await
        }
        (Method::POST, ["shipments", id, "received"]) => {
            customer::confirm_receipt(deps, &caller, &shipment_id(id)?).await
        }
        (Method::PUT, ["shipments", id, "delivery-places"]) => {
            customer::choose_places(deps, &caller, request, &shipment_id(id)?).await
        }
        (Method::GET, ["admin", "parcel-alerts"]) => {
            let after = request.query_string_parameters_ref().and_then(|q| q.first("after").map(str::to_owned));
            let (alerts, next) = deps.common.store.open_alerts(100, after).await.map_err(unavailable)?;
            Ok(json_response(StatusCode::OK, &serde_json::json!({ "alerts": alerts, "next": next })))
        }
        (Method::POST, ["admin", "shipments", id, "claim-resolution"]) => {
            resolve_claim(deps, &who, request, &shipment_id(id)?).await
        }
        (Method::POST, ["admin", "shipments", id, "lost"]) => declare_lost(deps, &who, &shipment_id(id)?).await,
        (Method::GET, ["admin", "courier-kpis"]) => courier_kpis(deps, request).await,
        (Method::GET | Method::PUT, ["admin", "logistics-policy"]) => {
            let now = deps.common.clock.now();
            policy_document::<LogisticsPolicy>(&deps.common.store, request, &who, now).await
        }
        (_, ["shipments", _, "tracking" | "not-received" | "received" | "delivery-places"])
        | (_, ["admin", "parcel-alerts" | "courier-kpis" | "logistics-policy"])
        | (_, ["admin", "shipments", _, "claim-resolution" | "lost"]) => Err(Problem::method_not_allowed()),
        _ => Err(Problem::route_not_found()),
    }
}

pub(super) fn shipment_id(raw: &str) -> Result<ShipmentId, Problem> {
    ShipmentId::parse(raw).map_err(|e| invalid("shipment_id", e.code, e.detail))
}

pub(super) fn unavailable(err: impl std::fmt::Display) -> Problem {
    warn!(error = %err, "logistics request failed");
    Problem::unavailable()
}

pub(super) fn change_failed(err: LogisticsError) -> Problem {
    match err {
        LogisticsError::ShipmentMissing(_) => Problem::not_found("shipment"),
        LogisticsError::Contended(_) => {
            crate::handlers::busy("parcel-busy", "the parcel kept changing while this request was applied; retry")
        }
        other => unavailable(other),
    }
}

/// The shipment, if the caller may see its order (else 404: no telling whose it is). Staff get
/// here only with a role the route's row of the matrix allows, and see any order's.
pub(super) async fn owned(deps: &LogisticsDeps, caller: &Caller, id: &ShipmentId) -> Result<Shipment, Problem> {
    let (order, shipments) = deps.common.store.order_and_shipments(id.order_id).await.map_err(unavailable)?;
    let visible = order.is_some_and(|o| caller.may_act_on_order_of(&o.customer_id) || !caller.roles().is_empty());
    let shipment = shipments.into_iter().find(|s| &s.shipment_id == id).filter(|_| visible);
    shipment.ok_or_else(|| Problem::not_found("shipment"))
}

/// What the customer sees: the parcel's progress, its claim; not the staff's alerts.
pub(super) fn tracking_view(shipment: &Shipment) -> serde_json::Value {
    let tracking = shipment.tracking.clone().unwrap_or_default();
    serde_json::json!({
        "shipment_id": shipment.shipment_id,
        "courier": shipment.courier.as_ref().map(|c| &c.courier),
        "waybill_number": shipment.waybill.as_ref().map(|w| &w.number),
        "status": tracking.status,
        "promised_by": tracking.promised_by.map(|t| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()),
        "checkpoints": tracking.checkpoints,
        "claim": tracking.claim,
    })
}

/// The parcel's tracking as written, or as stored when the request changed nothing.
pub(super) async fn answer(
    deps: &LogisticsDeps,
    id: &ShipmentId,
    written: Option<Shipment>,
) -> Result<Response<Body>, Problem> {
    let shipment = match written {
        Some(shipment) => shipment,
        None => {
            deps.common.store.shipment(id).await.map_err(unavailable)?.ok_or_else(|| Problem::not_found("shipment"))?
        }
    };
    Ok(json_response(StatusCode::OK, &tracking_view(&shipment)))
}

async fn resolve_claim(
    deps: &LogisticsDeps,
    who: &str,
    request: &Request,
    id: &ShipmentId,
) -> Result<Response<Body>, Problem> {
    let resolution: ClaimResolution = json_body(request)?;
    let written = change_parcel(deps, id, |view, mut tracking| {
        let refundable = parcel_refundable(&view);
        let Some(claim) = tracking.claim.as_mut() else {
            return ParcelChange::Refused(conflict("no-claim", "the customer has not claimed this parcel"));
        };
        if let Some(done) = claim.resolution {
            return if done == resolution {
                ParcelChange::Nothing
            } else {
                ParcelChange::Refused(conflict("claim-resolved", "the claim was resolved otherwise"))
            };
        }
        if let Some(amount_minor) = resolution.amount_minor() {
            if amount_minor <= 0 || amount_minor > refundable {
                return ParcelChange::Refused(invalid(
                    "amount_minor",
                    "amount-out-of-range",
                    format!("more than 0 and at most the {refundable} this parcel's goods were paid"),
                ));
            }
        }
        claim.resolution = Some(resolution);
        claim.resolved_by = Some(who.to_owned());
        claim.resolved_at = Some(view.now);
        let subject = format!("shipments/{id}");
        let audit =
            deps.common.store.audit_record(who, "claim.resolve", &subject, None::<&()>, Some(&resolution), view.now);
        ParcelChange::Change { tracking: Box::new(tracking), extra: Vec::new(), audit: vec![audit] }
    })
    .await
    .map_err(change_failed)??;
    info!(actor = %who, shipment_id = %id, resolved = written.is_some(), "not-received claim resolution");
    answer(deps, id, written).await
}

/// The most a claim on this parcel may give back: the value of the goods it carries (its lines
/// are what was shipped: a shortage took the missing units off them), and no more than what the
/// order brought in and has not given back yet: online, the payment less every shortage refund
/// and the other parcels' claim refunds; cash on delivery, what the courier collected for this
/// parcel.
fn parcel_refundable(view: &ParcelView) -> i64 {
    let goods = view
        .shipment
        .lines
        .iter()
        .try_fold(0i64, |sum, line| line.unit_price_minor.checked_mul(i64::from(line.quantity))?.checked_add(sum))
        .unwrap_or(i64::MAX);
    let brought_in = match view.order.payment_method {
        crate::domain::PaymentMethod::Online => {
            let others = view.shipments.iter().filter(|s| s.shipment_id != view.shipment.shipment_id);
            let claimed: i64 = others.filter_map(Shipment::claim_refund_minor).sum();
            crate::handlers::fulfilment::refund_due(view.order, view.shipments).saturating_sub(claimed)
        }
        crate::domain::PaymentMethod::CashOnDelivery => view.shipment.collected_minor(),
    };
    goods.min(brought_in).max(0)
}

/// Staff declare a parcel lost (the courier admits it, or has gone silent past all chasing):
/// recorded as a LOST checkpoint of their own, so the order's delivery ends.
async fn declare_lost(deps: &LogisticsDeps, who: &str, id: &ShipmentId) -> Result<Response<Body>, Problem> {
    let written = change_parcel(deps, id, |view, mut tracking| {
        if view.shipment.status != ShipmentStatus::HandedOver {
            return ParcelChange::Refused(conflict(
                "shipment-not-handed-over",
                "only a parcel with the courier can be lost",
            ));
        }
        if tracking.is_final() {
            return ParcelChange::Refused(conflict("delivery-ended", "the parcel's delivery has ended"));
        }
        let before = serde_json::json!({ "tracking": tracking.status });
        tracking.declare_lost(view.now);
        let after = serde_json::json!({ "tracking": tracking.status });
        let subject = format!("shipments/{id}");
        let audit =
            deps.common.store.audit_record(who, "shipment.lost", &subject, Some(&before), Some(&after), view.now);
        ParcelChange::Change { tracking: Box::new(tracking), extra: Vec::new(), audit: vec![audit] }
    })
    .await
    .map_err(change_failed)??;
    info!(actor = %who, shipment_id = %id, "parcel declared lost");
    answer(deps, id, written).await
}

async fn courier_kpis(deps: &LogisticsDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let now = deps.common.clock.now();
    let month = crate::handlers::month_asked(request, now)?;
    let policy = deps.policy(now).await.map_err(unavailable)?;
    let months = deps.common.store.courier_months(&month).await.map_err(unavailable)?;
    let kpis: Vec<_> = months.iter().map(|m| m.kpis(&policy.scoring)).collect();
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "month": month, "couriers": kpis })))
}
