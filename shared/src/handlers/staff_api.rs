//! Function staff-api (API Gateway HTTP API, IAM-authorised routes under /admin): the warehouse
//! catalogue and stock per (SKU, warehouse).
//!
//! - `GET  /admin/warehouses`, `PUT /admin/warehouses/{id}`
//! - `GET  /admin/stock/{sku}`
//! - `PUT  /admin/stock/{sku}/{warehouse}` `{"available": n}`: a stocktake (absolute count)
//! - `POST /admin/stock/{sku}/{warehouse}/adjustments` `{"delta": n, "reason": "..."}`
//! - `GET  /admin/hold-policy`, `PUT /admin/hold-policy`: hold durations, per channel and SKU
//! - `GET  /admin/payments/reconciliation?day=YYYY-MM-DD`: payment outcomes of a day
//! - `GET  /admin/risk-rules`, `PUT /admin/risk-rules`: the risk rule document (versioned, audited)
//! - `GET  /admin/review-queue`, `GET /admin/orders/{id}`, `POST /admin/orders/{id}/approve|reject`

use super::Common;
use crate::domain::{FieldError, HoldPolicy, Sku, Warehouse, WarehouseId};
use crate::http::{body_bytes, json_response, segments, Problem};
use crate::store::{AdjustError, StoreError};
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tracing::{info, warn};

/// Largest count one stocktake may set.
pub const MAX_STOCK: i64 = 1_000_000_000;

#[derive(Clone)]
pub struct StaffDeps {
    pub common: Common,
    /// What reservation uses while no policy is saved.
    pub default_hold_policy: HoldPolicy,
}

impl StaffDeps {
    pub fn new(common: Common, config: &crate::config::Config) -> Self {
        Self { common, default_hold_policy: HoldPolicy::from_durations(config.hold_duration, config.cod_hold_duration) }
    }
}

pub async fn handle(deps: &StaffDeps, request: Request) -> Result<Response<Body>, Error> {
    Ok(route(deps, &request).await.unwrap_or_else(Problem::into_response))
}

async fn route(deps: &StaffDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let path = request.uri().path().to_owned();
    match (request.method().clone(), segments(&path).as_slice()) {
        (Method::GET, ["admin", "warehouses"]) => list_warehouses(deps).await,
        (Method::PUT, ["admin", "warehouses", id]) => put_warehouse(deps, request, id).await,
        (Method::GET, ["admin", "stock", sku]) => stock_of(deps, sku).await,
        (Method::PUT, ["admin", "stock", sku, warehouse]) => set_available(deps, request, sku, warehouse).await,
        (Method::POST, ["admin", "stock", sku, warehouse, "adjustments"]) => {
            adjust(deps, request, sku, warehouse).await
        }
        (Method::GET, ["admin", "hold-policy"]) => read_hold_policy(deps).await,
        (Method::GET, ["admin", "payments", "reconciliation"]) => reconciliation(deps, request).await,
        (Method::GET, ["admin", "risk-rules"]) => read_risk_rules(deps).await,
        (Method::PUT, ["admin", "risk-rules"]) => put_risk_rules(deps, request).await,
        (Method::GET, ["admin", "review-queue"]) => review_queue(deps).await,
        (Method::GET, ["admin", "orders", id]) => staff_order(deps, id).await,
        (Method::POST, ["admin", "orders", id, "approve"]) => review(deps, request, id, true).await,
        (Method::POST, ["admin", "orders", id, "reject"]) => review(deps, request, id, false).await,
        (Method::PUT, ["admin", "hold-policy"]) => put_hold_policy(deps, request).await,
        (
            _,
            ["admin", "warehouses", ..]
            | ["admin", "stock", ..]
            | ["admin", "hold-policy" | "risk-rules" | "review-queue"]
            | ["admin", "orders", ..],
        ) => Err(Problem::method_not_allowed()),
        _ => Err(Problem::route_not_found()),
    }
}

/// Who is acting, for the log line of every change: the IAM principal or JWT subject API
/// Gateway authorised.
fn actor(request: &Request) -> String {
    let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
        return "unknown".into();
    };
    context
        .authorizer
        .as_ref()
        .and_then(|a| {
            a.iam
                .as_ref()
                .and_then(|iam| iam.user_arn.clone())
                .or_else(|| a.jwt.as_ref().and_then(|jwt| jwt.claims.get("sub").cloned()))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn unavailable(err: StoreError) -> Problem {
    warn!(error = %err, "staff request failed");
    Problem::unavailable()
}

fn invalid(field: &str, code: &'static str, detail: impl Into<String>) -> Problem {
    Problem::invalid_fields(vec![FieldError { field: field.to_owned(), code, detail: detail.into() }])
}

fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, Problem> {
    serde_json::from_slice(body_bytes(request.body())).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "body-invalid",
            "Body invalid",
            format!("the body does not match this route: {e}"),
        )
    })
}

fn sku(raw: &str) -> Result<Sku, Problem> {
    Sku::parse(raw).map_err(|e| invalid("sku", e.code, e.detail))
}

