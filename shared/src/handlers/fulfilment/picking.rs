//! Picking: waves made from a warehouse's pending shipments, scans checked against the shipment
//! (a refused scan writes nothing), packing when every unit is picked, and a short pick reported
//! as a shortage: the missing units written off (stock conserved) and the customer asked.

use super::routes::{conflict, json_body, store_problem, until_written};
use super::{units_counter, FulfilmentDeps};
use crate::domain::shipment::{Scan, Shortage};
use crate::domain::wave::{next_wave, pick_list, Wave, MAX_WAVE_SHIPMENTS};
use crate::domain::{Shipment, ShipmentId, ShipmentStatus, WarehouseId};
use crate::http::{json_response, Problem};
use crate::store::ShipmentWrite;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use tracing::info;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaveRequest {
    #[serde(default)]
    max_shipments: Option<usize>,
}

/// How far ahead a wave looks among the pending shipments (soonest due first).
const PENDING_LOOKAHEAD: i32 = 200;

pub(super) async fn create_wave(
    deps: &FulfilmentDeps,
    request: &Request,
    who: &str,
    warehouse: &WarehouseId,
) -> Result<Response<Body>, Problem> {
    // The body is optional: an empty one asks for the default size.
    let body: WaveRequest = if crate::http::body_bytes(request.body()).is_empty() {
        WaveRequest { max_shipments: None }
    } else {
        json_body(request)?
    };
    let max = body.max_shipments.unwrap_or(20);
    if !(1..=MAX_WAVE_SHIPMENTS).contains(&max) {
        let detail = format!("max_shipments is 1 to {MAX_WAVE_SHIPMENTS}");
        return Err(Problem::new(StatusCode::BAD_REQUEST, "wave-size-invalid", "Invalid wave size", detail)
            .with_field("max_shipments"));
    }
    let store = &deps.common.store;
    let (wave, members) = until_written(deps, || async {
        let pending = store.pending_shipments(warehouse, PENDING_LOOKAHEAD).await.map_err(store_problem)?;
        let (key, members) = next_wave(&pending, max);
        let Some(key) = key else {
            return Err(conflict("nothing-to-pick", format!("no shipment of {warehouse} is waiting for a wave")));
        };
        let now = deps.common.clock.now();
        let wave = Wave {
            wave_id: ulid::Ulid::new().to_string(),
            warehouse: warehouse.clone(),
            dispatch_hour: key.dispatch_hour,
            courier: key.courier,
            parcel_type: key.parcel_type,
            shipments: members.iter().map(|s| s.shipment_id.clone()).collect(),
            created_by: who.to_owned(),
            created_at: now,
        };
        let picking: Vec<Shipment> = members
            .iter()
            .map(|s| Shipment {
                status: ShipmentStatus::Picking,
                wave_id: Some(wave.wave_id.clone()),
                updated_at: now,
                ..(*s).clone()
            })
            .collect();
        let mut writes = vec![store.put_wave(&wave)];
        writes.extend(
            picking
                .iter()
                .zip(&members)
                .map(|(s, read)| store.put_shipment(ShipmentWrite { shipment: s, seen: Some(read) })),
        );
        let subject = format!("waves/{}", wave.wave_id);
        writes.push(store.audit_record(who, "wave.create", &subject, None::<&()>, Some(&wave), now));
        Ok(store.commit(writes).await.map_err(store_problem)?.then_some((wave, picking)))
    })
    .await?;
    info!(actor = %who, wave_id = %wave.wave_id, shipments = members.len(), "pick wave created");
    let list = pick_list(&members);
    Ok(json_response(StatusCode::CREATED, &serde_json::json!({ "wave": wave, "pick_list": list })))
}

pub(super) async fn read_wave(deps: &FulfilmentDeps, wave_id: &str) -> Result<Response<Body>, Problem> {
    let store = &deps.common.store;
    let wave = store.wave(wave_id).await.map_err(store_problem)?.ok_or_else(|| Problem::not_found("wave"))?;
    let shipments = store.shipments(&wave.shipments).await.map_err(store_problem)?;
    let picking: Vec<Shipment> = shipments
        .iter()
        .filter(|s| s.status == ShipmentStatus::Picking && s.wave_id.as_deref() == Some(wave_id))
        .cloned()
        .collect();
    let statuses: Vec<_> = shipments.iter().map(|s| (s.shipment_id.to_string(), s.status)).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "wave": wave, "pick_list": pick_list(&picking), "shipments": statuses }),
    ))
}

