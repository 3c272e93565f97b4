//! Customer service answers an open ticket (`POST /admin/tickets/{id}/decision`):
//!
//! | action | kinds | effect |
//! |---|---|---|
//! | `approve` | return, repair | a return waybill booked through the courier port → AWAITING_RETURN |
//! | `approve` | exchange | the same, with the replacement's units reserved in the parcel's warehouse |
//! | `approve` | refund only | CLOSED refunded: RefundRequested from the stream, paid once |
//! | `reject` | any open, or approved goods not yet received | CLOSED rejected, the units free again |
//! | `respond` | any open | the first response given; the ticket stays open |
//! | `plan` | major complaint | the plan given; the ticket stays open |
//! | `answer` | complaint | CLOSED answered |
//! | `escalate` | complaint | major: a 4 h first response and a 24 h plan from its opening |
//!
//! A refund risk control sends to review (scored again at approval: the customer's month may
//! have moved since opening) is approved only by risk staff (or an administrator).
//! Every decision is a conditional write of the ticket at the version read; a second approval of
//! the same ticket finds it decided and changes nothing.

use super::closing::close;
use super::routes::{change_failed, store_problem, ticket_view, Audience};
use super::{change_ticket, AfterSalesDeps, AuditAs, TicketChange, TicketView};
use crate::auth::Caller;
use crate::courier::Booking;
use crate::domain::ticket::{
    opening_deadlines, return_deadline, Closure, Decision, ReturnWaybill, Ticket, TicketId, TicketKind, TicketStatus,
};
use crate::domain::{Allocation, Quantity};
use crate::handlers::{conflict, invalid, json_body};
use crate::http::{json_response, Problem};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use tracing::info;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Approve,
    Reject,
    Respond,
    Plan,
    Answer,
    Escalate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionRequest {
    action: Action,
    #[serde(default)]
    note: Option<String>,
}

pub async fn decide(
    deps: &AfterSalesDeps,
    caller: &Caller,
    request: &Request,
    id: &TicketId,
) -> Result<Response<Body>, Problem> {
    let body: DecisionRequest = json_body(request)?;
    let note = body.note.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
    if note.as_ref().is_some_and(|n| n.chars().count() > 2_000) {
        return Err(invalid("note", "note-too-long", "at most 2000 characters"));
    }
    if note.is_none() && body.action != Action::Approve && body.action != Action::Escalate {
        return Err(invalid("note", "note-required", "say what the customer is told"));
    }
    let who = caller.actor();
    // Read once for what comes before the write: the review, the parcel, the courier booking.
    let read = deps.common.store.after_sales_of(id.order_id).await.map_err(store_problem)?;
    let stored = read.tickets.iter().find(|t| &t.ticket_id == id).ok_or_else(|| Problem::not_found("ticket"))?;
    let approving = body.action == Action::Approve && stored.status == TicketStatus::Open;
    let mut review = stored.review.clone();
    if approving && stored.kind.may_refund() {
        let order = read.order.as_ref().ok_or_else(|| Problem::not_found("order"))?;
        review = current_review(deps, order, stored).await?;
    }
    if approving && !review.is_empty() && !caller.has_any(crate::access::APPROVE_REVIEWED_REFUND) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "review-required",
            "Manual review",
            "risk control sent this refund to manual review: risk staff decide it",
        ));
    }
    let waybill = match approving && stored.kind.takes_goods_back() {
        true => Some(book_return(deps, &read, stored).await?),
        false => None,
    };
    let decision =
        Decision { approved: body.action == Action::Approve, by: who.clone(), note, at: deps.common.clock.now() };
    let action = format!("ticket.{:?}", body.action).to_lowercase();
    let audit = AuditAs { actor: &who, action: &action };
    let written = change_ticket(deps, id, Some(audit), |view| {
        let ticket = view.ticket.clone();
        // An approved return whose goods never came is ended by staff.
        let abandoned = ticket.status == TicketStatus::AwaitingReturn && body.action == Action::Reject;
        if ticket.status != TicketStatus::Open && !abandoned {
            let same = body.action == Action::Approve && ticket.decision.as_ref().is_some_and(|d| d.approved);
            return if same { TicketChange::Nothing } else { TicketChange::Refused(already_decided(&ticket)) };
        }
        let decision = Decision { at: view.now, ..decision.clone() };
        let decided = Decided { action: body.action, decision, review: review.clone(), waybill: waybill.clone() };
        apply(&deps.common.store, &view, ticket, decided)
    })
    .await
    .map_err(change_failed)??;
    info!(actor = %who, ticket_id = %id, action = ?body.action, status = ?written.status, "ticket decision");
    Ok(json_response(StatusCode::OK, &ticket_view(&written, Audience::Staff)))
}

