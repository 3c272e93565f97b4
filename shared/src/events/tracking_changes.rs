//! What a change of a shipment's tracking announces (the logistics rows of [`super::changes`]):
//!
//! | change of `tracking` | event |
//! |---|---|
//! | new checkpoints | TrackingUpdated (the status they add up to) |
//! | became DELIVERED, LOST or RETURNED_TO_SENDER | ParcelDeliveryEnded (on time or not) |
//! | an alert raised | ParcelStuck (id `ParcelStuck:<shipment>:<alert id>`: once per alert) |
//! | an alert cleared | ParcelAlertCleared |
//! | a claim opened | NotReceivedClaimOpened |
//! | a claim resolved | NotReceivedClaimResolved, and RefundRequested for a refund or compensation |
//! | cash collected | CashCollected |

use super::logistics::{
    CashCollected, NotReceivedClaimOpened, NotReceivedClaimResolved, ParcelAlertCleared, ParcelDeliveryEnded,
    ParcelRef, ParcelStuck, TrackingUpdated,
};
use super::{Announcement, DomainEvent, RefundRequested};
use crate::domain::tracking::Tracking;
use crate::domain::Shipment;

pub(super) fn tracking_events(old: Option<&Shipment>, new: &Shipment) -> Vec<Announcement> {
    let (Some(tracking), Some(courier), Some(waybill)) = (&new.tracking, &new.courier, &new.waybill) else {
        return Vec::new();
    };
    let empty = Tracking::default();
    let before = old.and_then(|o| o.tracking.as_ref()).unwrap_or(&empty);
    let parcel = ParcelRef {
        shipment_id: new.shipment_id.clone(),
        order_id: new.order_id,
        courier: courier.courier.clone(),
        waybill_number: waybill.number.clone(),
    };
    let id = &new.shipment_id;
    let versioned = |event| Announcement::of_shipment(id, new.version, event);
    let keyed = |key: &str, event: DomainEvent| Announcement {
        event_id: format!("{}:{id}:{key}", event.detail_type()),
        ..Announcement::of_shipment(id, new.version, event)
    };
    let mut announced = Vec::new();
    if tracking.checkpoints != before.checkpoints {
        if let (Some(status), Some(latest)) = (tracking.status, tracking.checkpoints.last()) {
            announced.push(versioned(DomainEvent::TrackingUpdated(TrackingUpdated {
                parcel: parcel.clone(),
                status,
                raw_code: tracking.raw_code.clone().unwrap_or_default(),
                latest_at: latest.at,
            })));
        }
    }
    if let Some(status) = tracking.status.filter(|s| s.is_final() && before.status != Some(*s)) {
        let at = tracking.delivered_at.or(tracking.last_update_at()).unwrap_or(new.updated_at);
        let on_time = tracking.delivered_at.zip(tracking.promised_by).is_some_and(|(d, p)| d <= p);
        let ended = ParcelDeliveryEnded { parcel: parcel.clone(), status, at, on_time };
        announced.push(keyed(&format!("{status:?}"), DomainEvent::ParcelDeliveryEnded(ended)));
    }
    for alert in &tracking.alerts {
        let was = before.alerts.iter().find(|a| a.id == alert.id);
        if was.is_none() {
            let stuck = ParcelStuck {
                parcel: parcel.clone(),
                alert_id: alert.id.clone(),
                kind: alert.kind,
                raised_at: alert.raised_at,
            };
            announced.push(keyed(&alert.id, DomainEvent::ParcelStuck(stuck)));
        }
        if let (Some(cleared_at), None) = (alert.cleared_at, was.and_then(|a| a.cleared_at)) {
            let cleared =
                ParcelAlertCleared { parcel: parcel.clone(), alert_id: alert.id.clone(), kind: alert.kind, cleared_at };
            announced.push(keyed(&alert.id, DomainEvent::ParcelAlertCleared(cleared)));
        }
    }
    if let Some(claim) = &tracking.claim {
        let was = before.claim.as_ref().filter(|c| c.claim_id == claim.claim_id);
        if was.is_none() {
            let opened = NotReceivedClaimOpened {
                parcel: parcel.clone(),
                claim_id: claim.claim_id.clone(),
                opened_at: claim.opened_at,
                resolve_by: claim.resolve_by,
            };
            announced.push(keyed(&claim.claim_id, DomainEvent::NotReceivedClaimOpened(opened)));
        }
        if let (Some(resolution), None) = (claim.resolution, was.and_then(|c| c.resolution)) {
            let resolved =
                NotReceivedClaimResolved { parcel: parcel.clone(), claim_id: claim.claim_id.clone(), resolution };
            announced.push(keyed(&claim.claim_id, DomainEvent::NotReceivedClaimResolved(resolved)));
            if let Some(amount_minor) = resolution.amount_minor() {
                let refund = RefundRequested {
                    order_id: new.order_id.to_string(),
                    payment_id: new.payment_id.clone().unwrap_or_else(|| format!("cod:{}", new.order_id)),
                    amount_minor,
                    currency: new.currency.code().to_owned(),
                    reason: format!("not-received claim {}", claim.claim_id),
                    lines: Vec::new(),
                };
                announced.push(Announcement {
                    event_id: format!("RefundRequested:{id}:{}", claim.claim_id),
                    ..versioned(DomainEvent::RefundRequested(refund))
                });
            }
        }
    }
    if let (Some(collection), None) = (&tracking.collection, &before.collection) {
        let collected = CashCollected {
            parcel,
            report_id: collection.report_id.clone(),
            amount_minor: collection.amount_minor,
            currency: new.currency,
            expected_minor: new.value_minor(),
        };
        announced.push(keyed(&collection.report_id, DomainEvent::CashCollected(collected)));
    }
    announced
}
