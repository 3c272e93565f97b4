//! What a change of a shipment item announces (the fulfilment rows of [`super::changes`]):
//!
//! | change | event |
//! |---|---|
//! | created | ShipmentCreated |
//! | → SHORTAGE | ShortageDetected |
//! | → HANDED_OVER | ShipmentDispatched |
//! | any other status change | ShipmentStatusChanged (a cancel with the units it returned) |
//! | a shortage refund added (any status) | RefundRequested for exactly those lines (paid online) |
//! | its tracking changed | see [`super::tracking_changes`] |

use super::fulfilment::{ShipmentCreated, ShipmentDispatched, ShipmentStatusChanged, ShippedLine, ShortageDetected};
use super::{Announcement, DomainEvent, RefundRequested};
use crate::domain::{Shipment, ShipmentStatus};

fn lines(shipment: &Shipment) -> Vec<ShippedLine> {
    shipment.lines.iter().map(|l| ShippedLine { sku: l.sku.clone(), quantity: l.quantity }).collect()
}

pub(super) fn shipment_events(old: Option<Shipment>, new: Option<Shipment>) -> Vec<Announcement> {
    let Some(new) = new else { return Vec::new() };
    let id = new.shipment_id.clone();
    let announce = |event| Announcement::of_shipment(&id, new.version, event);
    let mut announced = Vec::new();
    match &old {
        None => announced.push(announce(DomainEvent::ShipmentCreated(ShipmentCreated {
            shipment_id: id.clone(),
            order_id: new.order_id,
            warehouse: new.warehouse.clone(),
            lines: lines(&new),
            courier: new.courier.as_ref().map(|c| c.courier.clone()),
            parcel_type: new.parcel_type,
            dispatch_by: new.dispatch_by,
            needs_check: !new.check_reasons.is_empty(),
        }))),
        Some(old) if old.status != new.status => announced.push(announce(status_event(old, &new))),
        Some(_) => {}
    }
    let refunded_before = old.as_ref().map_or(0, |o| o.refunds.len());
    if let Some(payment_id) = &new.payment_id {
        for refund in new.refunds.iter().skip(refunded_before).filter(|r| r.amount_minor > 0) {
            let event = DomainEvent::RefundRequested(RefundRequested {
                order_id: new.order_id.to_string(),
                payment_id: payment_id.clone(),
                amount_minor: refund.amount_minor,
                currency: new.currency.code().to_owned(),
                reason: "units missing at picking".to_owned(),
                lines: refund.lines.clone(),
            });
            announced
                .push(Announcement { event_id: format!("RefundRequested:{}", refund.refund_id), ..announce(event) });
        }
    }
    announced.extend(super::tracking_changes::tracking_events(old.as_ref(), &new));
    announced
}

fn status_event(old: &Shipment, new: &Shipment) -> DomainEvent {
    match (new.status, &new.shortage, &new.courier, &new.waybill) {
        (ShipmentStatus::Shortage, Some(shortage), _, _) => DomainEvent::ShortageDetected(ShortageDetected {
            shipment_id: new.shipment_id.clone(),
            order_id: new.order_id,
            warehouse: new.warehouse.clone(),
            missing: shortage.missing.clone(),
            answer_by: shortage.answer_by,
        }),
        (ShipmentStatus::HandedOver, _, Some(courier), Some(waybill)) => {
            DomainEvent::ShipmentDispatched(ShipmentDispatched {
                shipment_id: new.shipment_id.clone(),
                order_id: new.order_id,
                warehouse: new.warehouse.clone(),
                courier: courier.courier.clone(),
                speed: courier.speed,
                waybill_number: waybill.number.clone(),
                insured: courier.insured,
                handed_over_at: new.tracking.as_ref().and_then(|t| t.handed_over_at).or(Some(new.updated_at)),
            })
        }
        _ => DomainEvent::ShipmentStatusChanged(ShipmentStatusChanged {
            shipment_id: new.shipment_id.clone(),
            order_id: new.order_id,
            warehouse: new.warehouse.clone(),
            from: old.status,
            to: new.status,
            returned: if new.status == ShipmentStatus::Cancelled { lines(new) } else { Vec::new() },
        }),
    }
}