/// A decision as the request made it: the action, its record, the review reasons as scored
/// now, and the return waybill booked for an approval of goods.
struct Decided {
    action: Action,
    decision: Decision,
    review: Vec<crate::domain::ticket::ReviewReason>,
    waybill: Option<ReturnWaybill>,
}

/// The decision applied to the open ticket (or the approved return it ends).
fn apply(
    store: &crate::store::Store,
    view: &TicketView<'_>,
    mut ticket: Ticket,
    decided: Decided,
) -> TicketChange<Problem> {
    match (decided.action, ticket.kind) {
        (Action::Approve, TicketKind::RefundOnly) => {
            ticket.review = decided.review;
            ticket.decision = Some(decided.decision);
            close(store, view.view, ticket, Closure::Refunded, view.now)
        }
        (Action::Approve, kind) if kind.takes_goods_back() => {
            let Some(waybill) = decided.waybill else { return TicketChange::Refused(already_decided(&ticket)) };
            let mut extra = Vec::new();
            if kind == TicketKind::Exchange {
                ticket.replacement = replacement(view.view, &ticket);
                extra =
                    ticket.replacement.iter().map(|a| store.stock_move(a, "available", "reserved", view.now)).collect();
            }
            ticket.return_waybill = Some(waybill);
            ticket.status = TicketStatus::AwaitingReturn;
            ticket.review = decided.review;
            ticket.decision = Some(decided.decision);
            ticket.meet(crate::domain::ticket::SlaKind::FirstResponse, view.now);
            ticket.deadlines.push(return_deadline(view.now, view.policy.return_days));
            TicketChange::Change { ticket: Box::new(ticket), units: None, extra }
        }
        (Action::Reject, _) => {
            ticket.decision = Some(decided.decision);
            close(store, view.view, ticket, Closure::Rejected, view.now)
        }
        (Action::Respond, _) => {
            ticket.meet(crate::domain::ticket::SlaKind::FirstResponse, view.now);
            TicketChange::Change { ticket: Box::new(ticket), units: None, extra: Vec::new() }
        }
        (Action::Plan, TicketKind::Complaint) if ticket.major => {
            ticket.meet(crate::domain::ticket::SlaKind::Plan, view.now);
            TicketChange::Change { ticket: Box::new(ticket), units: None, extra: Vec::new() }
        }
        (Action::Answer, TicketKind::Complaint) => {
            ticket.decision = Some(decided.decision);
            close(store, view.view, ticket, Closure::Answered, view.now)
        }
        (Action::Escalate, TicketKind::Complaint) if !ticket.major => {
            ticket.major = true;
            ticket.deadlines = escalated(&ticket, view.policy);
            TicketChange::Change { ticket: Box::new(ticket), units: None, extra: Vec::new() }
        }
        (action, kind) => TicketChange::Refused(conflict(
            "action-not-for-ticket",
            format!("{action:?} does not apply to this {kind:?} ticket").to_lowercase(),
        )),
    }
}

/// The review reasons as of now, for a refund about to be approved.
async fn current_review(
    deps: &AfterSalesDeps,
    order: &crate::domain::Order,
    ticket: &Ticket,
) -> Result<Vec<crate::domain::ticket::ReviewReason>, Problem> {
    let now = deps.common.clock.now();
    let policy = deps.policy(now).await.map_err(store_problem)?;
    let amount = ticket.value_minor().unwrap_or(i64::MAX);
    super::review_reasons(deps, &policy, order, amount, now).await.map_err(store_problem)
}

fn already_decided(ticket: &Ticket) -> Problem {
    conflict("ticket-decided", format!("the ticket is {:?} already", ticket.status).to_uppercase())
}

