//! Returned goods at the warehouse: taken in (`POST /admin/tickets/{id}/received`, starting the
//! 7-day QC clock) and checked by a warehouse user (`POST /admin/tickets/{id}/qc`):
//!
//! - pass: the units go back on sale (sold → available, audited) and the ticket closes: a
//!   return refunded (RefundRequested from the stream), an exchange replaced (its reserved
//!   replacement sold, for the warehouse to ship), a repair repaired;
//! - fail: closed rejected with the notes and photos, the goods sent back, the units free.
//!
//! The customer may withdraw a ticket staff have not decided (`POST /tickets/{id}/withdraw`);
//! once a return is approved the goods may be on their way, so only staff end it (a reject,
//! e.g. when its return-by deadline passed without the goods).

use super::closing::close;
use super::routes::{change_failed, ticket_view, Audience};
use super::{change_ticket, AfterSalesDeps, TicketChange};
use crate::auth::Caller;
use crate::domain::ticket::{qc_deadline, Closure, QcResult, SlaKind, TicketId, TicketKind, TicketStatus};
use crate::handlers::{conflict, invalid, json_body};
use crate::http::{json_response, Problem};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use tracing::info;

pub async fn receive(deps: &AfterSalesDeps, who: &str, id: &TicketId) -> Result<Response<Body>, Problem> {
    let written = change_ticket(deps, id, |view| {
        let mut ticket = view.ticket.clone();
        match ticket.status {
            TicketStatus::AwaitingReturn => {}
            TicketStatus::Received => return TicketChange::Nothing,
            _ => return TicketChange::Refused(conflict("not-awaiting-return", "no return is expected on this ticket")),
        }
        ticket.status = TicketStatus::Received;
        ticket.received_at = Some(view.now);
        ticket.meet(SlaKind::ReturnBy, view.now);
        ticket.deadlines.push(qc_deadline(view.now, view.policy.qc_days));
        TicketChange::Change { ticket: Box::new(ticket), units: None, extra: Vec::new() }
    })
    .await
    .map_err(change_failed)??;
    info!(actor = %who, ticket_id = %id, "return received");
    Ok(json_response(StatusCode::OK, &ticket_view(&written, Audience::Staff)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QcRequest {
    passed: bool,
    notes: String,
    #[serde(default)]
    photos: Vec<String>,
}

pub async fn quality_check(
    deps: &AfterSalesDeps,
    who: &str,
    request: &Request,
    id: &TicketId,
) -> Result<Response<Body>, Problem> {
    let body: QcRequest = json_body(request)?;
    let notes = body.notes.trim().to_owned();
    if notes.is_empty() || notes.chars().count() > 2_000 {
        return Err(invalid("notes", "notes-required", "say what was found, in at most 2000 characters"));
    }
    super::open::evidence_named("photos", id.order_id, &body.photos)?;
    if !body.passed && body.photos.is_empty() {
        return Err(invalid("photos", "evidence-required", "a failed check is shown by a photo"));
    }
    super::open::evidence_uploaded(deps, "photos", &body.photos).await?;
    let written = change_ticket(deps, id, |view| {
        let mut ticket = view.ticket.clone();
        match ticket.status {
            TicketStatus::Received => {}
            TicketStatus::Closed if ticket.qc.as_ref().is_some_and(|q| q.passed == body.passed) => {
                return TicketChange::Nothing
            }
            _ => return TicketChange::Refused(conflict("not-received", "the goods have not been taken in")),
        }
        ticket.qc = Some(QcResult {
            passed: body.passed,
            notes: notes.clone(),
            photos: body.photos.clone(),
            by: who.to_owned(),
            at: view.now,
        });
        ticket.meet(SlaKind::Qc, view.now);
        if !body.passed {
            return close(&deps.common.store, view.view, ticket, Closure::Rejected, view.now);
        }
        let store = &deps.common.store;
        let Some(shipment) = view.view.parcel_of(&ticket) else {
            return TicketChange::Refused(conflict("parcel-unknown", "the ticket's parcel is not in the table"));
        };
        let closure = match ticket.kind {
            TicketKind::Exchange => Closure::Replaced,
            TicketKind::Repair => Closure::Repaired,
            _ => Closure::Refunded,
        };
        let mut restock = Vec::new();
        for line in ticket.lines.iter().filter(|_| closure != Closure::Repaired) {
            // An exchange's replacement (the same SKU, from the same warehouse) is sold in place
            // of the returned unit: one item cannot move twice in a transaction, so the net move
            // is reserved → available.
            let from = if closure == Closure::Replaced { "reserved" } else { "sold" };
            restock.push(store.stock_shift(
                &line.sku,
                &shipment.warehouse,
                line.quantity,
                (from, "available"),
                view.now,
            ));
            let subject = format!("stock/{}/{}", line.sku, shipment.warehouse);
            let record = serde_json::json!({ "ticket_id": ticket.ticket_id, "restocked": line.quantity, "from": from });
            restock.push(store.audit_record(who, "return-restocked", &subject, None::<&()>, Some(&record), view.now));
        }
        match close(store, view.view, ticket, closure, view.now) {
            TicketChange::Change { ticket, units, mut extra } => {
                extra.extend(restock);
                TicketChange::Change { ticket, units, extra }
            }
            other => other,
        }
    })
    .await
    .map_err(change_failed)??;
    info!(actor = %who, ticket_id = %id, passed = body.passed, "return checked");
    Ok(json_response(StatusCode::OK, &ticket_view(&written, Audience::Staff)))
}

/// The customer withdraws a ticket staff have not decided.
pub async fn withdraw(deps: &AfterSalesDeps, caller: &Caller, id: &TicketId) -> Result<Response<Body>, Problem> {
    let written = change_ticket(deps, id, |view| {
        let visible = view.view.order.as_ref().is_some_and(|o| caller.may_act_on_order_of(&o.customer_id));
        if !visible {
            return TicketChange::Refused(Problem::not_found("ticket"));
        }
        match view.ticket.status {
            TicketStatus::Open => {
                close(&deps.common.store, view.view, view.ticket.clone(), Closure::Withdrawn, view.now)
            }
            TicketStatus::Closed if view.ticket.closure == Some(Closure::Withdrawn) => TicketChange::Nothing,
            // Goods may be on their way back: only staff end an approved return (a reject).
            _ => TicketChange::Refused(conflict("ticket-past-withdrawal", "the ticket is approved or closed")),
        }
    })
    .await
    .map_err(change_failed)??;
    Ok(json_response(StatusCode::OK, &ticket_view(&written, Audience::Customer)))
}
