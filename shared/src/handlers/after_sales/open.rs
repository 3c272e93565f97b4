//! A customer opens a ticket on a delivered order: checked against the policy (the window from
//! delivery, category exclusions, evidence), its units taken so none is in two open tickets,
//! and a refund it may lead to scored for manual review. The ticket and the units are written
//! in one transaction on the units as read, so two tickets for the same unit cannot both open.

use super::routes::{store_problem, ticket_view, Audience};
use super::AfterSalesDeps;
use crate::auth::Caller;
use crate::domain::after_sales_policy::{AfterSalesPolicy, RequestedItem};
use crate::domain::ticket::{
    opening_deadlines, ReasonCode, Ticket, TicketId, TicketKind, TicketLine, TicketStatus, MAX_TICKETS_PER_ORDER,
};
use crate::domain::{ItemFlag, Order, OrderId, OrderStatus, ShipmentId, Sku};
use crate::handlers::{conflict, invalid, json_body};
use crate::http::{json_response, Problem};
use crate::store::AfterSalesView;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use std::collections::BTreeMap;
use tracing::info;

const MAX_TEXT_CHARS: usize = 2_000;
const MAX_PHOTOS: usize = 9;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenRequest {
    kind: TicketKind,
    reason: ReasonCode,
    #[serde(default)]
    text: String,
    /// The parcel the goods came in: needed when goods or money are asked for.
    #[serde(default)]
    shipment_id: Option<ShipmentId>,
    #[serde(default)]
    lines: Vec<LineRequest>,
    /// Keys of photos uploaded through `POST /orders/{id}/evidence`.
    #[serde(default)]
    evidence: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineRequest {
    sku: Sku,
    quantity: u32,
}

/// The object key a photo of the order's after-sales evidence is uploaded to.
pub fn evidence_key(order: OrderId) -> String {
    format!("{}{}.photo", evidence_prefix(order), ulid::Ulid::new())
}

fn evidence_prefix(order: OrderId) -> String {
    format!("aftersales/{order}/")
}

/// Photo keys named as evidence (the customer's, or the QC's) in `field`: at most
/// [`MAX_PHOTOS`], each one the evidence route handed out for this order.
pub(super) fn evidence_named(field: &str, order: OrderId, keys: &[String]) -> Result<(), Problem> {
    if keys.len() > MAX_PHOTOS {
        return Err(invalid(field, "too-many-photos", format!("at most {MAX_PHOTOS} photos")));
    }
    if !keys.iter().all(|k| is_evidence_key_of(order, k)) {
        return Err(invalid(field, "evidence-not-this-order", "photos uploaded for this order only"));
    }
    Ok(())
}

/// Whether `key` has the exact shape [`evidence_key`] gives for `order`: anything else is the
/// caller's mistake, refused before the store is asked (which would refuse it as a bad request).
fn is_evidence_key_of(order: OrderId, key: &str) -> bool {
    let photo = key.strip_prefix(&evidence_prefix(order)).and_then(|rest| rest.strip_suffix(".photo"));
    photo.is_some_and(|id| ulid::Ulid::from_string(id).is_ok())
}

/// Each named photo was uploaded and is one: an image of a sane size. The photos are checked
/// at once, so a slow store costs one check's time, not one per photo.
pub(super) async fn evidence_uploaded(deps: &AfterSalesDeps, field: &str, keys: &[String]) -> Result<(), Problem> {
    let checks = keys.iter().map(|key| async move {
        deps.photos.check(key).await.map_err(|e| match e {
            // The store did not answer: nothing is wrong with the photo, ask again later.
            crate::photos::PhotoError::Storage(_) => super::routes::unavailable(e),
            e => invalid(field, "evidence-not-a-photo", format!("{key}: {e}")),
        })
    });
    futures::future::try_join_all(checks).await?;
    Ok(())
}

pub async fn open_ticket(
    deps: &AfterSalesDeps,
    caller: &Caller,
    request: &Request,
    order_id: OrderId,
) -> Result<Response<Body>, Problem> {
    let body: OpenRequest = json_body(request)?;
    check_shape(&body, order_id)?;
    let store = &deps.common.store;
    for _ in 0..deps.max_attempts {
        let view = store.after_sales_of(order_id).await.map_err(store_problem)?;
        let order = view.order.as_ref().filter(|o| caller.may_act_on_order_of(&o.customer_id));
        let order = order.ok_or_else(|| Problem::not_found("order"))?;
        let now = deps.common.clock.now();
        let policy = deps.policy(now).await.map_err(store_problem)?;
        let lines = priced_lines(&view, &body)?;
        check_policy(deps, &policy, order, &body, &lines, now).await?;
        let mut units = view.units.clone();
        units.tickets += 1;
        if units.tickets > MAX_TICKETS_PER_ORDER {
            return Err(conflict("too-many-tickets", "this order has had as many tickets as it may"));
        }
        if body.kind.takes_units() {
            take_units(&view, &mut units, &lines)?;
        }
        let mut ticket = Ticket {
            ticket_id: TicketId { order_id, number: units.tickets },
            order_id,
            customer_id: order.customer_id.clone(),
            kind: body.kind,
            reason: body.reason,
            text: body.text.clone(),
            lines,
            evidence: body.evidence.clone(),
            major: false,
            status: TicketStatus::Open,
            closure: None,
            review: Vec::new(),
            risk_score: order.risk.as_ref().map(|r| r.score),
            shipment_id: body.shipment_id.clone(),
            deadlines: opening_deadlines(body.kind, false, now, policy.sla_hours()),
            decision: None,
            return_waybill: None,
            received_at: None,
            qc: None,
            refund: None,
            replacement: Vec::new(),
            outbound: None,
            opened_at: now,
            updated_at: now,
            version: 1,
        };
        if ticket.kind.may_refund() {
            let amount = ticket.value_minor().unwrap_or(i64::MAX);
            ticket.review = super::review_reasons(deps, &policy, order, amount, now).await.map_err(store_problem)?;
        }
        // The order still DELIVERED: a ticket never opens on an order archived meanwhile.
        let writes = vec![
            store.put_ticket(&mut ticket, None),
            store.put_after_sales_units(order_id, &mut units),
            store.order_unchanged(order),
        ];
        if store.write_all(writes).await.map_err(store_problem)? {
            info!(ticket_id = %ticket.ticket_id, kind = ?ticket.kind, review = ticket.review.len(), "ticket opened");
            return Ok(json_response(StatusCode::CREATED, &ticket_view(&ticket, Audience::Customer)));
        }
    }
    Err(crate::handlers::busy("order-busy", "the order's tickets kept changing while this one was opened; retry"))
}

/// What the request must be before anything is read.
fn check_shape(body: &OpenRequest, order_id: OrderId) -> Result<(), Problem> {
    if body.kind == TicketKind::NotReceived {
        return Err(conflict(
            "use-not-received-claim",
            "a parcel not received is claimed at POST /shipments/{id}/not-received, on the parcel",
        ));
    }
    if body.text.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid("text", "text-too-long", format!("at most {MAX_TEXT_CHARS} characters")));
    }
    evidence_named("evidence", order_id, &body.evidence)?;
    if body.kind == TicketKind::RefundOnly && body.reason.is_no_reason() {
        return Err(invalid("reason", "reason-required", "a refund without a return needs a quality reason"));
    }
    if body.kind == TicketKind::Complaint {
        return Ok(());
    }
    if body.shipment_id.as_ref().is_none_or(|s| s.order_id != order_id) {
        return Err(invalid("shipment_id", "shipment-required", "name the parcel of this order the goods came in"));
    }
    if body.lines.is_empty() || body.lines.iter().any(|l| l.quantity == 0) {
        return Err(invalid("lines", "lines-required", "name each SKU and how many units (at least one)"));
    }
    Ok(())
}