/// Check a scan and record it. Two pickers on one shipment: each write is conditional on the
/// version read, so the second is checked again against what the first picked.
pub(super) async fn scan(
    deps: &FulfilmentDeps,
    request: &Request,
    who: &str,
    wave_id: &str,
) -> Result<Response<Body>, Problem> {
    let scan: Scan = json_body(request)?;
    let store = &deps.common.store;
    let recorded = until_written(deps, || async {
        let shipment = store.shipment(&scan.shipment_id).await.map_err(store_problem)?;
        let shipment = shipment.ok_or_else(|| Problem::not_found("shipment"))?;
        let now = deps.common.clock.now();
        let policy = deps.policy(now).await.map_err(store_problem)?;
        let mut scanned = shipment.clone();
        scanned.record_scan(&scan, wave_id, who, now.date(), policy.min_shelf_life_days).map_err(|refused| {
            let status = match refused {
                crate::domain::shipment::ScanRefused::NotPicking(_) => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            Problem::new(status, refused.code(), "Scan refused", refused.to_string()).with_field(refused.field())
        })?;
        scanned.updated_at = now;
        let write = store.put_shipment(ShipmentWrite { shipment: &scanned, seen: Some(&shipment) });
        let detail = serde_json::json!({
            "wave_id": wave_id, "barcode": scan.barcode, "quantity": scan.quantity, "batch": scan.batch,
        });
        let audit = store.shipment_audit(who, "shipment.scan", (&shipment, &scanned), detail, now);
        Ok(store.commit(vec![write, audit]).await.map_err(store_problem)?.then_some(scanned))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &progress(&recorded)))
}

fn progress(shipment: &Shipment) -> serde_json::Value {
    let lines: Vec<_> = shipment
        .lines
        .iter()
        .map(|l| serde_json::json!({ "sku": l.sku, "quantity": l.quantity, "picked": l.picked }))
        .collect();
    serde_json::json!({
        "shipment_id": shipment.shipment_id,
        "status": shipment.status,
        "lines": lines,
        "fully_picked": shipment.fully_picked(),
    })
}

pub(super) async fn pack(deps: &FulfilmentDeps, who: &str, id: &ShipmentId) -> Result<Response<Body>, Problem> {
    let store = &deps.common.store;
    let packed = until_written(deps, || async {
        let shipment =
            store.shipment(id).await.map_err(store_problem)?.ok_or_else(|| Problem::not_found("shipment"))?;
        if shipment.status != ShipmentStatus::Picking {
            return Err(conflict("shipment-not-picking", format!("the shipment is {}", shipment.status.as_str())));
        }
        if !shipment.fully_picked() {
            return Err(conflict("pick-incomplete", "units are still to pick; pick them or report a shortage")
                .with_extension("unpicked", shipment.unpicked()));
        }
        let now = deps.common.clock.now();
        let packed = Shipment { status: ShipmentStatus::Packed, updated_at: now, ..shipment.clone() };
        let write = store.put_shipment(ShipmentWrite { shipment: &packed, seen: Some(&shipment) });
        let audit = store.shipment_audit(who, "shipment.pack", (&shipment, &packed), serde_json::Value::Null, now);
        Ok(store.commit(vec![write, audit]).await.map_err(store_problem)?.then_some(packed))
    })
    .await?;
    info!(actor = %who, shipment_id = %id, "packed");
    Ok(json_response(StatusCode::OK, &packed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShortageReport {
    reason: String,
}

/// The units still unpicked are missing: written off with the reason (audited), taken off the
/// shipment, and the customer asked what to do by `answer_by`.
pub(super) async fn report_shortage(
    deps: &FulfilmentDeps,
    request: &Request,
    who: &str,
    id: &ShipmentId,
) -> Result<Response<Body>, Problem> {
    let report: ShortageReport = json_body(request)?;
    let reason = report.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "reason-invalid",
            "Invalid reason",
            "a reason of 1 to 200 characters",
        )
        .with_field("reason"));
    }
    let store = &deps.common.store;
    let short = until_written(deps, || async {
        let shipment =
            store.shipment(id).await.map_err(store_problem)?.ok_or_else(|| Problem::not_found("shipment"))?;
        if shipment.status != ShipmentStatus::Picking {
            return Err(conflict("shipment-not-picking", format!("the shipment is {}", shipment.status.as_str())));
        }
        let missing = shipment.unpicked();
        if missing.is_empty() {
            return Err(conflict("nothing-missing", "every unit is picked: pack the shipment"));
        }
        let now = deps.common.clock.now();
        let policy = deps.policy(now).await.map_err(store_problem)?;
        let mut short = shipment.clone();
        short.remove_units(&missing);
        short.status = ShipmentStatus::Shortage;
        short.updated_at = now;
        short.shortage = Some(Shortage {
            missing: missing.clone(),
            reason: reason.clone(),
            reported_by: who.to_owned(),
            opened_at: now,
            answer_by: now + time::Duration::hours(i64::from(policy.shortage_answer_hours)),
            answer: None,
            answered_by: None,
        });
        let mut writes = vec![store.put_shipment(ShipmentWrite { shipment: &short, seen: Some(&shipment) })];
        for gone in &missing {
            let counters = (units_counter(&shipment), "written_off");
            writes.push(store.stock_shift(&gone.sku, &shipment.warehouse, gone.missing, counters, now));
        }
        let subject = format!("shipments/{id}");
        writes.push(store.audit_record(who, "stock.write-off", &subject, None::<&()>, short.shortage.as_ref(), now));
        Ok(store.commit(writes).await.map_err(store_problem)?.then_some(short))
    })
    .await?;
    info!(actor = %who, shipment_id = %id, missing = short.shortage.as_ref().map_or(0, |s| s.missing.len()), "shortage");
    Ok(json_response(StatusCode::OK, &short))
}
