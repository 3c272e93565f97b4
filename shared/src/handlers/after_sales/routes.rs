//! Function after-sales-api (API Gateway HTTP API):
//!
//! - The customer (the order's owner, or the shop for them): `POST /orders/{id}/evidence`
//!   (an upload URL for a photo), `POST /orders/{id}/tickets` ([`super::open`]),
//!   `GET /orders/{id}/tickets`, `GET /tickets/{id}`, `POST /tickets/{id}/withdraw`.
//! - Customer service (or operations, admin): `GET /admin/tickets` (the queue: tickets whose
//!   unkept deadlines are all breached first, then by the next pending deadline), `GET /admin/tickets/{id}` (with the review reasons and the
//!   order's risk score), `POST /admin/tickets/{id}/decision` ([`super::decide`]).
//! - The warehouse (or operations, admin): `POST /admin/orders/{id}/evidence` (QC photos),
//!   `POST /admin/tickets/{id}/received`, `POST /admin/tickets/{id}/qc` ([`super::returns`]).
//! - Operations, admin: `GET`/`PUT /admin/after-sales-policy`; with customer service,
//!   `GET /admin/after-sales-rate?month=YYYY-MM` (orders archived that month, how many had
//!   after-sales, how many were refunded, and the rate).
//!
//! The customer sees their tickets without risk control's reasons or staff identities.

use super::{open, returns, AfterSalesDeps, AfterSalesError};
use crate::auth::Caller;
use crate::domain::after_sales_policy::AfterSalesPolicy;
use crate::domain::ticket::{Ticket, TicketId};
use crate::domain::OrderId;
use crate::handlers::{invalid, json_body, policy_document};
use crate::http::{json_response, segments, Problem};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde::Deserialize;
use tracing::warn;

pub async fn handle(deps: &AfterSalesDeps, request: Request) -> Result<Response<Body>, Error> {
    Ok(route(deps, &request).await.unwrap_or_else(Problem::into_response))
}

async fn route(deps: &AfterSalesDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let path = request.uri().path().to_owned();
    let caller = crate::access::authorize(request)?;
    let who = caller.actor();
    let parts = segments(&path);
    match (request.method().clone(), parts.as_slice()) {
        (Method::POST, ["orders", id, "evidence"]) => {
            let order = order_id(id)?;
            visible_order(deps, &caller, order).await?;
            evidence_upload(deps, request, order).await
        }
        (Method::POST, ["orders", id, "tickets"]) => open::open_ticket(deps, &caller, request, order_id(id)?).await,
        (Method::GET, ["orders", id, "tickets"]) => {
            let view = visible_order(deps, &caller, order_id(id)?).await?;
            let tickets: Vec<_> = view.tickets.iter().map(|t| ticket_view(t, Audience::Customer)).collect();
            Ok(json_response(StatusCode::OK, &serde_json::json!({ "tickets": tickets })))
        }
        (Method::GET, ["tickets", id]) => {
            let id = ticket_id(id)?;
            let view = visible_order(deps, &caller, id.order_id).await?;
            let ticket = view.tickets.iter().find(|t| t.ticket_id == id).ok_or_else(|| Problem::not_found("ticket"))?;
            Ok(json_response(StatusCode::OK, &ticket_view(ticket, Audience::Customer)))
        }
        (Method::POST, ["tickets", id, "withdraw"]) => returns::withdraw(deps, &caller, &ticket_id(id)?).await,
        (Method::GET, ["admin", "tickets"]) => {
            let queue = deps.common.store.ticket_queue(100).await.map_err(store_problem)?;
            let tickets: Vec<_> = queue.iter().map(|t| ticket_view(t, Audience::Staff)).collect();
            Ok(json_response(StatusCode::OK, &serde_json::json!({ "tickets": tickets })))
        }
        (Method::GET, ["admin", "tickets", id]) => {
            let ticket = deps.common.store.ticket(&ticket_id(id)?).await.map_err(store_problem)?;
            let ticket = ticket.ok_or_else(|| Problem::not_found("ticket"))?;
            Ok(json_response(StatusCode::OK, &ticket_view(&ticket, Audience::Staff)))
        }
        (Method::POST, ["admin", "tickets", id, "decision"]) => {
            super::decide::decide(deps, &caller, request, &ticket_id(id)?).await
        }
        (Method::POST, ["admin", "orders", id, "evidence"]) => evidence_upload(deps, request, order_id(id)?).await,
        (Method::POST, ["admin", "tickets", id, "received"]) => returns::receive(deps, &who, &ticket_id(id)?).await,
        (Method::POST, ["admin", "tickets", id, "qc"]) => {
            returns::quality_check(deps, &who, request, &ticket_id(id)?).await
        }
        (Method::GET, ["admin", "after-sales-rate"]) => {
            let month = crate::handlers::month_asked(request, deps.common.clock.now())?;
            let figures = deps.common.store.after_sales_month(&month).await.map_err(store_problem)?;
            let rate = figures.rate_pct();
            Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({ "month": month, "figures": figures, "after_sales_rate_pct": rate }),
            ))
        }
        (Method::GET | Method::PUT, ["admin", "after-sales-policy"]) => {
            let now = deps.common.clock.now();
            policy_document::<AfterSalesPolicy>(&deps.common.store, request, &who, now).await
        }
        (_, ["orders", _, "evidence" | "tickets"])
        | (_, ["tickets", _] | ["tickets", _, "withdraw"])
        | (_, ["admin", "tickets"] | ["admin", "tickets", _] | ["admin", "after-sales-policy" | "after-sales-rate"])
        | (_, ["admin", "orders", _, "evidence"])
        | (_, ["admin", "tickets", _, "decision" | "received" | "qc"]) => Err(Problem::method_not_allowed()),
        _ => Err(Problem::route_not_found()),
    }
}

