//! Function order-intake (API Gateway HTTP API, behind the JWT authorizer): submit an order,
//! read it, cancel it, verify it. The caller comes from the verified token ([`Caller`]): a
//! customer acts on their own orders only (another's is a 404, as if it did not exist); a shop
//! backend with the on-behalf scope acts for its customers.
//!
//! - [`personal`]: the order's personal data sealed and fingerprinted.
//! - [`submit`]: pricing from the catalogue, risk scoring, the idempotent write.
//! - [`verification`]: step-up codes, their attempts and their resend limits.

mod personal;
mod submit;
mod verification;

use super::{Common, TtlCache};
use crate::auth::Caller;
use crate::domain::risk::RiskRules;
use crate::domain::{Limits, Order, OrderId, OrderLine, OrderStatus, ShortLine, Trigger};
use crate::http::{json_response, segments, Problem};
use crate::notify::Notifier;
use crate::personal::PersonalKeys;
use crate::store::{CancelCause, CancelError, StoreError};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

pub use submit::IDEMPOTENCY_HEADER;

#[derive(Debug, Clone, Copy)]
pub struct IntakeSettings {
    pub limits: Limits,
    pub max_body_bytes: usize,
    /// How long a key and its response are remembered.
    pub key_retention: Duration,
    /// Tries at the order's write while concurrent writes hold its key or move its counters (a
    /// burst from one device is scored one order at a time).
    pub write_attempts: usize,
    /// How long a warm function trusts the risk rules it read.
    pub rules_cache: Duration,
    /// How long a verification code is valid, and how many wrong codes cancel the order.
    pub verification_ttl: Duration,
    pub verification_attempts: u32,
    /// New codes a customer may ask for per order, and how long apart.
    pub resends_per_order: u32,
    pub resend_interval: Duration,
    /// Codes one phone number may receive per day (UTC), over all its orders.
    pub codes_per_phone_per_day: u32,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_body_bytes: 64 * 1024,
            key_retention: Duration::hours(24),
            write_attempts: 40,
            rules_cache: Duration::minutes(1),
            verification_ttl: Duration::minutes(10),
            verification_attempts: 5,
            resends_per_order: 5,
            resend_interval: Duration::minutes(1),
            codes_per_phone_per_day: 10,
        }
    }
}

#[derive(Clone)]
pub struct IntakeDeps {
    pub common: Common,
    pub settings: IntakeSettings,
    pub notifier: Arc<dyn Notifier>,
    /// Seals the order's personal data before it is stored (opens it to send a new code), and
    /// fingerprints the phone, address and IP that risk and the code counter match on.
    pub personal: PersonalKeys,
    rules: Arc<TtlCache<RiskRules>>,
}

impl IntakeDeps {
    pub fn new(common: Common, settings: IntakeSettings, notifier: Arc<dyn Notifier>, personal: PersonalKeys) -> Self {
        Self { common, rules: Arc::new(TtlCache::new(settings.rules_cache)), settings, notifier, personal }
    }

    /// The saved risk rules (or the sources' defaults), at most `rules_cache` old.
    async fn risk_rules(&self, now: OffsetDateTime) -> Result<Arc<RiskRules>, StoreError> {
        self.rules
            .get_or_load(now, || async {
                Ok(self.common.store.risk_rules().await?.unwrap_or_else(RiskRules::defaults))
            })
            .await
    }
}

pub async fn handle(deps: &IntakeDeps, request: Request) -> Result<Response<Body>, Error> {
    Ok(route(deps, request).await.unwrap_or_else(Problem::into_response))
}

