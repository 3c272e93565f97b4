//! Warehouses, stock per (SKU, warehouse) and the hold policy.
//!
//! - `GET  /admin/warehouses`, `PUT /admin/warehouses/{id}`
//! - `GET  /admin/stock/{sku}`
//! - `PUT  /admin/stock/{sku}/{warehouse}` `{"available": n}`: a stocktake (absolute count)
//! - `POST /admin/stock/{sku}/{warehouse}/adjustments` `{"delta": n, "reason": "..."}`
//! - `PUT  /admin/stock/{sku}/{warehouse}/shards` `{"shards": n}`: split a hot SKU's stock over
//!   `n` items for a flash sale; the same `n` again rebalances them, 1 merges them back
//! - `GET  /admin/hold-policy`, `PUT /admin/hold-policy`: hold durations per channel and SKU, and
//!   the risk score below which cash on delivery is approved without review

use super::{invalid, json_body, sku, unavailable, warehouse_id, StaffDeps};
use crate::domain::{HoldPolicy, Warehouse, WarehouseId, MAX_SHARDS};
use crate::http::{json_response, Problem};
use crate::store::{AdjustError, StockChange};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use tracing::info;

/// Largest count one stocktake may set.
pub const MAX_STOCK: i64 = 1_000_000_000;

fn adjust_problem(err: AdjustError) -> Problem {
    match err {
        AdjustError::UnknownWarehouse => Problem::not_found("warehouse").with_field("warehouse"),
        AdjustError::NotFound => Problem::not_found("stock record"),
        AdjustError::WouldGoNegative { available } => Problem::new(
            StatusCode::CONFLICT,
            "stock-would-go-negative",
            "Stock would go negative",
            format!("only {available} units are available"),
        )
        .with_field("delta"),
        AdjustError::Split => Problem::new(
            StatusCode::CONFLICT,
            "stock-split",
            "Stock is split over shards",
            "a count is set on one item: merge the shards first (PUT .../shards with 1)",
        ),
        AdjustError::Contended => crate::handlers::busy("stock-busy", "the count kept changing under orders; retry"),
        AdjustError::Store(err) => unavailable(err),
    }
}

/// A replacing save that kept meeting other saves is a retry-later 409, not an outage.
fn save_failed(err: crate::store::StoreError) -> Problem {
    match err {
        crate::store::StoreError::Contended(_) => {
            crate::handlers::busy("save-busy", "other saves of this item kept coming in; retry")
        }
        other => unavailable(other),
    }
}

pub(super) async fn list_warehouses(deps: &StaffDeps) -> Result<Response<Body>, Problem> {
    let catalogue = deps.common.store.warehouses().await.map_err(unavailable)?;
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "warehouses": catalogue.warehouses() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WarehouseBody {
    name: String,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    neighbours: Vec<WarehouseId>,
    #[serde(default)]
    priority: i32,
}

pub(super) async fn put_warehouse(
    deps: &StaffDeps,
    request: &Request,
    who: &str,
    raw_id: &str,
) -> Result<Response<Body>, Problem> {
    let warehouse_id = warehouse_id(raw_id)?;
    let body: WarehouseBody = json_body(request)?;
    if body.name.trim().is_empty() || body.name.len() > 100 {
        return Err(invalid("name", "name-invalid", "name is 1 to 100 characters"));
    }
    let warehouse = Warehouse {
        warehouse_id,
        name: body.name.trim().to_owned(),
        regions: body.regions,
        neighbours: body.neighbours,
        priority: body.priority,
    };
    let now = deps.common.clock.now();
    deps.common.store.save_warehouse(&warehouse, who, now).await.map_err(save_failed)?;
    info!(actor = %who, warehouse = %warehouse.warehouse_id, "warehouse saved");
    Ok(json_response(StatusCode::OK, &warehouse))
}

pub(super) async fn stock_of(deps: &StaffDeps, raw_sku: &str) -> Result<Response<Body>, Problem> {
    let sku = sku(raw_sku)?;
    let stock = deps.common.store.stock_of(&sku).await.map_err(unavailable)?;
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "sku": sku, "warehouses": stock })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StocktakeBody {
    available: i64,
    /// Where the SKU lies in the warehouse (`A-03-2`): pick lists are ordered by it.
    #[serde(default)]
    bin: Option<String>,
}

