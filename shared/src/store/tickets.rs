//! After-sales tickets in the table: each under its order (`ORDER#<id>` / `TICKET#nnn`), beside
//! the order's after-sales units (`ORDER#<id>` / `AFTERSALES`: which units open return or
//! exchange tickets have taken, which came back for good, how many tickets were opened), so one
//! query reads an order with its parcels and tickets, and one transaction opens or moves a
//! ticket together with the units it takes or frees.
//!
//! A ticket with a promise not yet kept waits in the `waiting-orders` index: bucket `SLA#nnn`
//! sorted by its next pending deadline (the SLA sweeper reads what is due), or `SLA#OVERDUE`
//! sorted by its oldest breached one once nothing else is pending. The staff queue reads both:
//! overdue first, then the pending by due time (a ticket with one deadline breached and another
//! still pending sorts by the pending one).

use super::waiting::{QUEUE, UNTIL};
use super::{from_item, n, s, to_item, Item, Store, StoreError};
use crate::domain::ticket::{Ticket, TicketId};
use crate::domain::{Order, OrderId, Shipment};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub const OVERDUE_BUCKET: &str = "SLA#OVERDUE";

fn sla_bucket(bucket: u32) -> String {
    format!("SLA#{bucket:03}")
}

fn ticket_key(id: &TicketId) -> (String, String) {
    (format!("ORDER#{}", id.order_id), format!("TICKET#{:03}", id.number))
}

pub(super) fn units_key(order: OrderId) -> (String, String) {
    (format!("ORDER#{order}"), "AFTERSALES".to_owned())
}

/// An order's after-sales units, per SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterSalesUnits {
    /// Units in open return, exchange, refund-only or repair tickets: a unit is in one at a time.
    #[serde(default)]
    pub taken: BTreeMap<String, u32>,
    /// Units that came back for good: refunded, or replaced or sent back after QC in a parcel
    /// of their own (whose delivery counts them again).
    #[serde(default)]
    pub returned: BTreeMap<String, u32>,
    /// Tickets opened on the order: the next one's number.
    #[serde(default)]
    pub tickets: u32,
    /// 0 before the first write; each write names the version it replaces.
    #[serde(default)]
    pub version: u64,
}

impl AfterSalesUnits {
    /// Units of `sku` no ticket has and none came back for good.
    pub fn free(&self, sku: &str, delivered: u32) -> u32 {
        let used = self.taken.get(sku).copied().unwrap_or(0) + self.returned.get(sku).copied().unwrap_or(0);
        delivered.saturating_sub(used)
    }

    /// `quantity` units of `sku` taken (positive) or freed (negative).
    pub fn take(&mut self, sku: &str, quantity: i64) {
        let entry = self.taken.entry(sku.to_owned()).or_insert(0);
        *entry = u32::try_from((i64::from(*entry) + quantity).max(0)).unwrap_or(u32::MAX);
        if *entry == 0 {
            self.taken.remove(sku);
        }
    }

    /// `quantity` units of `sku` came back for good.
    pub fn keep_returned(&mut self, sku: &str, quantity: u32) {
        self.take(sku, -i64::from(quantity));
        *self.returned.entry(sku.to_owned()).or_insert(0) += quantity;
    }
}

/// An order with everything after-sales decides on, as read together.
#[derive(Debug, Default)]
pub struct AfterSalesView {
    pub order: Option<Order>,
    pub shipments: Vec<Shipment>,
    pub tickets: Vec<Ticket>,
    pub units: AfterSalesUnits,
}

impl AfterSalesView {
    /// The parcel the ticket's goods came in.
    pub fn parcel_of(&self, ticket: &Ticket) -> Option<&Shipment> {
        self.shipments.iter().find(|s| Some(&s.shipment_id) == ticket.shipment_id.as_ref())
    }
}