/// The requested lines at the price the parcel's lines were paid, from a delivered parcel.
fn priced_lines(view: &AfterSalesView, body: &OpenRequest) -> Result<Vec<TicketLine>, Problem> {
    let Some(id) = &body.shipment_id else { return Ok(Vec::new()) };
    let shipment = view.shipments.iter().find(|s| &s.shipment_id == id);
    let shipment = shipment.ok_or_else(|| invalid("shipment_id", "shipment-unknown", "no such parcel"))?;
    if !shipment.is_delivered() {
        return Err(conflict("parcel-not-delivered", "after-sales starts when the parcel is delivered"));
    }
    // A parcel claimed not received and settled with money: its goods were paid back already.
    if shipment.claim_refund_minor().is_some() {
        return Err(conflict("parcel-claim-refunded", "this parcel's not-received claim was settled with money"));
    }
    let mut merged: BTreeMap<&Sku, u32> = BTreeMap::new();
    for line in &body.lines {
        let units = merged.entry(&line.sku).or_insert(0);
        *units = units.saturating_add(line.quantity);
    }
    merged
        .into_iter()
        .map(|(sku, quantity)| {
            let shipped = shipment.lines.iter().find(|l| &l.sku == sku);
            let shipped =
                shipped.ok_or_else(|| invalid("lines", "sku-not-in-parcel", format!("{sku} is not in it")))?;
            if quantity > shipped.quantity {
                return Err(invalid("lines", "more-than-delivered", format!("{sku}: {} delivered", shipped.quantity)));
            }
            Ok(TicketLine { sku: sku.clone(), quantity, unit_price_minor: shipped.unit_price_minor })
        })
        .collect()
}

