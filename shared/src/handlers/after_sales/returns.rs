//! Returned goods at the warehouse: taken in (`POST /admin/tickets/{id}/received`, starting the
//! 7-day QC clock) and checked by a warehouse user (`POST /admin/tickets/{id}/qc`):
//!
//! - pass: the units go back on sale (sold → available, audited) and the ticket closes: a
//!   return refunded (RefundRequested from the stream), an exchange replaced (its reserved
//!   replacement sold), a repair repaired;
//! - fail: closed rejected with the notes and photos.
//!
//! What does not end in a refund goes back to the customer in an after-sales parcel (the
//! replacement, the repaired item, the goods that failed), made in the same transaction as the
//! order's next shipment: fulfilment picks, packs and hands it over like any other. Its units
//! count as delivered again only when it is delivered.
//!
//! The customer may withdraw a ticket staff have not decided (`POST /tickets/{id}/withdraw`);
//! once a return is approved the goods may be on their way, so only staff end it (a reject,
//! e.g. when its return-by deadline passed without the goods).

use super::closing::close;
use super::routes::{change_failed, store_problem, ticket_view, Audience};
use super::{change_ticket, AfterSalesDeps, AuditAs, TicketChange, TicketView};
use crate::auth::Caller;
use crate::domain::ticket::{qc_deadline, Closure, QcResult, SlaKind, Ticket, TicketId, TicketKind, TicketStatus};
use crate::domain::{FulfilmentPolicy, WarehouseId};
use crate::handlers::fulfilment::after_sales_parcel;
use crate::handlers::{conflict, invalid, json_body};
use crate::http::{json_response, Problem};
use crate::store::{FulfilmentFacts, ShipmentWrite, Store};
use aws_sdk_dynamodb::types::TransactWriteItem;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use tracing::info;

