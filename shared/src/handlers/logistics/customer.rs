//! The customer's side of a parcel: a not-received claim, confirming receipt, and where the
//! courier may leave it (a sign-off anywhere else raises ABNORMAL_SIGN_OFF).

use super::routes::{answer, change_failed, owned};
use super::{change_parcel, LogisticsDeps, ParcelChange};
use crate::auth::Caller;
use crate::domain::tracking::{DeliveryPlace, NotReceivedClaim, TrackingStatus};
use crate::domain::ShipmentId;
use crate::handlers::{conflict, invalid, json_body};
use crate::http::Problem;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimRequest {
    #[serde(default)]
    note: Option<String>,
}

pub async fn open_claim(
    deps: &LogisticsDeps,
    caller: &Caller,
    request: &Request,
    id: &ShipmentId,
) -> Result<Response<Body>, Problem> {
    let body: ClaimRequest = json_body(request)?;
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(invalid("note", "note-too-long", "at most 500 characters"));
    }
    owned(deps, caller, id).await?;
    let who = caller.actor();
    let written = change_parcel(deps, id, |view, mut tracking| {
        if tracking.status != Some(TrackingStatus::Delivered) {
            return ParcelChange::Refused(conflict(
                "parcel-not-delivered",
                "a not-received claim is for a parcel the courier reports delivered",
            ));
        }
        if tracking.claim.is_some() {
            return ParcelChange::Nothing;
        }
        tracking.claim = Some(NotReceivedClaim {
            claim_id: format!("{id}-claim"),
            opened_at: view.now,
            resolve_by: view.now + time::Duration::hours(i64::from(view.policy.claim_resolve_hours)),
            opened_by: who.clone(),
            note: body.note.clone(),
            resolution: None,
            resolved_by: None,
            resolved_at: None,
        });
        ParcelChange::Change { tracking: Box::new(tracking), extra: Vec::new(), audit: Vec::new() }
    })
    .await
    .map_err(change_failed)??;
    answer(deps, id, written).await
}

pub async fn confirm_receipt(
    deps: &LogisticsDeps,
    caller: &Caller,
    id: &ShipmentId,
) -> Result<Response<Body>, Problem> {
    owned(deps, caller, id).await?;
    let written = change_parcel(deps, id, |view, mut tracking| {
        if tracking.status != Some(TrackingStatus::Delivered) {
            return ParcelChange::Refused(conflict(
                "parcel-not-delivered",
                "the courier has not reported it delivered",
            ));
        }
        if tracking.receipt_confirmed_at.is_some() {
            return ParcelChange::Nothing;
        }
        tracking.receipt_confirmed_at = Some(view.now);
        ParcelChange::Change { tracking: Box::new(tracking), extra: Vec::new(), audit: Vec::new() }
    })
    .await
    .map_err(change_failed)??;
    answer(deps, id, written).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlacesRequest {
    places: Vec<DeliveryPlace>,
}

/// Where the parcel may be left, chosen by its customer until it is delivered; until then the
/// policy's default places apply.
pub async fn choose_places(
    deps: &LogisticsDeps,
    caller: &Caller,
    request: &Request,
    id: &ShipmentId,
) -> Result<Response<Body>, Problem> {
    let mut body: PlacesRequest = json_body(request)?;
    body.places.sort_by_key(|p| *p as u8);
    body.places.dedup();
    if body.places.is_empty() {
        return Err(invalid("places", "places-empty", "name at least one place the parcel may be left"));
    }
    owned(deps, caller, id).await?;
    let written = change_parcel(deps, id, |_, mut tracking| {
        if tracking.is_final() {
            return ParcelChange::Refused(conflict("delivery-ended", "the parcel's delivery has ended"));
        }
        // The courier is on the doorstep: a choice now would judge a delivery already made.
        if tracking.status == Some(TrackingStatus::OutForDelivery) {
            return ParcelChange::Refused(conflict("out-for-delivery", "the parcel is out for delivery"));
        }
        if tracking.chosen_places == body.places {
            return ParcelChange::Nothing;
        }
        tracking.chosen_places = body.places.clone();
        ParcelChange::Change { tracking: Box::new(tracking), extra: Vec::new(), audit: Vec::new() }
    })
    .await
    .map_err(change_failed)??;
    answer(deps, id, written).await
}