fn warehouse_id(raw: &str) -> Result<WarehouseId, Problem> {
    WarehouseId::parse(raw).map_err(|e| invalid("warehouse", e.code, e.detail))
}

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
        AdjustError::Store(err) => unavailable(err),
    }
}

async fn list_warehouses(deps: &StaffDeps) -> Result<Response<Body>, Problem> {
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

async fn put_warehouse(deps: &StaffDeps, request: &Request, raw_id: &str) -> Result<Response<Body>, Problem> {
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
    deps.common.store.put_warehouse(&warehouse).await.map_err(unavailable)?;
    info!(actor = %actor(request), warehouse = %warehouse.warehouse_id, "warehouse saved");
    Ok(json_response(StatusCode::OK, &warehouse))
}

async fn stock_of(deps: &StaffDeps, raw_sku: &str) -> Result<Response<Body>, Problem> {
    let sku = sku(raw_sku)?;
    let stock = deps.common.store.stock_of(&sku).await.map_err(unavailable)?;
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "sku": sku, "warehouses": stock })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StocktakeBody {
    available: i64,
}

async fn set_available(
    deps: &StaffDeps,
    request: &Request,
    raw_sku: &str,
    raw_wh: &str,
) -> Result<Response<Body>, Problem> {
    let (sku, warehouse) = (sku(raw_sku)?, warehouse_id(raw_wh)?);
    let body: StocktakeBody = json_body(request)?;
    if !(0..=MAX_STOCK).contains(&body.available) {
        return Err(invalid("available", "available-out-of-range", format!("available is 0 to {MAX_STOCK}")));
    }
    let now = deps.common.clock.now();
    let stock = deps.common.store.set_available(&sku, &warehouse, body.available, now).await.map_err(adjust_problem)?;
    info!(actor = %actor(request), sku = %sku, warehouse = %warehouse, available = body.available, "stocktake");
    Ok(json_response(StatusCode::OK, &stock))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustmentBody {
    delta: i64,
    reason: String,
}

async fn adjust(deps: &StaffDeps, request: &Request, raw_sku: &str, raw_wh: &str) -> Result<Response<Body>, Problem> {
    let (sku, warehouse) = (sku(raw_sku)?, warehouse_id(raw_wh)?);
    let body: AdjustmentBody = json_body(request)?;
    if body.delta == 0 || body.delta.abs() > MAX_STOCK {
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
    let stock = deps.common.store.adjust_available(&sku, &warehouse, body.delta, now).await.map_err(adjust_problem)?;
    info!(actor = %actor(request), sku = %sku, warehouse = %warehouse, delta = body.delta, reason = %body.reason, "stock adjusted");
    Ok(json_response(StatusCode::OK, &stock))
}

/// The policy in force: the saved one, or the deployment's defaults (`HOLD_MINUTES`,
/// `COD_HOLD_MINUTES`) when operations never saved one.
async fn read_hold_policy(deps: &StaffDeps) -> Result<Response<Body>, Problem> {
    let stored = deps.common.store.hold_policy().await.map_err(unavailable)?;
    let policy = stored.clone().unwrap_or_else(|| deps.default_hold_policy.clone());
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "policy": policy, "saved": stored.is_some() })))
}

async fn put_hold_policy(deps: &StaffDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let policy: HoldPolicy = json_body(request)?;
    policy.validate().map_err(|(field, e)| invalid(&field, e.code, e.detail))?;
    deps.common.store.put_hold_policy(&policy).await.map_err(unavailable)?;
    info!(actor = %actor(request), ?policy, "hold policy saved");
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "policy": policy, "saved": true })))
}

#[derive(Debug, Default, serde::Serialize)]
struct Reconciliation {
    day: String,
    events: usize,
    paid: usize,
    late_paid: usize,
    failed: usize,
    mismatched: usize,
    duplicate_charges: usize,
    refunds_requested: usize,
    unknown_orders: usize,
    repeat_deliveries: usize,
    not_yet_processed: usize,
    /// Paid (on time or late) over paid plus failed.
    success_rate: Option<f64>,
    /// Refunds requested over successful payments received.
    refund_rate: Option<f64>,
    /// Payments we could not match to an order, for staff to chase.
    unmatched: Vec<serde_json::Value>,
}