/// A complaint made major keeps what it had promised and met, with the major hours counted from
/// its opening (so a late escalation may be due at once).
fn escalated(
    ticket: &Ticket,
    policy: &crate::domain::after_sales_policy::AfterSalesPolicy,
) -> Vec<crate::domain::ticket::Deadline> {
    let mut deadlines = opening_deadlines(ticket.kind, true, ticket.opened_at, policy.sla_hours());
    for deadline in &mut deadlines {
        if let Some(was) = ticket.deadlines.iter().find(|d| d.kind == deadline.kind) {
            deadline.met_at = was.met_at;
            deadline.breached_at = was.breached_at.filter(|at| *at >= deadline.due_at);
        }
    }
    deadlines
}

/// The exchange's replacement: the same units from the warehouse that sent them.
fn replacement(view: &crate::store::AfterSalesView, ticket: &Ticket) -> Vec<Allocation> {
    let Some(shipment) = view.parcel_of(ticket) else { return Vec::new() };
    ticket
        .lines
        .iter()
        .filter_map(|l| {
            Some(Allocation::new(l.sku.clone(), shipment.warehouse.clone(), Quantity::new(i64::from(l.quantity)).ok()?))
        })
        .collect()
}

/// The return waybill from the customer to the warehouse that sent the parcel, by its courier:
/// keyed by the ticket, so a retried approval books the same waybill.
async fn book_return(
    deps: &AfterSalesDeps,
    view: &crate::store::AfterSalesView,
    ticket: &Ticket,
) -> Result<ReturnWaybill, Problem> {
    let shipment = view.parcel_of(ticket);
    let shipment = shipment.ok_or_else(|| conflict("parcel-unknown", "the ticket's parcel is not in the table"))?;
    let courier = shipment.courier.as_ref().ok_or_else(|| conflict("no-courier", "the parcel had no courier"))?;
    if !shipment.is_delivered() {
        return Err(conflict("parcel-not-delivered", "the parcel is not delivered"));
    }
    // An exchange with no replacement to reserve books nothing (the reservation's condition
    // still decides a race; this answers the plain case before a waybill is booked).
    if ticket.kind == TicketKind::Exchange {
        for line in &ticket.lines {
            let stock = deps.common.store.stock_of(&line.sku).await.map_err(store_problem)?;
            let here = stock.iter().find(|s| s.warehouse_id == shipment.warehouse);
            // The replacement is reserved on the SKU's own item: while the SKU is split for a
            // sale, that item must have the units itself.
            let one_item = here.map_or(0, |s| s.available_by_shard.first().copied().unwrap_or(s.available));
            let here = here.map_or(0, |s| s.available);
            if one_item < i64::from(line.quantity) {
                let here =
                    if one_item < here { format!("{one_item} on its own item of {here}") } else { here.to_string() };
                return Err(conflict("replacement-out-of-stock", format!("{} has {here} available", line.sku)));
            }
        }
    }
    // The parcel's size: the returned units' weight and volume as the parcel's lines give them.
    let (mut weight_grams, mut volume_cm3) = (0u64, 0u64);
    for line in &ticket.lines {
        if let Some(shipped) = shipment.lines.iter().find(|s| s.sku == line.sku) {
            weight_grams += u64::from(shipped.weight_grams) * u64::from(line.quantity);
            volume_cm3 += u64::from(shipped.volume_cm3) * u64::from(line.quantity);
        }
    }
    let order =
        view.order.as_ref().ok_or_else(|| conflict("order-unknown", "the ticket's order is not in the table"))?;
    let booking = Booking {
        shipment_id: shipment.shipment_id.clone(),
        courier: courier.courier.clone(),
        speed: courier.speed,
        address: crate::handlers::booking::booking_address(&deps.sealer, order).await?,
        weight_grams,
        volume_cm3,
        insured_value_minor: None,
        return_for: Some(ticket.ticket_id.to_string()),
    };
    let waybill = deps.courier.book(&booking).await.map_err(crate::handlers::booking::courier_problem)?;
    Ok(ReturnWaybill { courier: courier.courier.clone(), number: waybill.number, label_url: waybill.label_url })
}
