//! How a ticket ends, whoever ends it: its units freed or kept as returned, an exchange's
//! reservation released, a refund fixed at what is left to give back and counted into the
//! customer's month. Staff decisions, QC and withdrawals all close through here.

use super::TicketChange;
use crate::domain::ticket::{Closure, Ticket, TicketRefund};
use crate::domain::{Order, PaymentMethod, Shipment};
use crate::handlers::conflict;
use crate::http::Problem;
use crate::store::{AfterSalesView, Store};
use aws_sdk_dynamodb::types::TransactWriteItem;
use time::OffsetDateTime;

/// `ticket` closed with `closure` at `now`, with everything that goes with it.
pub(super) fn close(
    store: &Store,
    view: &AfterSalesView,
    mut ticket: Ticket,
    closure: Closure,
    now: OffsetDateTime,
) -> TicketChange<Problem> {
    let mut units = view.units.clone();
    let mut extra: Vec<TransactWriteItem> = Vec::new();
    if ticket.kind.takes_units() {
        for line in &ticket.lines {
            if closure == Closure::Refunded || ticket.outbound.is_some() {
                units.keep_returned(line.sku.as_str(), line.quantity);
            } else {
                units.take(line.sku.as_str(), -i64::from(line.quantity));
            }
        }
    }
    // A replacement not shipped goes back on sale.
    if closure != Closure::Replaced {
        for allocation in &ticket.replacement {
            extra.push(store.stock_move(allocation, "reserved", "available", now));
        }
    }
    if closure == Closure::Refunded {
        let Some(order) = view.order.as_ref() else {
            return TicketChange::Refused(Problem::not_found("order"));
        };
        match refund_for(view, order, &ticket) {
            Ok(refund) => ticket.refund = Some(refund),
            Err(refused) => return TicketChange::Refused(refused),
        }
        extra.push(store.month_bump(order.customer_id.as_str(), "refunds", now));
    }
    ticket.close(closure, now);
    TicketChange::Change { ticket: Box::new(ticket), units: Some(units), extra }
}

/// The ticket's lines at the price paid, no more than the order has left to give back: online,
/// the payment less shortage refunds; cash on delivery, what the couriers collected; either
/// less other tickets' refunds and not-received claims' refunds and compensation.
fn refund_for(view: &AfterSalesView, order: &Order, ticket: &Ticket) -> Result<TicketRefund, Problem> {
    let value = ticket.value_minor().unwrap_or(i64::MAX);
    let brought_in = match order.payment_method {
        PaymentMethod::Online => crate::handlers::fulfilment::refund_due(order, &view.shipments),
        PaymentMethod::CashOnDelivery => view.shipments.iter().map(Shipment::collected_minor).sum(),
    };
    let tickets: i64 = view
        .tickets
        .iter()
        .filter(|t| t.ticket_id != ticket.ticket_id)
        .filter_map(|t| t.refund.as_ref())
        .map(|r| r.amount_minor)
        .sum();
    let claims: i64 = view.shipments.iter().filter_map(Shipment::claim_refund_minor).sum();
    let given_back = tickets.saturating_add(claims);
    let left = brought_in.saturating_sub(given_back);
    if left <= 0 {
        return Err(conflict("nothing-left-to-refund", "the order's payment has been given back already"));
    }
    Ok(TicketRefund {
        payment_id: order.payment_id.clone().unwrap_or_else(|| format!("cod:{}", order.order_id)),
        amount_minor: value.min(left),
        currency: order.currency.code().to_owned(),
    })
}
