//! Logistics in the table: the couriers' push inbox (`COURIERPUSH#<courier>#<event id>`), the
//! waybill → shipment links the pushes are matched by, the open-alert list staff read
//! (`ALERTS#OPEN`, by when raised), couriers' monthly counters (`COURIERKPI#<month>` /
//! `COURIER#<id>`, each event counted once through a `COUNTED#<event id>` marker in the same
//! transaction), the month-end review marker, and each courier's daily poll budget. A parcel's
//! tracking itself is part of its shipment item, indexed in `TRACK#nnn` by its next check.

use super::orders::{one, status, timestamp, NEXT_VERSION};
use super::waiting::{QUEUE, UNTIL};
use super::{from_item, key, keys, n, s, to_item, Once, Store, StoreError};
use crate::domain::logistics_policy::CourierMonth;
use crate::domain::tracking::{AlertKind, Tracking};
use crate::domain::{CourierId, Order, OrderId, OrderStatus, Shipment, ShipmentId};
use crate::events::logistics::CourierPush;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Pushes are kept a month: long after any courier retries one.
const PUSH_RETENTION: time::Duration = time::Duration::days(30);
/// Counted-event markers outlive any redelivery of the event.
const COUNTED_RETENTION: time::Duration = time::Duration::days(40);
/// Attempts at the month's counters before the event goes back to its queue for a later retry.
const COUNT_ATTEMPTS: usize = 8;

/// An alert on the staff list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAlert {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub courier: CourierId,
    pub waybill_number: String,
    pub alert_id: String,
    pub kind: AlertKind,
    #[serde(with = "time::serde::rfc3339")]
    pub raised_at: OffsetDateTime,
}

/// What a courier's poll budget allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollBudget {
    pub granted: u32,
    pub used_today: u32,
}

#[derive(Deserialize)]
struct Link {
    shipment_id: ShipmentId,
}

#[derive(Deserialize)]
struct Used {
    #[serde(default)]
    used: u32,
}

impl Store {
    /// Store a verified push once: false when the courier sent this event before.
    pub async fn record_courier_push(&self, push: &CourierPush) -> Result<bool, StoreError> {
        let (pk, sk) = keys::courier_push(&push.courier, &push.event_id);
        let mut item = to_item(push, pk, sk, "CourierPush");
        item.insert("ttl".into(), n((push.received_at + PUSH_RETENTION).unix_timestamp()));
        self.create(item).await
    }

    /// The link from a courier's waybill to its shipment, written with the booking.
    pub fn link_waybill(&self, courier: &CourierId, number: &str, shipment: &ShipmentId) -> TransactWriteItem {
        let (pk, sk) = keys::waybill(courier, number);
        let mut item = key(pk, sk);
        item.insert("shipment_id".into(), s(shipment.to_string()));
        item.insert("entity".into(), s("WaybillLink"));
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().expect("put has table and item");
        TransactWriteItem::builder().put(put).build()
    }

    pub async fn shipment_of_waybill(
        &self,
        courier: &CourierId,
        number: &str,
    ) -> Result<Option<ShipmentId>, StoreError> {
        let (pk, sk) = keys::waybill(courier, number);
        Ok(self.get::<Link>(pk, sk, "waybill link").await?.map(|l| l.shipment_id))
    }

    /// Parcels in `bucket` whose next check is due by `now`, soonest first.
    pub async fn parcels_due(&self, bucket: u32, now: OffsetDateTime, limit: i32) -> Result<Vec<Shipment>, StoreError> {
        self.waiting_page(keys::tracking_bucket(bucket), Some(now.unix_timestamp()), limit).await
    }

