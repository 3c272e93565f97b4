//! Function staff-api (API Gateway HTTP API, routes under /admin behind the JWT authorizer). A
//! staff token's groups or a machine token's scopes must allow the route ([`crate::access`]); every
//! change is audited (who, when, before, after) in the change's own transaction.
//!
//! - [`inventory`]: warehouses, stock per (SKU, warehouse), the hold policy.
//! - [`catalogue`]: catalogue items (prices, sale windows, flags) and customer profiles (tiers).
//! - [`orders`]: the review queue; approving or rejecting held and cash-on-delivery orders.
//! - [`payments`]: reconciliation; accepting or refunding a mismatched payment.
//! - [`risk`]: the risk rule document.
//! - [`audit`]: the audit trail by entity and by day.
//! - [`dashboard`]: the operations dashboard's figures, from the counters kept from events.
//! - [`dashboard_page`]: the dashboard's web page, which reads those figures.
//! - [`personal`]: an order's personal data in the clear, for a reason, audited.

mod audit;
mod catalogue;
mod dashboard;
mod dashboard_page;
mod inventory;
mod orders;
mod payments;
mod personal;
mod risk;

use super::{invalid, json_body, save_problem, warehouse_id, Common};
use crate::domain::{HoldPolicy, OrderId, Sku};
use crate::http::{segments, Problem};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use tracing::warn;

pub use dashboard::MAX_DAYS as DASHBOARD_MAX_DAYS;
pub use inventory::MAX_STOCK;

#[derive(Clone)]
pub struct StaffDeps {
    pub common: Common,
    /// What reservation uses while no policy is saved.
    pub default_hold_policy: HoldPolicy,
    /// Opens an order's personal data for staff who give a reason; fingerprints the personal
    /// values of the risk rules' lists.
    pub personal: crate::personal::PersonalKeys,
}

impl StaffDeps {
    pub fn new(common: Common, config: &crate::config::Config, personal: crate::personal::PersonalKeys) -> Self {
        let default_hold_policy = HoldPolicy::from_durations(config.hold_duration, config.cod_hold_duration);
        Self { common, default_hold_policy, personal }
    }
}

pub async fn handle(deps: &StaffDeps, request: Request) -> Result<Response<Body>, Error> {
    Ok(route(deps, &request).await.unwrap_or_else(Problem::into_response))
}

async fn route(deps: &StaffDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let path = request.uri().path().to_owned();
    let caller = crate::access::authorize(request)?;
    let who = &caller.actor();
    match (request.method().clone(), segments(&path).as_slice()) {
        (Method::GET, ["admin", "warehouses"]) => inventory::list_warehouses(deps).await,
        (Method::PUT, ["admin", "warehouses", id]) => inventory::put_warehouse(deps, request, who, id).await,
        (Method::GET, ["admin", "stock", sku]) => inventory::stock_of(deps, sku).await,
        (Method::PUT, ["admin", "stock", sku, wh]) => inventory::set_available(deps, request, who, sku, wh).await,
        (Method::POST, ["admin", "stock", sku, wh, "adjustments"]) => {
            inventory::adjust(deps, request, who, sku, wh).await
        }
        (Method::PUT, ["admin", "stock", sku, wh, "shards"]) => inventory::split(deps, request, who, sku, wh).await,
        (Method::GET, ["admin", "hold-policy"]) => inventory::read_hold_policy(deps).await,
        (Method::PUT, ["admin", "hold-policy"]) => inventory::put_hold_policy(deps, request, who).await,
        (Method::GET, ["admin", "catalogue", sku]) => catalogue::read_item(deps, sku).await,
        (Method::PUT, ["admin", "catalogue", sku]) => catalogue::put_item(deps, request, who, sku).await,
        (Method::GET, ["admin", "customers", id]) => catalogue::read_profile(deps, id).await,
        (Method::PUT, ["admin", "customers", id]) => catalogue::put_profile(deps, request, who, id).await,
        (Method::POST, ["admin", "customers", id, "erasure"]) => personal::erase_customer(deps, request, who, id).await,
        (Method::GET, ["admin", "payments", "reconciliation"]) => payments::reconciliation(deps, request).await,
        (Method::GET, ["admin", "risk-rules"]) => risk::read_rules(deps).await,
        (Method::PUT, ["admin", "risk-rules"]) => risk::put_rules(deps, request, who).await,
        (Method::GET, ["admin", "review-queue"]) => orders::review_queue(deps).await,
        (Method::GET, ["admin", "orders", id]) => orders::staff_order(deps, id).await,
        (Method::POST, ["admin", "orders", id, "approve"]) => orders::decide(deps, who, id, true).await,
        (Method::POST, ["admin", "orders", id, "reject"]) => orders::decide(deps, who, id, false).await,
        (Method::POST, ["admin", "orders", id, "payment", "accept"]) => payments::accept(deps, who, id).await,
        (Method::POST, ["admin", "orders", id, "payment", "refund"]) => payments::refund(deps, who, id).await,
        (Method::GET, ["admin", "audit"]) => audit::trail(deps, request).await,
        (Method::GET, ["admin", "dashboard"]) => dashboard::figures(deps, request).await,
        (Method::GET, ["admin", "dashboard", "page"]) => Ok(dashboard_page::serve()),
        (Method::POST, ["admin", "orders", id, "personal-data"]) => personal::reveal(deps, request, &caller, id).await,
        (
            _,
            ["admin", "warehouses", ..]
            | ["admin", "stock", ..]
            | ["admin", "catalogue", _]
            | ["admin", "customers", _]
            | ["admin", "customers", _, "erasure"]
            | ["admin", "payments", "reconciliation"]
            | ["admin", "hold-policy" | "risk-rules" | "review-queue" | "audit" | "dashboard"]
            | ["admin", "dashboard", "page"]
            | ["admin", "orders", ..],
        ) => Err(Problem::method_not_allowed()),
        _ => Err(Problem::route_not_found()),
    }
}

fn unavailable(err: impl std::fmt::Display) -> Problem {
    warn!(error = %err, "staff request failed");
    Problem::unavailable()
}

fn sku(raw: &str) -> Result<Sku, Problem> {
    Sku::parse(raw).map_err(|e| invalid("sku", e.code, e.detail))
}

fn order_id(raw: &str) -> Result<OrderId, Problem> {
    OrderId::parse(raw).map_err(|e| invalid("order_id", e.code, e.detail))
}

/// A 409 for an order whose status does not allow the action.
fn wrong_status(code: &'static str, title: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::CONFLICT, code, title, detail)
}
