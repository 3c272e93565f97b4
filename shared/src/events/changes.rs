//! "This change means that event": the one place that turns a change of a table item (a stream
//! record with its old and new images) into the domain events it announces. The event relay
//! calls it for every record of the table's stream.
//!
//! Events are derived from the images rather than written as outbox items (docs/data-model.md
//! says why): a state change cannot forget its event, and costs no extra write.
//!
//! | item | change | event |
//! |---|---|---|
//! | order | created or moved to RECEIVED | OrderReceived |
//! | order | created FROZEN | OrderFlagged |
//! | order | RECEIVED → AWAITING_PAYMENT / AWAITING_REVIEW | StockReserved |
//! | order | → COD_APPROVED | CashOnDeliveryApproved (by policy from RECEIVED, else by staff) |
//! | order | leaves RECEIVED with payments parked on it | ParkedPaymentsDue (besides its own event) |
//! | order | → REJECTED | OrderRejected (stock short from RECEIVED, else risk review) |
//! | order | → CANCELLED | OrderCancelled (with what a held order released, and the status it left) |
//! | order | → EXPIRED | OrderExpired (with what went back) |
//! | order | → PAID | OrderPaid (late when it was EXPIRED or CANCELLED; the accepted amount) |
//! | order | → SHIPPED | OrderShipped |
//! | order | → DELIVERED / UNDELIVERED | OrderDelivered (with the last delivery's time) / OrderUndelivered |
//! | order | PAID → CANCELLED_AFTER_PAYMENT | OrderCancelled, and RefundRequested for what is still due |
//! | shipment | see [`super::shipment_changes`] | ShipmentCreated, ShortageDetected, ShipmentDispatched, … |
//! | payment inbox | stored | PaymentEventReceived (to payment processing) |
//! | courier inbox | stored | CourierPushReceived (to the tracking consumer) |
//! | payment inbox | resolved (from RECEIVED or PARKED) MISMATCHED | PaymentMismatch |
//! | payment inbox | resolved DUPLICATE_CHARGE / REFUND_REQUIRED | RefundRequested |
//! | payment inbox | MISMATCHED ruled REFUND_REQUIRED (staff, or a correct payment followed) | RefundRequested |
//! | refund | see [`super::refund_changes`] | RefundIssued, RefundDeclined, RefundRefused |
//! | ticket | see [`super::ticket_changes`] | TicketOpened, SlaBreached, TicketResolved, RefundRequested |
//!
//! Every other change (holds, stock, counters, configuration, a write that keeps the status)
//! announces nothing.

use super::{
    Announcement, ApprovedBy, CashOnDeliveryApproved, DomainEvent, OrderCancelled, OrderExpired, OrderFlagged,
    OrderPaid, OrderReceived, OrderRejected, ParkedPaymentsDue, PaymentMismatch, RefundRequested, RejectionReason,
    StockReserved,
};
use crate::domain::{Allocation, Order, OrderLine, OrderStatus};
use crate::store::{InboxStatus, PaymentRecord, Resolution};
use aws_lambda_events::event::dynamodb::EventRecord;
use serde::Deserialize;
use thiserror::Error;

/// What an order was before the change: only what its events need, read leniently, so that an
/// old image written by an earlier build cannot hide the change.
#[derive(Debug, Deserialize)]
struct OrderBefore {
    status: OrderStatus,
    #[serde(default)]
    lines: Vec<OrderLine>,
}

impl OrderBefore {
    /// What it held, if its status held stock.
    fn released(&self) -> Vec<Allocation> {
        if !self.status.holds_stock() {
            return Vec::new();
        }
        self.lines.iter().filter_map(crate::domain::OrderLine::allocation).collect()
    }
}

/// What a payment record was before the change.
#[derive(Debug, Deserialize)]
struct PaymentBefore {
    status: InboxStatus,
    #[serde(default)]
    resolution: Option<ResolutionKind>,
}

/// Only the kind of a resolution, read leniently.
#[derive(Debug, Deserialize)]
struct ResolutionKind {
    kind: String,
}