    /// The staff list follows the parcel: alerts newly raised go on it, those cleared come off,
    /// in the parcel's own transaction.
    pub fn open_alert_writes(&self, before: Option<&Tracking>, after: &Shipment) -> Vec<TransactWriteItem> {
        let (Some(tracking), Some(courier), Some(waybill)) = (&after.tracking, &after.courier, &after.waybill) else {
            return Vec::new();
        };
        let was_open = |id: &str| before.is_some_and(|t| t.alerts.iter().any(|a| a.id == id && a.cleared_at.is_none()));
        let mut writes = Vec::new();
        for alert in &tracking.alerts {
            let (pk, sk) = keys::open_alert(alert.raised_at.unix_timestamp(), &after.shipment_id, &alert.id);
            match (alert.cleared_at.is_none(), was_open(&alert.id)) {
                (true, false) => {
                    let open = OpenAlert {
                        shipment_id: after.shipment_id.clone(),
                        order_id: after.order_id,
                        courier: courier.courier.clone(),
                        waybill_number: waybill.number.clone(),
                        alert_id: alert.id.clone(),
                        kind: alert.kind,
                        raised_at: alert.raised_at,
                    };
                    let put =
                        Put::builder().table_name(&self.table).set_item(Some(to_item(&open, pk, sk, "OpenAlert")));
                    writes.push(TransactWriteItem::builder().put(put.build().expect("put has table and item")).build());
                }
                (false, true) => {
                    let delete = Delete::builder().table_name(&self.table).set_key(Some(key(pk, sk)));
                    writes.push(TransactWriteItem::builder().delete(delete.build().expect("delete has key")).build());
                }
                _ => {}
            }
        }
        writes
    }

