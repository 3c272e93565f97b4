//! What the server knows and the client never says: the catalogue (prices, sale windows, sizes,
//! flags) and customer profiles (the loyalty tier). Every save names the version it replaces and
//! is audited with the before and after.
//!
//! - `GET /admin/catalogue/{sku}`, `PUT /admin/catalogue/{sku}`
//! - `GET /admin/customers/{id}`, `PUT /admin/customers/{id}` `{"tier": "L5" | null, "version": n}`

use super::{invalid, json_body, save_problem, sku, unavailable, StaffDeps};
use crate::domain::catalogue::Sale;
use crate::domain::customer::parse_tier;
use crate::domain::{CatalogueItem, Currency, CustomerId, CustomerProfile, ItemFlag};
use crate::http::{json_response, Problem};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use tracing::info;

/// A catalogue item as staff send it: the SKU comes from the path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    name: String,
    prices: BTreeMap<Currency, i64>,
    #[serde(default)]
    sale: Option<Sale>,
    category: String,
    weight_grams: u32,
    volume_cm3: u32,
    #[serde(default)]
    flags: BTreeSet<ItemFlag>,
    #[serde(default)]
    barcode: Option<String>,
    #[serde(default)]
    return_rate_pct: Option<u32>,
    /// The version this save replaces: 0 for a new item.
    version: u32,
}

pub(super) async fn read_item(deps: &StaffDeps, raw_sku: &str) -> Result<Response<Body>, Problem> {
    let sku = sku(raw_sku)?;
    let item = deps.common.store.catalogue_item(&sku).await.map_err(unavailable)?;
    Ok(json_response(StatusCode::OK, &item.ok_or_else(|| Problem::not_found("catalogue item"))?))
}

pub(super) async fn put_item(
    deps: &StaffDeps,
    request: &Request,
    who: &str,
    raw_sku: &str,
) -> Result<Response<Body>, Problem> {
    let sku = sku(raw_sku)?;
    let body: ItemBody = json_body(request)?;
    let item = CatalogueItem {
        sku,
        name: body.name.trim().to_owned(),
        prices: body.prices,
        sale: body.sale,
        category: body.category.trim().to_owned(),
        weight_grams: body.weight_grams,
        volume_cm3: body.volume_cm3,
        flags: body.flags,
        barcode: body.barcode.map(|b| b.trim().to_owned()),
        return_rate_pct: body.return_rate_pct,
        version: body.version,
    };
    item.validate().map_err(|e| Problem::invalid_fields(vec![e]))?;
    let now = deps.common.clock.now();
    let saved = deps.common.store.save_catalogue_item(&item, who, now).await.map_err(save_problem)?;
    info!(actor = %who, sku = %saved.sku, version = saved.version, "catalogue item saved");
    Ok(json_response(StatusCode::OK, &saved))
}

pub(super) fn customer_id(raw: &str) -> Result<CustomerId, Problem> {
    CustomerId::parse(raw).map_err(|e| invalid("customer_id", e.code, e.detail))
}

pub(super) async fn read_profile(deps: &StaffDeps, raw_id: &str) -> Result<Response<Body>, Problem> {
    let customer_id = customer_id(raw_id)?;
    let stored = deps.common.store.customer_profile(&customer_id).await.map_err(unavailable)?;
    // A customer the shop never ranked has an empty profile at version 0.
    let profile = stored.unwrap_or(CustomerProfile { customer_id, tier: None, version: 0 });
    Ok(json_response(StatusCode::OK, &profile_view(&profile)))
}

fn profile_view(profile: &CustomerProfile) -> serde_json::Value {
    serde_json::json!({
        "customer_id": profile.customer_id,
        "tier": profile.tier.map(|t| format!("L{t}")),
        "version": profile.version,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    tier: Option<String>,
    /// The version this save replaces: 0 for a customer without a profile.
    version: u32,
}

pub(super) async fn put_profile(
    deps: &StaffDeps,
    request: &Request,
    who: &str,
    raw_id: &str,
) -> Result<Response<Body>, Problem> {
    let customer_id = customer_id(raw_id)?;
    let body: ProfileBody = json_body(request)?;
    let tier = body.tier.as_deref().map(parse_tier).transpose().map_err(|e| invalid("tier", e.code, e.detail))?;
    let profile = CustomerProfile { customer_id, tier, version: body.version };
    let now = deps.common.clock.now();
    let saved = deps.common.store.save_customer_profile(&profile, who, now).await.map_err(save_problem)?;
    info!(actor = %who, customer_id = %saved.customer_id, version = saved.version, "customer profile saved");
    Ok(json_response(StatusCode::OK, &profile_view(&saved)))
}