/// A record the relay cannot read: logged by its key and skipped.
#[derive(Debug, Error)]
pub enum UnmappableChange {
    #[error("the record carries neither image (the stream must be NEW_AND_OLD_IMAGES)")]
    NoImage,
    #[error("the {entity} item does not read as one: {reason}")]
    Corrupt { entity: &'static str, reason: String },
}

/// The events one stream record announces, in the order they happened.
pub fn announcements(record: &EventRecord) -> Result<Vec<Announcement>, UnmappableChange> {
    let (old, new) = (&record.change.old_image, &record.change.new_image);
    let image = if new.is_empty() { old } else { new };
    if image.is_empty() {
        return Err(UnmappableChange::NoImage);
    }
    let entity = match image.get("entity") {
        Some(serde_dynamo::AttributeValue::S(entity)) => entity.as_str(),
        _ => return Ok(Vec::new()),
    };
    match entity {
        "Order" => order_events(read(old, "order")?, read(new, "order")?),
        "Shipment" => Ok(super::shipment_changes::shipment_events(read(old, "shipment")?, read(new, "shipment")?)),
        "CourierPush" => Ok(courier_push_events(read(old, "courier push")?, read(new, "courier push")?)),
        "Refund" => Ok(super::refund_changes::refund_events(read(old, "refund")?, read(new, "refund")?)),
        "Ticket" => Ok(super::ticket_changes::ticket_events(read(old, "ticket")?, read(new, "ticket")?)),
        "Payment" => {
            Ok(payment_events(read(old, "payment record")?, read(new, "payment record")?)?.into_iter().collect())
        }
        _ => Ok(Vec::new()),
    }
}

/// An image as its type; `None` for the missing side of an insert or a removal.
fn read<T: serde::de::DeserializeOwned>(
    image: &serde_dynamo::Item,
    entity: &'static str,
) -> Result<Option<T>, UnmappableChange> {
    if image.is_empty() {
        return Ok(None);
    }
    serde_dynamo::from_item(image.clone())
        .map(Some)
        .map_err(|e| UnmappableChange::Corrupt { entity, reason: e.to_string() })
}

/// A courier's push is announced once, when it is stored.
fn courier_push_events(
    old: Option<super::logistics::CourierPush>,
    new: Option<super::logistics::CourierPush>,
) -> Vec<Announcement> {
    match (old, new) {
        (None, Some(push)) => {
            let key = format!("{}:{}", push.courier, push.event_id);
            vec![Announcement::of_payment(&key, DomainEvent::CourierPushReceived(push))]
        }
        _ => Vec::new(),
    }
}

fn corrupt(reason: &str) -> UnmappableChange {
    UnmappableChange::Corrupt { entity: "order", reason: reason.to_owned() }
}

fn order_events(old: Option<OrderBefore>, new: Option<Order>) -> Result<Vec<Announcement>, UnmappableChange> {
    let Some(new) = new else { return Ok(Vec::new()) };
    let before = old.as_ref().map(|o| o.status);
    if before == Some(new.status) {
        return Ok(Vec::new());
    }
    let id = new.order_id;
    let mut announced: Vec<Announcement> =
        status_event(old.as_ref(), &new)?.map(|e| Announcement::of_order(id, new.version, e)).into_iter().collect();
    // A paid order cancelled before hand-over: the payment, less what shortages refunded.
    if let (OrderStatus::CancelledAfterPayment, Some(due), Some(payment_id)) =
        (new.status, new.refund_due_minor, &new.payment_id)
    {
        if due > 0 {
            let refund = RefundRequested {
                order_id: id.to_string(),
                payment_id: payment_id.clone(),
                amount_minor: due,
                currency: new.currency.code().to_owned(),
                reason: "order cancelled before hand-over".to_owned(),
                lines: Vec::new(),
            };
            announced.push(Announcement::of_order(id, new.version, DomainEvent::RefundRequested(refund)));
        }
    }
    // Payments that came while the order waited for reservation are due now it has moved on.
    if before == Some(OrderStatus::Received) && !new.parked_payments.is_empty() {
        let due = ParkedPaymentsDue { order_id: id, payments: new.parked_payments.clone() };
        announced.push(Announcement::of_order(id, new.version, DomainEvent::ParkedPaymentsDue(due)));
    }
    Ok(announced)
}

/// The event of an order's move to `new.status`.
fn status_event(old: Option<&OrderBefore>, new: &Order) -> Result<Option<DomainEvent>, UnmappableChange> {
    let before = old.map(|o| o.status);
    // What a held order gave back when it left its hold (once it has shipments, their own
    // cancel events say what each returned).
    let released = || match new.shipments {
        Some(_) => Vec::new(),
        None => old.map(OrderBefore::released).unwrap_or_default(),
    };
    let id = new.order_id;
    Ok(Some(match new.status {
        OrderStatus::Received => DomainEvent::OrderReceived(OrderReceived::of(new)),
        OrderStatus::Frozen => {
            let (score, fired) = new.risk.as_ref().map(|r| (r.score, r.fired.clone())).unwrap_or_default();
            DomainEvent::OrderFlagged(OrderFlagged { order_id: id, customer_id: new.customer_id.clone(), score, fired })
        }
        OrderStatus::AwaitingPayment | OrderStatus::AwaitingReview => DomainEvent::StockReserved(StockReserved {
            order_id: id,
            allocations: new.reserved_allocations(),
            hold_expires_at: new.hold_expires_at.ok_or_else(|| corrupt("reserved without hold_expires_at"))?,
        }),
        OrderStatus::CodApproved => DomainEvent::CashOnDeliveryApproved(CashOnDeliveryApproved {
            order_id: id,
            allocations: new.reserved_allocations(),
            total_minor: new.total_minor,
            currency: new.currency,
            approved_by: if before == Some(OrderStatus::Received) { ApprovedBy::Policy } else { ApprovedBy::Staff },
        }),
        OrderStatus::Rejected => DomainEvent::OrderRejected(OrderRejected {
            order_id: id,
            reason: if before == Some(OrderStatus::Received) {
                RejectionReason::StockShort
            } else {
                RejectionReason::RiskReview
            },
            short_lines: new.short_lines.clone(),
        }),
        OrderStatus::Cancelled => {
            DomainEvent::OrderCancelled(OrderCancelled { order_id: id, released: released(), cancelled_from: before })
        }
        OrderStatus::CancelledAfterPayment => DomainEvent::OrderCancelled(OrderCancelled {
            order_id: id,
            cancelled_from: before,
            // Sold units went back: from the order's lines before shipments were made.
            released: if new.shipments.is_none() { new.reserved_allocations() } else { Vec::new() },
        }),
        OrderStatus::Shipped => DomainEvent::OrderShipped(super::fulfilment::OrderShipped { order_id: id }),
        OrderStatus::Delivered => DomainEvent::OrderDelivered(super::logistics::OrderDelivered {
            order_id: id,
            delivered_at: new.delivered_at.ok_or_else(|| corrupt("delivered without delivered_at"))?,
        }),
        OrderStatus::Archived => DomainEvent::OrderArchived(super::ticket_changes::OrderArchived {
            order_id: id,
            delivered_at: new.delivered_at.ok_or_else(|| corrupt("archived without delivered_at"))?,
            archived_at: new.archived_at.ok_or_else(|| corrupt("archived without archived_at"))?,
        }),
        OrderStatus::Undelivered => DomainEvent::OrderUndelivered(super::logistics::OrderUndelivered { order_id: id }),
        OrderStatus::Expired => DomainEvent::OrderExpired(OrderExpired { order_id: id, released: released() }),
        OrderStatus::Paid => DomainEvent::OrderPaid(OrderPaid {
            order_id: id,
            payment_id: new.payment_id.clone().ok_or_else(|| corrupt("paid without payment_id"))?,
            amount_minor: new.paid_minor.unwrap_or(new.total_minor),
            currency: new.currency,
            late: matches!(before, Some(OrderStatus::Expired | OrderStatus::Cancelled)),
        }),
        // Held by risk, or waiting on staff: the payment record announces payment trouble.
        OrderStatus::PendingVerification
        | OrderStatus::PendingReview
        | OrderStatus::PaymentMismatch
        | OrderStatus::RefundRequired => return Ok(None),
    }))
}

fn payment_events(
    old: Option<PaymentBefore>,
    new: Option<PaymentRecord>,
) -> Result<Option<Announcement>, UnmappableChange> {
    let Some(new) = new else { return Ok(None) };
    let provider_id = new.event.id.clone();
    let Some(old) = old else {
        return Ok(Some(Announcement::of_payment(&provider_id, DomainEvent::PaymentEventReceived(new.event))));
    };
    let resolved = old.status != InboxStatus::Processed && new.status == InboxStatus::Processed;
    // A ruling on a mismatched payment: only a refund is news (an accepted one pays the order,
    // which announces itself).
    let mismatch_ruled = old.resolution.as_ref().is_some_and(|r| r.kind == "MISMATCHED")
        && matches!(new.resolution, Some(Resolution::RefundRequired { .. }));
    if !resolved && !mismatch_ruled {
        return Ok(None);
    }
    let data = &new.event.data;
    let refund = |reason: &str| {
        DomainEvent::RefundRequested(RefundRequested {
            order_id: data.order_id.clone(),
            payment_id: data.payment_id.clone(),
            amount_minor: data.amount_minor,
            currency: data.currency.clone(),
            reason: reason.to_owned(),
            lines: Vec::new(),
        })
    };
    let event = match &new.resolution {
        Some(Resolution::Mismatched { expected_minor, expected_currency }) => {
            DomainEvent::PaymentMismatch(PaymentMismatch {
                order_id: new.event.order_id().ok_or_else(|| UnmappableChange::Corrupt {
                    entity: "payment record",
                    reason: "mismatched payment for an order id that does not parse".into(),
                })?,
                payment_id: data.payment_id.clone(),
                expected_minor: *expected_minor,
                expected_currency: expected_currency.clone(),
                received_minor: data.amount_minor,
                received_currency: data.currency.clone(),
            })
        }
        Some(Resolution::DuplicateCharge) => refund("duplicate charge: the order was paid by another payment"),
        Some(Resolution::RefundRequired { reason }) => refund(reason),
        _ => return Ok(None),
    };
    Ok(Some(Announcement::of_payment(&provider_id, event)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::dynamodb::Event;

    fn fixture(text: &str) -> Event {
        serde_json::from_str(text).expect("a DynamoDB stream event")
    }

    /// Every event the records announce: (detail-type, entity, event id), in stream order.
    fn announced(event: &Event) -> Vec<Announcement> {
        event.records.iter().flat_map(|r| announcements(r).expect("every record reads")).collect()
    }

    fn types(announcements: &[Announcement]) -> Vec<&'static str> {
        announcements.iter().map(Announcement::detail_type).collect()
    }

    #[test]
    fn an_orders_life_announces_each_status_change_once_with_what_it_moved() {
        let event = fixture(include_str!("../../../events/stream-order-lifecycle.json"));
        let all = announced(&event);
        assert_eq!(
            types(&all),
            [
                "OrderReceived",
                "StockReserved",
                "OrderReceived",
                "StockReserved",
                "OrderReceived",
                "StockReserved",
                "PaymentEventReceived",
                "OrderPaid",
                "OrderCancelled",
                "OrderExpired",
                "PaymentEventReceived",
                "OrderPaid",
                "OrderReceived",
                "OrderRejected",
            ],
            "warehouse, stock, idempotency, counter and hold records announce nothing"
        );
        let (a, b, c) = (&all[0].entity_id, &all[2].entity_id, &all[4].entity_id);
        assert_eq!(all[7].event_id, format!("OrderPaid:{a}:v3"));
        match (&all[7].event, &all[11].event) {
            (DomainEvent::OrderPaid(on_time), DomainEvent::OrderPaid(late)) => {
                assert!(!on_time.late && late.late, "paid after expiry is late");
                assert_eq!((on_time.amount_minor, on_time.payment_id.as_str()), (3980, "pay_a"));
                assert_eq!(&late.order_id.to_string(), c);
            }
            other => panic!("{other:?}"),
        }
        match &all[8].event {
            DomainEvent::OrderCancelled(cancelled) => {
                assert_eq!(&cancelled.order_id.to_string(), b);
                assert_eq!(cancelled.released.len(), 1, "a held order gives its units back");
                assert_eq!(cancelled.released[0].quantity.get(), 2);
            }
            other => panic!("{other:?}"),
        }
        match &all[13].event {
            DomainEvent::OrderRejected(rejected) => {
                assert_eq!(rejected.reason, RejectionReason::StockShort);
                assert_eq!(rejected.short_lines[0].requested, 50);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn payment_outcomes_and_risk_decisions_are_announced_from_their_records() {
        let event = fixture(include_str!("../../../events/stream-payments-and-risk.json"));
        let all = announced(&event);
        assert_eq!(
            types(&all),
            [
                "OrderReceived",
                "StockReserved",
                "OrderReceived",
                "StockReserved",
                "PaymentEventReceived",
                "PaymentMismatch",
                "PaymentEventReceived",
                "OrderPaid",
                "PaymentEventReceived",
                "RefundRequested",
                "PaymentEventReceived",
                "OrderFlagged",
                "OrderRejected",
            ],
            "an unknown order's payment is stored and resolved without a refund event; rule saves announce nothing"
        );
        match (&all[5].event, &all[9].event, &all[12].event) {
            (DomainEvent::PaymentMismatch(m), DomainEvent::RefundRequested(r), DomainEvent::OrderRejected(j)) => {
                assert_eq!((m.expected_minor, m.received_minor), (3980, 100));
                assert!(r.reason.contains("duplicate"), "{}", r.reason);
                assert_eq!(j.reason, RejectionReason::RiskReview, "rejected from FROZEN by staff");
            }
            other => panic!("{other:?}"),
        }
        assert!(all[5].event_id.starts_with("PaymentMismatch:evt_"), "{}", all[5].event_id);
        assert_eq!(all[4].entity_id, all[5].entity_id, "stored and resolved: the same provider event");
    }

    #[test]
    fn verified_approved_unheld_cash_on_delivery_late_after_cancel_refund_and_failed_paths() {
        let event = fixture(include_str!("../../../events/stream-order-other-paths.json"));
        let per_record: Vec<Vec<Announcement>> =
            event.records.iter().map(|r| announcements(r).expect("every record reads")).collect();
        let kinds: Vec<Vec<&str>> = per_record.iter().map(|a| types(a)).collect();
        let expected: [&[&str]; 28] = [
            &[],                       // 0 created PENDING_VERIFICATION: held by risk
            &["OrderReceived"],        // 1 verified
            &[],                       // 2 created PENDING_REVIEW
            &["OrderReceived"],        // 3 approved by staff
            &["OrderReceived"],        // 4
            &["OrderCancelled"],       // 5 cancelled before reservation
            &["OrderReceived"],        // 6 cash on delivery
            &["StockReserved"],        // 7 AWAITING_REVIEW
            &["OrderReceived"],        // 8
            &["StockReserved"],        // 9
            &["OrderReceived"],        // 10
            &["StockReserved"],        // 11
            &["OrderCancelled"],       // 12 cancelled while held
            &["PaymentEventReceived"], // 13
            &[],                       // 14 resolved LATE_PAID: the order announces it
            &["OrderPaid"],            // 15 CANCELLED -> PAID
            &["PaymentEventReceived"], // 16
            &[],                       // 17 resolved FAILED
            &[],                       // 18 the failure recorded, the status kept
            &["OrderReceived"],        // 19
            &["StockReserved"],        // 20
            &["OrderExpired"],         // 21
            &["OrderExpired"],         // 22
            &["OrderReceived"],        // 23
            &["StockReserved"],        // 24
            &["PaymentEventReceived"], // 25
            &["RefundRequested"],      // 26 resolved REFUND_REQUIRED
            &[],                       // 27 EXPIRED -> REFUND_REQUIRED: the payment announces it
        ];
        assert_eq!(kinds, expected.map(|k| k.to_vec()));
        let event_of = |i: usize| per_record[i][0].event.clone();
        match (event_of(5), event_of(12), event_of(15), event_of(21)) {
            (
                DomainEvent::OrderCancelled(unheld),
                DomainEvent::OrderCancelled(held),
                DomainEvent::OrderPaid(paid),
                DomainEvent::OrderExpired(expired),
            ) => {
                assert!(unheld.released.is_empty(), "nothing was held before reservation");
                assert_eq!(held.released.len(), 1);
                assert!(paid.late, "paid after a cancel is late");
                assert_eq!(expired.released[0].quantity.get(), 2, "what went back");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(per_record[1][0].version, Some(2), "verification is the order's second version");
    }

    #[test]
    fn a_write_that_keeps_the_status_or_removes_the_item_announces_nothing() {
        let event = fixture(include_str!("../../../events/stream-order-lifecycle.json"));
        let mut same = event.records[5].clone();
        same.change.old_image = same.change.new_image.clone();
        assert!(announcements(&same).unwrap().is_empty());
        let mut removed = event.records[5].clone();
        removed.event_name = "REMOVE".into();
        removed.change.old_image = std::mem::take(&mut removed.change.new_image);
        assert!(announcements(&removed).unwrap().is_empty());
    }

    #[test]
    fn an_unreadable_item_is_an_error_and_a_record_without_images_too() {
        let event = fixture(include_str!("../../../events/stream-unreadable-change.json"));
        let error = announcements(&event.records[0]).unwrap_err();
        assert!(matches!(error, UnmappableChange::Corrupt { entity: "order", .. }), "{error}");
        assert_eq!(types(&announcements(&event.records[1]).unwrap()), ["OrderReceived"]);
        let mut keys_only = event.records[1].clone();
        keys_only.change.new_image = Default::default();
        assert!(matches!(announcements(&keys_only), Err(UnmappableChange::NoImage)));
    }
}