async fn route(deps: &IntakeDeps, request: Request) -> Result<Response<Body>, Problem> {
    let path = request.uri().path().to_owned();
    let caller = || crate::access::authorize(&request);
    match (request.method().clone(), segments(&path).as_slice()) {
        (Method::POST, ["orders"]) => submit::submit(deps, &request, &caller()?).await,
        (Method::GET, ["orders", id]) => read(deps, &caller()?, id).await,
        (Method::POST, ["orders", id, "cancel"]) => cancel(deps, &caller()?, id).await,
        (Method::POST, ["orders", id, "verify"]) => verification::verify(deps, &caller()?, id, &request).await,
        (Method::POST, ["orders", id, "verification", "resend"]) => verification::resend(deps, &caller()?, id).await,
        (
            _,
            ["orders"] | ["orders", _] | ["orders", _, "cancel" | "verify"] | ["orders", _, "verification", "resend"],
        ) => Err(Problem::method_not_allowed()),
        _ => Err(Problem::route_not_found()),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn unavailable(err: impl std::fmt::Display) -> Problem {
    warn!(error = %err, "order intake failed");
    Problem::unavailable()
}

/// What the customer is told: a frozen order looks like one under review, so a fraudster learns
/// nothing from the answer.
fn customer_status(status: OrderStatus) -> OrderStatus {
    if status == OrderStatus::Frozen {
        OrderStatus::PendingReview
    } else {
        status
    }
}

fn order_id(raw: &str) -> Result<OrderId, Problem> {
    OrderId::parse(raw).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, e.code, "Malformed order id", e.detail).with_field("order_id")
    })
}

/// The order, if it exists and the caller may act on it: another customer's order is a 404 like
/// one that does not exist, so ids cannot be probed.
async fn owned_order(deps: &IntakeDeps, caller: &Caller, raw_id: &str) -> Result<Order, Problem> {
    let id = order_id(raw_id)?;
    let order = deps.common.store.order(id).await.map_err(unavailable)?;
    order.filter(|o| caller.may_act_on_order_of(&o.customer_id)).ok_or_else(|| Problem::not_found("order"))
}

/// What a client may see of an order: no street, no recipient, the phone masked; the customer
/// also their own personal data.
#[derive(Debug, Serialize)]
pub struct OrderView {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub customer_id: String,
    pub lines: Vec<OrderLine>,
    pub currency: crate::domain::Currency,
    pub total_minor: i64,
    pub payment_method: crate::domain::PaymentMethod,
    pub channel: String,
    pub ship_to: ShipTo,
    pub phone: String,
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub hold_expires_at: Option<OffsetDateTime>,
    /// Why the order was rejected: the lines no warehouse could serve.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub short_lines: Vec<ShortLine>,
    /// Its shipments, once fulfilment made them, as they are now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shipments: Vec<ShipmentView>,
    /// The customer's own personal data in the clear, for the customer only (the matrix's
    /// `PERSONAL_FIELDS`); absent for anyone else and once erased.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal: Option<std::collections::BTreeMap<String, String>>,
}

/// What the customer sees of a shipment: where it stands, the courier and waybill, a shortage
/// waiting for their answer.
#[derive(Debug, Serialize)]
pub struct ShipmentView {
    pub shipment_id: crate::domain::ShipmentId,
    pub status: crate::domain::ShipmentStatus,
    pub lines: Vec<crate::events::fulfilment::ShippedLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub courier: Option<crate::domain::CourierId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waybill_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortage: Option<ShortageView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<crate::domain::shipment::ShortageRefund>,
}

/// A shortage as the customer sees it: what is missing and the answer asked of them (not who in
/// the warehouse reported it, nor why).
#[derive(Debug, Serialize)]
pub struct ShortageView {
    pub missing: Vec<crate::domain::shipment::MissingUnits>,
    #[serde(with = "time::serde::rfc3339")]
    pub answer_by: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<crate::domain::shipment::ShortageAnswer>,
}