async fn reconciliation(deps: &StaffDeps, request: &Request) -> Result<Response<Body>, Problem> {
    use crate::store::Resolution as R;
    let day = match request.query_string_parameters_ref().and_then(|q| q.first("day").map(str::to_owned)) {
        Some(day) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(&day, &format).map_err(|_| invalid("day", "day-malformed", "day is YYYY-MM-DD"))?;
            day
        }
        None => deps.common.clock.now().date().to_string(),
    };
    let records = deps.common.store.payments_of_day(&day).await.map_err(unavailable)?;
    let mut r = Reconciliation { day, events: records.len(), ..Reconciliation::default() };
    for record in &records {
        match &record.resolution {
            None => r.not_yet_processed += 1,
            Some(R::Paid) => r.paid += 1,
            Some(R::LatePaid) => r.late_paid += 1,
            Some(R::Failed) => r.failed += 1,
            Some(R::Mismatched { .. }) => r.mismatched += 1,
            Some(R::DuplicateCharge) => {
                r.duplicate_charges += 1;
                r.refunds_requested += 1;
            }
            Some(R::RefundRequired { .. }) => r.refunds_requested += 1,
            Some(R::AlreadyApplied) => r.repeat_deliveries += 1,
            Some(R::UnknownOrder) => {
                r.unknown_orders += 1;
                r.unmatched.push(serde_json::json!({
                    "event_id": record.event.id,
                    "payment_id": record.event.data.payment_id,
                    "order_id": record.event.data.order_id,
                    "amount_minor": record.event.data.amount_minor,
                    "currency": record.event.data.currency,
                }));
            }
        }
    }
    let paid = r.paid + r.late_paid;
    r.success_rate = (paid + r.failed > 0).then(|| paid as f64 / (paid + r.failed) as f64);
    let succeeded =
        records.iter().filter(|x| x.event.event_type == crate::domain::payment::PaymentEventType::Succeeded).count();
    r.refund_rate = (succeeded > 0).then(|| r.refunds_requested as f64 / succeeded as f64);
    Ok(json_response(StatusCode::OK, &r))
}

async fn read_risk_rules(deps: &StaffDeps) -> Result<Response<Body>, Problem> {
    let stored = deps.common.store.risk_rules().await.map_err(unavailable)?;
    let saved = stored.is_some();
    let rules = stored.unwrap_or_else(crate::domain::risk::RiskRules::defaults);
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "rules": rules, "saved": saved })))
}

/// Save a new version. The body names the version it edits (`version`); a stale one is a 409.
async fn put_risk_rules(deps: &StaffDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let rules: crate::domain::risk::RiskRules = json_body(request)?;
    rules.validate().map_err(|(field, e)| invalid(&field, e.code, e.detail))?;
    let who = actor(request);
    match deps.common.store.save_risk_rules(&rules, &who, deps.common.clock.now()).await {
        Ok(saved) => {
            info!(actor = %who, version = saved.version, rules = saved.rules.len(), "risk rules saved");
            Ok(json_response(StatusCode::OK, &serde_json::json!({ "rules": saved, "saved": true })))
        }
        Err(crate::store::SaveRulesError::VersionConflict { current }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "rules-version-conflict",
            "Rules changed meanwhile",
            format!("the current version is {current}; reload, reapply your change and save with that version"),
        )
        .with_field("version")),
        Err(crate::store::SaveRulesError::Store(err)) => Err(unavailable(err)),
    }
}

/// The order as staff see it: everything the customer sees plus the risk assessment.
fn staff_view(order: &crate::domain::Order) -> serde_json::Value {
    serde_json::json!({
        "order_id": order.order_id,
        "status": order.status,
        "customer_id": order.customer_id,
        "total_minor": order.total_minor,
        "currency": order.currency,
        "channel": order.channel,
        "device_id": order.device_id,
        "province": order.shipping_address.province,
        "phone": order.phone.masked(),
        "received_at": order.received_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "risk": order.risk,
    })
}

async fn review_queue(deps: &StaffDeps) -> Result<Response<Body>, Problem> {
    let orders = deps.common.store.review_queue(100).await.map_err(unavailable)?;
    let items: Vec<serde_json::Value> = orders.iter().map(staff_view).collect();
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "orders": items })))
}

fn parse_order_id(raw: &str) -> Result<crate::domain::OrderId, Problem> {
    crate::domain::OrderId::parse(raw).map_err(|e| invalid("order_id", e.code, e.detail))
}

async fn staff_order(deps: &StaffDeps, raw_id: &str) -> Result<Response<Body>, Problem> {
    let order = deps
        .common
        .store
        .order(parse_order_id(raw_id)?)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Problem::not_found("order"))?;
    Ok(json_response(StatusCode::OK, &staff_view(&order)))
}

/// Approve (on to reservation) or reject an order risk held for review or froze.
async fn review(deps: &StaffDeps, request: &Request, raw_id: &str, approve: bool) -> Result<Response<Body>, Problem> {
    use crate::domain::OrderStatus;
    let store = &deps.common.store;
    let id = parse_order_id(raw_id)?;
    let mut order = store.order(id).await.map_err(unavailable)?.ok_or_else(|| Problem::not_found("order"))?;
    if !matches!(order.status, OrderStatus::PendingReview | OrderStatus::Frozen) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "not-under-review",
            "Not under review",
            format!("the order is {}", order.status.as_str()),
        ));
    }
    let now = deps.common.clock.now();
    let changed = if approve {
        store.release_to_received(id, order.status, now).await
    } else {
        store.reject_after_review(id, order.status, now).await
    }
    .map_err(unavailable)?;
    if !changed {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "not-under-review",
            "Not under review",
            "the order was reviewed meanwhile",
        ));
    }
    // OrderReceived (on to reservation) or OrderRejected comes from the table's stream.
    order.status = if approve { OrderStatus::Received } else { OrderStatus::Rejected };
    info!(actor = %actor(request), order_id = %id, approve, "order reviewed");
    Ok(json_response(StatusCode::OK, &staff_view(&order)))
}