pub async fn receive(deps: &AfterSalesDeps, who: &str, id: &TicketId) -> Result<Response<Body>, Problem> {
    let audit = AuditAs { actor: who, action: "ticket.received" };
    let written = change_ticket(deps, id, Some(audit), |view| {
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
    let qc = |at| QcResult {
        passed: body.passed,
        notes: notes.clone(),
        photos: body.photos.clone(),
        by: who.to_owned(),
        at,
    };
    let planning = ParcelPlanning::load(deps, id, body.passed).await?;
    let audit = AuditAs { actor: who, action: if body.passed { "ticket.qc-pass" } else { "ticket.qc-fail" } };
    let written =
        change_ticket(deps, id, Some(audit), |view| checked(deps, who, qc(view.now), planning.as_ref(), view))
            .await
            .map_err(change_failed)??;
    info!(actor = %who, ticket_id = %id, passed = body.passed, "return checked");
    Ok(json_response(StatusCode::OK, &ticket_view(&written, Audience::Staff)))
}

/// What planning a parcel back to the customer needs, read before the change (the change
/// itself reads nothing): the fulfilment policy and the facts of the ticket's goods. Nothing
/// for a return that passes: it ends in a refund.
struct ParcelPlanning {
    policy: FulfilmentPolicy,
    facts: FulfilmentFacts,
}

impl ParcelPlanning {
    async fn load(deps: &AfterSalesDeps, id: &TicketId, passed: bool) -> Result<Option<Self>, Problem> {
        let store = &deps.common.store;
        let ticket = store.ticket(id).await.map_err(store_problem)?.ok_or_else(|| Problem::not_found("ticket"))?;
        if passed && !matches!(ticket.kind, TicketKind::Exchange | TicketKind::Repair) {
            return Ok(None);
        }
        let warehouse = match &ticket.shipment_id {
            Some(parcel) => store.shipment(parcel).await.map_err(store_problem)?.map(|s| s.warehouse),
            None => None,
        };
        let skus: Vec<_> = ticket.lines.iter().map(|l| l.sku.clone()).collect();
        let pairs: Vec<_> = warehouse.iter().flat_map(|w| skus.iter().map(move |s| (s.clone(), w.clone()))).collect();
        let facts = store.fulfilment_facts(&skus, &pairs).await.map_err(store_problem)?;
        let policy = store.fulfilment_policy().await.map_err(store_problem)?.unwrap_or_default();
        Ok(Some(Self { policy, facts }))
    }
}

/// The ticket with its QC result: pass restocks (but a repair) and closes refunded, replaced or
/// repaired; fail closes rejected. Whatever does not end in a refund goes back to the customer
/// in a parcel of its own, planned here and shipped through fulfilment.
fn checked(
    deps: &AfterSalesDeps,
    who: &str,
    qc: QcResult,
    planning: Option<&ParcelPlanning>,
    view: TicketView<'_>,
) -> TicketChange<Problem> {
    let mut ticket = view.ticket.clone();
    match ticket.status {
        TicketStatus::Received => {}
        TicketStatus::Closed if ticket.qc.as_ref().is_some_and(|q| q.passed == qc.passed) => {
            return TicketChange::Nothing
        }
        _ => return TicketChange::Refused(conflict("not-received", "the goods have not been taken in")),
    }
    let passed = qc.passed;
    ticket.qc = Some(qc);
    ticket.meet(SlaKind::Qc, view.now);
    let (Some(order), Some(shipment)) = (view.view.order.as_ref(), view.view.parcel_of(&ticket)) else {
        return TicketChange::Refused(conflict("parcel-unknown", "the ticket's parcel is not in the table"));
    };
    let closure = match (passed, ticket.kind) {
        (false, _) => Closure::Rejected,
        (true, TicketKind::Exchange) => Closure::Replaced,
        (true, TicketKind::Repair) => Closure::Repaired,
        (true, _) => Closure::Refunded,
    };
    let store = &deps.common.store;
    let mut writes =
        if passed { restock(store, who, &ticket, &shipment.warehouse, closure, view.now) } else { Vec::new() };
    if let Some(planning) = planning.filter(|_| closure != Closure::Refunded) {
        let lines: Vec<_> = ticket.lines.iter().map(|l| (l.sku.clone(), l.quantity, l.unit_price_minor)).collect();
        let (policy, facts) = (&planning.policy, &planning.facts);
        let mut parcel =
            after_sales_parcel(order, &ticket.ticket_id, &shipment.warehouse, &lines, policy, facts, view.now);
        if closure != Closure::Replaced {
            // The customer's own goods: picked where returns are held for this ticket, never
            // from the sellable bin (a unit from there would leave with no stock move).
            let held = format!("returns/{}", ticket.ticket_id);
            parcel.lines.iter_mut().for_each(|line| line.bin = Some(held.clone()));
        }
        ticket.outbound = Some(parcel.shipment_id.clone());
        writes.push(store.put_shipment(ShipmentWrite { shipment: &parcel, seen: None }));
        writes.push(store.order_shipment_count(order, parcel.shipment_id.number, view.now));
    }
    match close(store, view.view, ticket, closure, view.now) {
        TicketChange::Change { ticket, units, mut extra } => {
            extra.extend(writes);
            TicketChange::Change { ticket, units, extra }
        }
        other => other,
    }
}

/// A passed check's units back on sale, audited: sold → available. An exchange's replacement
/// (the same SKU, from the same warehouse) is sold in place of the returned unit: one item
/// cannot move twice in a transaction, so the net move is reserved → available. A repaired item
/// is the customer's and goes back to them.
fn restock(
    store: &Store,
    who: &str,
    ticket: &Ticket,
    warehouse: &WarehouseId,
    closure: Closure,
    now: OffsetDateTime,
) -> Vec<TransactWriteItem> {
    let from = if closure == Closure::Replaced { "reserved" } else { "sold" };
    let mut writes = Vec::new();
    for line in ticket.lines.iter().filter(|_| closure != Closure::Repaired) {
        writes.push(store.stock_shift(&line.sku, warehouse, line.quantity, (from, "available"), now));
        let subject = format!("stock/{}/{warehouse}", line.sku);
        let record = serde_json::json!({ "ticket_id": ticket.ticket_id, "restocked": line.quantity, "from": from });
        writes.push(store.audit_record(who, "return-restocked", &subject, None::<&()>, Some(&record), now));
    }
    writes
}

/// The customer withdraws a ticket staff have not decided.
pub async fn withdraw(deps: &AfterSalesDeps, caller: &Caller, id: &TicketId) -> Result<Response<Body>, Problem> {
    // The customer's own change: the ticket keeps when it was withdrawn; staff changes are audited.
    let written = change_ticket(deps, id, None, |view| {
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