    /// How many alerts are open now: the count of their partition, which holds exactly them
    /// (each is put and deleted in its parcel's own transaction).
    pub async fn open_alerts_count(&self) -> Result<i64, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::OPEN_ALERTS_PARTITION))
            .consistent_read(true);
        Self::count_of(query).await
    }

    /// Open alerts, oldest first: up to `limit`, after the `after` cursor (a sort key).
    pub async fn open_alerts(
        &self,
        limit: i32,
        after: Option<String>,
    ) -> Result<(Vec<OpenAlert>, Option<String>), StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::OPEN_ALERTS_PARTITION))
            .limit(limit);
        if let Some(sk) = after {
            query = query.set_exclusive_start_key(Some(key(keys::OPEN_ALERTS_PARTITION.to_owned(), sk)));
        }
        let output = query.send().await.map_err(StoreError::aws)?;
        let next = output.last_evaluated_key.and_then(|k| k.get("SK")?.as_s().ok().cloned());
        let alerts: Result<Vec<OpenAlert>, _> =
            output.items.unwrap_or_default().into_iter().map(|i| from_item(i, "open alert")).collect();
        Ok((alerts?, next))
    }

    /// The order's delivery ended (DELIVERED, with when; or UNDELIVERED), conditional on the
    /// status it was read in.
    pub fn order_delivery_ends(
        &self,
        order: &Order,
        next: OrderStatus,
        delivered_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let mut update = self
            .update(keys::order(order.order_id))
            .condition_expression("#status = :seen")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":next", status(next))
            .expression_attribute_values(":seen", status(order.status))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one());
        update = match delivered_at {
            // Delivered: the order waits for its after-sales to end (see `archive`).
            Some(at) => {
                let (queue, until) = super::archive::archive_entry(order.order_id, self.expiry_buckets, at);
                update
                    .update_expression(format!(
                        "SET #status = :next, delivered_at = :at, updated_at = :now, {QUEUE} = :queue, {UNTIL} = :until {NEXT_VERSION}"
                    ))
                    .expression_attribute_values(":at", timestamp(at))
                    .expression_attribute_values(":queue", s(queue))
                    .expression_attribute_values(":until", n(until))
            }
            None => update.update_expression(format!("SET #status = :next, updated_at = :now {NEXT_VERSION}")),
        };
        TransactWriteItem::builder().update(update.build().expect("update has table, key and expression")).build()
    }

    /// Cash a courier collected for a cash-on-delivery order: added to what it has been paid,
    /// with `fully_paid_at` when that reaches its total; conditional on the version read.
    pub fn order_cash_collected(
        &self,
        order: &Order,
        amount_minor: i64,
        fully_paid_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let paid = order.paid_minor.unwrap_or(0).saturating_add(amount_minor);
        let mut update = self
            .update(keys::order(order.order_id))
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", n(order.version))
            .expression_attribute_values(":paid", n(paid))
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", one());
        update = match fully_paid_at {
            Some(at) => update
                .update_expression(format!(
                    "SET paid_minor = :paid, cash_collected_at = :at, updated_at = :now {NEXT_VERSION}"
                ))
                .expression_attribute_values(":at", timestamp(at)),
            None => update.update_expression(format!("SET paid_minor = :paid, updated_at = :now {NEXT_VERSION}")),
        };
        TransactWriteItem::builder().update(update.build().expect("update has table, key and expression")).build()
    }

    /// Add `counts` to a courier's month, once per `event_id`: false when it was counted before.
    pub async fn count_for_courier(
        &self,
        event_id: &str,
        courier: &CourierId,
        month: &str,
        counts: &[(&str, u64)],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let adds: Vec<String> = counts.iter().enumerate().map(|(i, (field, _))| format!("{field} :c{i}")).collect();
        let mut update = self
            .update(keys::courier_month(month, courier))
            .update_expression(format!(
                "SET courier = :courier, #month = :month, #entity = :entity ADD {}",
                adds.join(", ")
            ))
            .expression_attribute_names("#month", "month")
            .expression_attribute_names("#entity", "entity")
            .expression_attribute_values(":courier", s(courier.as_str()))
            .expression_attribute_values(":month", s(month))
            .expression_attribute_values(":entity", s("CourierMonth"));
        for (i, (_, by)) in counts.iter().enumerate() {
            update = update.expression_attribute_values(format!(":c{i}"), n(by));
        }
        let update = update.build().expect("update has table, key and expression");
        for attempt in 0..COUNT_ATTEMPTS {
            match self.apply_once(keys::counted_event(event_id), now + COUNTED_RETENTION, update.clone()).await? {
                Once::Applied => return Ok(true),
                Once::Before => return Ok(false),
                Once::Contended => {}
            }
            // Many messages count into one courier's month at once: back off, with jitter so
            // the writers that collided do not collide again.
            let ceiling = 10u64 << attempt.min(6);
            tokio::time::sleep(std::time::Duration::from_millis(ceiling / 2 + crate::clock::jitter_below(ceiling / 2)))
                .await;
        }
        Err(StoreError::Aws(format!("courier counters for {month} stayed contended; the event is retried")))
    }

    /// Every courier's counters for `month` (one query of the month's partition).
    pub async fn courier_months(&self, month: &str) -> Result<Vec<CourierMonth>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::courier_month_partition(month)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::aws)?;
        output.items.unwrap_or_default().into_iter().map(|i| from_item(i, "courier month")).collect()
    }

    /// Record that `month` was reviewed (and whom it suspended): false when it was before.
    pub async fn record_kpi_review(
        &self,
        month: &str,
        suspended: &[CourierId],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = keys::kpi_review(month);
        let mut item = key(pk, sk);
        item.insert("suspended".into(), super::attr(&suspended));
        item.insert("reviewed_at".into(), timestamp(now));
        self.create(item).await
    }

    pub async fn kpi_reviewed(&self, month: &str) -> Result<bool, StoreError> {
        let (pk, sk) = keys::kpi_review(month);
        Ok(self.get::<serde_json::Value>(pk, sk, "kpi review").await?.is_some())
    }

    /// Take up to `wanted` of the courier's polls for `day`, never past `per_day`.
    pub async fn claim_polls(
        &self,
        courier: &CourierId,
        day: &str,
        wanted: u32,
        per_day: u32,
        now: OffsetDateTime,
    ) -> Result<PollBudget, StoreError> {
        let (pk, sk) = keys::poll_budget(courier, day);
        for _ in 0..5 {
            let used = self.get::<Used>(pk.clone(), sk.clone(), "poll budget").await?.map_or(0, |u| u.used);
            let granted = wanted.min(per_day.saturating_sub(used));
            if granted == 0 {
                return Ok(PollBudget { granted, used_today: used });
            }
            let condition = if used == 0 { "attribute_not_exists(used) OR used = :seen" } else { "used = :seen" };
            let applied = self
                .update_if(
                    (pk.clone(), sk.clone()),
                    "SET used = :next, #ttl = :ttl",
                    condition,
                    &[("#ttl", "ttl")],
                    vec![
                        (":seen", n(used)),
                        (":next", n(used + granted)),
                        (":ttl", n((now + time::Duration::days(3)).unix_timestamp())),
                    ],
                )
                .await?;
            if applied {
                return Ok(PollBudget { granted, used_today: used + granted });
            }
        }
        Ok(PollBudget { granted: 0, used_today: per_day })
    }
}