impl From<&crate::domain::Shipment> for ShipmentView {
    fn from(s: &crate::domain::Shipment) -> Self {
        Self {
            shipment_id: s.shipment_id.clone(),
            status: s.status,
            lines: s
                .lines
                .iter()
                .map(|l| crate::events::fulfilment::ShippedLine { sku: l.sku.clone(), quantity: l.quantity })
                .collect(),
            courier: s.courier.as_ref().map(|c| c.courier.clone()),
            waybill_number: s.waybill.as_ref().map(|w| w.number.clone()),
            shortage: s.shortage.as_ref().map(|short| ShortageView {
                missing: short.missing.clone(),
                answer_by: short.answer_by,
                answer: short.answer.clone(),
            }),
            refunds: s.refunds.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ShipTo {
    pub country: String,
    pub province: String,
    pub city: String,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        Self {
            order_id: order.order_id,
            status: customer_status(order.status),
            customer_id: order.customer_id.to_string(),
            // Which stock shard holds a line is the warehouse's business, not the customer's.
            lines: order.lines.iter().map(|l| OrderLine { stock_shard: 0, ..l.clone() }).collect(),
            currency: order.currency,
            total_minor: order.total_minor,
            payment_method: order.payment_method,
            channel: order.channel.to_string(),
            ship_to: ShipTo {
                country: order.shipping_address.country.clone(),
                province: order.shipping_address.province.clone(),
                city: order.shipping_address.city.clone(),
            },
            phone: order.phone_hint.clone(),
            event_time: order.event_time,
            received_at: order.received_at,
            updated_at: order.updated_at,
            hold_expires_at: order.hold_expires_at,
            short_lines: order.short_lines.clone(),
            shipments: Vec::new(),
            personal: None,
        }
    }
}

/// The order with its shipments as they are now (one query of the order's partition).
async fn read(deps: &IntakeDeps, caller: &Caller, raw_id: &str) -> Result<Response<Body>, Problem> {
    let id = order_id(raw_id)?;
    let (order, shipments) = deps.common.store.order_and_shipments(id).await.map_err(unavailable)?;
    let order =
        order.filter(|o| caller.may_act_on_order_of(&o.customer_id)).ok_or_else(|| Problem::not_found("order"))?;
    let mut view = OrderView::from(&order);
    view.shipments = shipments.iter().map(ShipmentView::from).collect();
    // The customer reads their own data; a shop backend acting for them sees the view's masks.
    if let (Caller::Customer(_), Some(sealed)) = (caller, order.personal.as_ref()) {
        let fields = crate::access::fields_for_owner();
        let context = crate::personal::order_context(id);
        let opened = deps.personal.sealer.open_fields(sealed, &context, &fields).await.map_err(unavailable)?;
        view.personal = Some(opened.into_iter().map(|(name, value)| (name.to_owned(), value)).collect());
    }
    Ok(json_response(StatusCode::OK, &view))
}

fn handed_over() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "order-handed-over",
        "Order already with the courier",
        "a parcel of this order was handed over to a courier: ask after-sales for a return",
    )
}

async fn cancel(deps: &IntakeDeps, caller: &Caller, raw_id: &str) -> Result<Response<Body>, Problem> {
    const ATTEMPTS: usize = 5;
    let store = &deps.common.store;
    for _ in 0..ATTEMPTS {
        let mut order = owned_order(deps, caller, raw_id).await?;
        let id = order.order_id;
        let now = deps.common.clock.now();
        match order.status {
            // Cancelling again answers the same.
            OrderStatus::Cancelled | OrderStatus::CancelledAfterPayment => {}
            OrderStatus::Shipped | OrderStatus::Delivered | OrderStatus::Undelivered => return Err(handed_over()),
            // Paid, or with shipments: fulfilment stops them and returns their units.
            _ if crate::handlers::fulfilment::cancels_through_fulfilment(&order) => {
                use crate::handlers::fulfilment::{cancel_paid_order, CancelRefused};
                match cancel_paid_order(store, id, now).await {
                    Ok(next) => {
                        order.status = next;
                        order.updated_at = now;
                        info!(order_id = %id, "order cancelled before hand-over");
                    }
                    Err(CancelRefused::Changed) => continue,
                    Err(CancelRefused::HandedOver) => return Err(handed_over()),
                    Err(CancelRefused::NotCancellable(_)) | Err(CancelRefused::Missing) => continue,
                    Err(CancelRefused::Store(err)) => return Err(unavailable(err)),
                }
            }
            status if status.can_become_by(OrderStatus::Cancelled, Trigger::Customer) => {
                match store.cancel(&order, CancelCause::Customer, now).await {
                    Ok(_) => {
                        order.status = OrderStatus::Cancelled;
                        order.updated_at = now;
                        info!(order_id = %id, "order cancelled");
                    }
                    Err(CancelError::StatusChanged) => continue,
                    Err(CancelError::Store(err)) => return Err(unavailable(err)),
                }
            }
            status => {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "order-not-cancellable",
                    "Order cannot be cancelled",
                    format!("an order in status {} cannot be cancelled", status.as_str()),
                ))
            }
        }
        return Ok(json_response(StatusCode::OK, &OrderView::from(&order)));
    }
    Err(unavailable("order kept changing during cancel"))
}