impl Store {
    /// The order, its parcels, its tickets and its after-sales units: one consistent query.
    pub async fn after_sales_of(&self, order: OrderId) -> Result<AfterSalesView, StoreError> {
        let (pk, _) = units_key(order);
        let mut view = AfterSalesView::default();
        for item in self.query_raw(pk).await? {
            match item.get("entity").and_then(|e| e.as_s().ok()).map(String::as_str) {
                Some("Order") => view.order = Some(from_item(item, "order")?),
                Some("Shipment") => view.shipments.push(from_item(item, "shipment")?),
                Some("Ticket") => view.tickets.push(from_item(item, "ticket")?),
                Some("AfterSales") => view.units = from_item(item, "after-sales units")?,
                _ => {}
            }
        }
        view.tickets.sort_by_key(|t: &Ticket| t.ticket_id.number);
        Ok(view)
    }

    pub async fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        let (pk, sk) = ticket_key(id);
        self.get(pk, sk, "ticket").await
    }

    fn ticket_item(&self, ticket: &Ticket) -> Item {
        let (pk, sk) = ticket_key(&ticket.ticket_id);
        let mut item = to_item(ticket, pk, sk, "Ticket");
        let waiting = match (ticket.next_deadline(), ticket.nearest_unmet()) {
            (Some(next), _) => Some((sla_bucket(ticket.order_id.bucket(self.expiry_buckets)), next)),
            (None, Some(overdue)) if ticket.status != crate::domain::ticket::TicketStatus::Closed => {
                Some((OVERDUE_BUCKET.to_owned(), overdue))
            }
            _ => None,
        };
        if let Some((queue, until)) = waiting {
            item.insert(QUEUE.to_owned(), s(queue));
            item.insert(UNTIL.to_owned(), n(until.unix_timestamp()));
        }
        item
    }

    /// The put of a ticket: a new one must not exist; a changed one must still be at the
    /// version it was read at (`seen`), and is written one version on.
    pub fn put_ticket(&self, ticket: &mut Ticket, seen: Option<u64>) -> TransactWriteItem {
        let put = Put::builder().table_name(&self.table);
        let put = match seen {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(version) => {
                ticket.version = version + 1;
                put.condition_expression("version = :seen").expression_attribute_values(":seen", n(version))
            }
        };
        let put = put.set_item(Some(self.ticket_item(ticket))).build().expect("put has table and item");
        TransactWriteItem::builder().put(put).build()
    }

    /// The put of an order's after-sales units, on condition they are as read.
    pub fn put_after_sales_units(&self, order: OrderId, units: &mut AfterSalesUnits) -> TransactWriteItem {
        let seen = units.version;
        units.version = seen + 1;
        let (pk, sk) = units_key(order);
        let condition = if seen == 0 { "attribute_not_exists(PK)" } else { "version = :seen" };
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(units, pk, sk, "AfterSales")))
            .condition_expression(condition);
        if seen > 0 {
            put = put.expression_attribute_values(":seen", n(seen));
        }
        TransactWriteItem::builder().put(put.build().expect("put has table and item")).build()
    }

    /// Tickets of `bucket` with a pending deadline due by `now`, soonest first.
    pub async fn sla_due(&self, bucket: u32, now: OffsetDateTime, limit: i32) -> Result<Vec<Ticket>, StoreError> {
        self.waiting_page(sla_bucket(bucket), Some(now.unix_timestamp()), limit).await
    }

    /// Tickets waiting on staff, by their nearest unmet deadline: the breached ones first (oldest
    /// breach first), then the pending ones of every bucket merged by due time.
    pub async fn ticket_queue(&self, limit: usize) -> Result<Vec<Ticket>, StoreError> {
        let page = i32::try_from(limit).unwrap_or(i32::MAX);
        let mut queue: Vec<Ticket> = self.waiting_page(OVERDUE_BUCKET.to_owned(), None, page).await?;
        let mut pending = Vec::new();
        for bucket in 0..self.expiry_buckets {
            pending.extend(self.waiting_page::<Ticket>(sla_bucket(bucket), None, page).await?);
        }
        pending.sort_by_key(|t| (t.next_deadline(), t.ticket_id.clone()));
        queue.extend(pending);
        queue.truncate(limit);
        Ok(queue)
    }
}