fn order_id(raw: &str) -> Result<OrderId, Problem> {
    OrderId::parse(raw).map_err(|e| invalid("order_id", e.code, e.detail))
}

fn ticket_id(raw: &str) -> Result<TicketId, Problem> {
    TicketId::parse(raw).map_err(|e| invalid("ticket_id", e.code, e.detail))
}

/// The order with its tickets, if the caller may see it (else 404: no telling whose it is).
async fn visible_order(
    deps: &AfterSalesDeps,
    caller: &Caller,
    order: OrderId,
) -> Result<crate::store::AfterSalesView, Problem> {
    let view = deps.common.store.after_sales_of(order).await.map_err(store_problem)?;
    let visible = view.order.as_ref().is_some_and(|o| caller.may_act_on_order_of(&o.customer_id));
    if visible {
        Ok(view)
    } else {
        Err(Problem::not_found("order"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceRequest {
    content_type: String,
}

/// A presigned upload for one photo of the order's after-sales evidence: the key to name when
/// opening a ticket or recording a QC.
async fn evidence_upload(deps: &AfterSalesDeps, request: &Request, order: OrderId) -> Result<Response<Body>, Problem> {
    let body: EvidenceRequest = json_body(request)?;
    let key = open::evidence_key(order);
    let upload = deps.photos.upload_url(&key, &body.content_type).await.map_err(|e| match e {
        crate::photos::PhotoError::NotAnImage(_) => invalid("content_type", "photo-not-an-image", e.to_string()),
        other => unavailable(other),
    })?;
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "key": key, "upload": upload })))
}

/// Who a ticket is shown to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    Customer,
    Staff,
}

/// A ticket as `audience` sees it: staff see everything, with the deadline to answer first; the
/// customer does not see risk control's reasons, the order's risk score or staff identities.
pub(super) fn ticket_view(ticket: &Ticket, audience: Audience) -> serde_json::Value {
    let mut view = serde_json::to_value(ticket).expect("plain data");
    let Some(object) = view.as_object_mut() else { return view };
    object.remove("version");
    match audience {
        Audience::Staff => {
            let due = ticket.nearest_unmet().map(|t| t.format(&time::format_description::well_known::Rfc3339));
            object.insert("answer_by".into(), due.and_then(Result::ok).into());
        }
        Audience::Customer => {
            for internal in ["review", "risk_score", "customer_id"] {
                object.remove(internal);
            }
            if let Some(decision) = object.get_mut("decision").and_then(|d| d.as_object_mut()) {
                decision.remove("by");
            }
            if let Some(qc) = object.get_mut("qc").and_then(|d| d.as_object_mut()) {
                qc.remove("by");
            }
        }
    }
    view
}

pub(super) fn store_problem(err: impl std::fmt::Display) -> Problem {
    unavailable(err)
}

pub(super) fn unavailable(err: impl std::fmt::Display) -> Problem {
    warn!(error = %err, "after-sales request failed");
    Problem::unavailable()
}

pub(super) fn change_failed(err: AfterSalesError) -> Problem {
    match err {
        AfterSalesError::TicketMissing(_) => Problem::not_found("ticket"),
        AfterSalesError::Contended(_) => {
            crate::handlers::busy("ticket-busy", "the ticket kept changing while this request was applied; retry")
        }
        other => unavailable(other),
    }
}