pub(super) async fn set_available(
    deps: &StaffDeps,
    request: &Request,
    who: &str,
    raw_sku: &str,
    raw_wh: &str,
) -> Result<Response<Body>, Problem> {
    let (sku, warehouse) = (sku(raw_sku)?, warehouse_id(raw_wh)?);
    let body: StocktakeBody = json_body(request)?;
    if !(0..=MAX_STOCK).contains(&body.available) {
        return Err(invalid("available", "available-out-of-range", format!("available is 0 to {MAX_STOCK}")));
    }
    let bin = body.bin.as_deref().map(str::trim);
    if bin.is_some_and(|b| b.is_empty() || b.len() > 32 || !b.bytes().all(|c| c.is_ascii_graphic())) {
        return Err(invalid("bin", "bin-invalid", "a bin location of 1 to 32 printable characters"));
    }
    let now = deps.common.clock.now();
    let change = StockChange { actor: who, reason: None, now };
    let stock =
        deps.common.store.set_available(&sku, &warehouse, body.available, bin, change).await.map_err(adjust_problem)?;
    info!(actor = %who, sku = %sku, warehouse = %warehouse, available = body.available, "stocktake");
    Ok(json_response(StatusCode::OK, &stock))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustmentBody {
    delta: i64,
    reason: String,
}

pub(super) async fn adjust(
    deps: &StaffDeps,
    request: &Request,
    who: &str,
    raw_sku: &str,
    raw_wh: &str,
) -> Result<Response<Body>, Problem> {
    let (sku, warehouse) = (sku(raw_sku)?, warehouse_id(raw_wh)?);
    let body: AdjustmentBody = json_body(request)?;
    // `unsigned_abs`: i64::MIN has no absolute value in i64.
    if body.delta == 0 || body.delta.unsigned_abs() > MAX_STOCK.unsigned_abs() {
        return Err(invalid(
            "delta",
            "delta-out-of-range",
            format!("delta is non-zero and at most {MAX_STOCK} either way"),
        ));
    }
    if body.reason.trim().is_empty() || body.reason.len() > 200 {
        return Err(invalid("reason", "reason-invalid", "reason is 1 to 200 characters"));
    }
    let now = deps.common.clock.now();
    let change = StockChange { actor: who, reason: Some(body.reason.trim()), now };
    let stock =
        deps.common.store.adjust_available(&sku, &warehouse, body.delta, change).await.map_err(adjust_problem)?;
    info!(actor = %who, sku = %sku, warehouse = %warehouse, delta = body.delta, reason = %body.reason, "stock adjusted");
    Ok(json_response(StatusCode::OK, &stock))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardsBody {
    shards: i64,
}

pub(super) async fn split(
    deps: &StaffDeps,
    request: &Request,
    who: &str,
    raw_sku: &str,
    raw_wh: &str,
) -> Result<Response<Body>, Problem> {
    let (sku, warehouse) = (sku(raw_sku)?, warehouse_id(raw_wh)?);
    let body: ShardsBody = json_body(request)?;
    let shards = u32::try_from(body.shards).ok().filter(|n| (1..=MAX_SHARDS).contains(n));
    let shards =
        shards.ok_or_else(|| invalid("shards", "shards-out-of-range", format!("shards is 1 to {MAX_SHARDS}")))?;
    let now = deps.common.clock.now();
    let stock = deps.common.store.split_stock((&sku, &warehouse), shards, who, now).await.map_err(adjust_problem)?;
    info!(actor = %who, sku = %sku, warehouse = %warehouse, shards, "stock split");
    Ok(json_response(StatusCode::OK, &stock))
}

/// The policy in force: the saved one, or the deployment's defaults (`HOLD_MINUTES`,
/// `COD_HOLD_MINUTES`) when operations never saved one.
pub(super) async fn read_hold_policy(deps: &StaffDeps) -> Result<Response<Body>, Problem> {
    let stored = deps.common.store.hold_policy().await.map_err(unavailable)?;
    let policy = stored.clone().unwrap_or_else(|| deps.default_hold_policy.clone());
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "policy": policy, "saved": stored.is_some() })))
}

pub(super) async fn put_hold_policy(deps: &StaffDeps, request: &Request, who: &str) -> Result<Response<Body>, Problem> {
    let policy: HoldPolicy = json_body(request)?;
    policy.validate().map_err(|(field, e)| invalid(&field, e.code, e.detail))?;
    let now = deps.common.clock.now();
    deps.common.store.save_hold_policy(&policy, who, now).await.map_err(save_failed)?;
    info!(actor = %who, ?policy, "hold policy saved");
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "policy": policy, "saved": true })))
}