/// Take the lines' units for this ticket: refused when a unit is already in an open ticket or
/// came back for good.
fn take_units(
    view: &AfterSalesView,
    units: &mut crate::store::AfterSalesUnits,
    lines: &[TicketLine],
) -> Result<(), Problem> {
    for line in lines {
        let delivered: u32 = view
            .shipments
            .iter()
            .filter(|s| s.is_delivered())
            .flat_map(|s| s.lines.iter().filter(|l| l.sku == line.sku))
            .map(|l| l.quantity)
            .sum();
        if line.quantity > units.free(line.sku.as_str(), delivered) {
            return Err(conflict(
                "units-in-another-ticket",
                format!("{} unit(s) of {} are already in an open ticket or returned", line.quantity, line.sku),
            ));
        }
        units.take(line.sku.as_str(), i64::from(line.quantity));
    }
    Ok(())
}

/// The policy's rules for this request, with the evidence checked to be real photos.
async fn check_policy(
    deps: &AfterSalesDeps,
    policy: &AfterSalesPolicy,
    order: &Order,
    body: &OpenRequest,
    lines: &[TicketLine],
    now: time::OffsetDateTime,
) -> Result<(), Problem> {
    if order.status == OrderStatus::Archived {
        return Err(conflict("after-sales-ended", "the order's after-sales window passed and it was archived"));
    }
    let delivered_at = order
        .delivered_at
        .filter(|_| order.status == OrderStatus::Delivered)
        .ok_or_else(|| conflict("order-not-delivered", "after-sales starts when the order is delivered"))?;
    evidence_uploaded(deps, "evidence", &body.evidence).await?;
    let mut catalogue = Vec::new();
    for line in lines {
        let item = deps.common.store.catalogue_item(&line.sku).await.map_err(store_problem)?;
        catalogue.push((line.sku.clone(), item));
    }
    let items: Vec<RequestedItem<'_>> = catalogue
        .iter()
        .map(|(sku, item)| RequestedItem {
            sku: sku.as_str(),
            category: item.as_ref().map_or("", |i| i.category.as_str()),
            no_reason_excluded: item.as_ref().is_some_and(|i| i.flags.contains(&ItemFlag::NoReasonReturnExcluded)),
        })
        .collect();
    // A complaint about service needs no photo; it is still taken within the quality window.
    let evidence = if body.kind == TicketKind::Complaint { body.evidence.len().max(1) } else { body.evidence.len() };
    policy.check(delivered_at, now, body.reason.is_no_reason(), &items, evidence).map_err(|refusal| {
        let field = match refusal.rule {
            "category-excluded" => "lines",
            "evidence-required" | "resale-evidence-required" => "evidence",
            _ => "reason",
        };
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, refusal.rule, "Outside the after-sales policy", refusal.detail)
            .with_field(field)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_the_upload_route_hands_out_for_the_order_are_evidence() {
        let order = OrderId::generate();
        let handed_out = evidence_key(order);
        assert!(evidence_named("photos", order, std::slice::from_ref(&handed_out)).is_ok());
        let refused = [
            evidence_key(OrderId::generate()),
            format!("{}x", handed_out),
            format!("aftersales/{order}/{}.photo", "A".repeat(3000)),
            format!("aftersales/{order}/../{order}/01ARZ3NDEKTSV4RRFFQ69G5FAV.photo"),
            format!("aftersales/{order}/01ARZ3NDEKTSV4RRFFQ69G5FAV/x.photo"),
        ];
        for key in refused {
            let problem = evidence_named("photos", order, &[handed_out.clone(), key.clone()]).unwrap_err();
            assert_eq!(problem.code, "evidence-not-this-order", "{key}");
        }
    }
}
