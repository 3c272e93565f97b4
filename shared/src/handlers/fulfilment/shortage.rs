//! A shortage answered: refund exactly the missing units (RefundRequested from the stream),
//! wait for them until a date (backorder), or exchange them for another SKU at the same price
//! from this warehouse or for the same SKU from another warehouse (stock taken at once). No
//! answer by `answer_by` applies the policy's default ([`sweep_due`]); a backorder whose date
//! came is picked again if the units are there, else refunded.

use super::routes::{conflict, json_body, shipment_in, store_problem, until_written};
use super::{change_of_one, plan, refund_due, units_counter, FulfilmentCore, FulfilmentDeps};
use crate::auth::Caller;
use crate::domain::fulfilment_policy::ShortageDefault;
use crate::domain::shipment::{MissingUnits, ShortageAnswer, ShortageRefund};
use crate::domain::{FulfilmentPolicy, Order, Shipment, ShipmentId, ShipmentStatus, Sku, WarehouseId};
use crate::http::{json_response, Problem};
use crate::store::{ShipmentWrite, StoreError};
use aws_sdk_dynamodb::types::TransactWriteItem;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;
use tracing::{info, warn};

/// Who answered a shortage the customer left unanswered.
const DEFAULT: &str = "default";

pub(super) async fn customer_answer(
    deps: &FulfilmentDeps,
    caller: &Caller,
    request: &Request,
    id: &ShipmentId,
) -> Result<Response<Body>, Problem> {
    let answer: ShortageAnswer = json_body(request)?;
    let answered = until_written(deps, || async {
        let (order, shipments) = deps.common.store.order_and_shipments(id.order_id).await.map_err(store_problem)?;
        let order = order
            .filter(|o| caller.may_act_on_order_of(&o.customer_id))
            .ok_or_else(|| Problem::not_found("shipment"))?;
        apply(deps, &order, &shipments, id, &answer, "customer").await
    })
    .await?;
    info!(shipment_id = %id, status = answered.status.as_str(), "shortage answered by the customer");
    Ok(json_response(StatusCode::OK, &crate::handlers::order_intake::ShipmentView::from(&answered)))
}

/// The writes of an answer to the shortage of `id`, committed; `None` when something moved.
async fn apply(
    deps: &FulfilmentCore,
    order: &Order,
    shipments: &[Shipment],
    id: &ShipmentId,
    answer: &ShortageAnswer,
    by: &str,
) -> Result<Option<Shipment>, Problem> {
    let store = &deps.common.store;
    let shipment = shipment_in(shipments, id)?;
    let Some(shortage) = shipment.shortage.as_ref().filter(|_| shipment.status == ShipmentStatus::Shortage) else {
        return Err(conflict("no-open-shortage", format!("the shipment is {}", shipment.status.as_str())));
    };
    let now = deps.common.clock.now();
    // The sweeper works from an index read a moment ago: on this fresh read, the shortage must
    // still be the one past its time (not one reopened since).
    if by == DEFAULT && shortage.answer_by > now {
        return Err(conflict("shortage-not-due", "the shortage's answer time has not come"));
    }
    let policy = deps.policy(now).await.map_err(store_problem)?;
    let mut changed = shipment.clone();
    changed.updated_at = now;
    if let Some(open) = changed.shortage.as_mut() {
        open.answer = Some(answer.clone());
        open.answered_by = Some(by.to_owned());
    }
    let mut extra = Vec::new();
    let mut order_written = false;
    match answer {
        ShortageAnswer::Refund => refund(&mut changed, &shortage.missing, refund_due(order, shipments)),
        ShortageAnswer::Wait { until } => {
            let latest = now.date() + time::Duration::days(i64::from(policy.backorder_max_days));
            if *until <= now.date() || *until > latest {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "backorder-date-invalid",
                    "Invalid date",
                    format!("a date after today and no later than {latest}"),
                )
                .with_field("until"));
            }
            changed.status = ShipmentStatus::Backordered;
            changed.backorder_until = Some(*until);
        }
        ShortageAnswer::Exchange { sku, warehouse } => {
            let exchange = Exchange { sku: sku.as_ref(), warehouse: warehouse.as_ref(), missing: &shortage.missing };
            (extra, order_written) = exchange.writes(deps, &policy, order, &mut changed, now).await?;
        }
    }
    let writes = change_of_one(store, order, shipments, &changed, extra, order_written, now);
    Ok(store.commit(writes).await.map_err(store_problem)?.then_some(changed))
}

/// Refund `missing`, never more than `left` of what was paid: recorded on the shipment
/// (announced once as RefundRequested when there is money to return); the shipment goes on with
/// what is left, packed, or is cancelled when nothing is.
fn refund(changed: &mut Shipment, missing: &[MissingUnits], left: i64) {
    let number = changed.refunds.len() + 1;
    let worth: i64 = missing.iter().map(|m| i64::from(m.missing).saturating_mul(m.unit_price_minor)).sum();
    changed.refunds.push(ShortageRefund {
        refund_id: format!("{}-r{number}", changed.shipment_id),
        lines: missing.to_vec(),
        amount_minor: worth.min(left).max(0),
    });
    changed.status = if changed.lines.is_empty() { ShipmentStatus::Cancelled } else { ShipmentStatus::Packed };
}

struct Exchange<'a> {
    sku: Option<&'a Sku>,
    warehouse: Option<&'a WarehouseId>,
    missing: &'a [MissingUnits],
}

impl Exchange<'_> {
    /// Take the replacement units from available now. Another SKU (one missing SKU, same unit
    /// price) joins this shipment, which is picked again; another warehouse gets a new shipment
    /// and this one goes on with what is left.
    async fn writes(
        &self,
        deps: &FulfilmentCore,
        policy: &FulfilmentPolicy,
        order: &Order,
        changed: &mut Shipment,
        now: OffsetDateTime,
    ) -> Result<(Vec<TransactWriteItem>, bool), Problem> {
        let store = &deps.common.store;
        let warehouse = self.warehouse.cloned().unwrap_or_else(|| changed.warehouse.clone());
        let replacement: Vec<(Sku, u32, i64)> = match self.sku {
            Some(sku) => {
                let [only] = self.missing else {
                    return Err(unprocessable(
                        "exchange-ambiguous",
                        "sku",
                        "another SKU replaces one missing SKU at a time",
                    ));
                };
                if sku == &only.sku && warehouse == changed.warehouse {
                    return Err(unprocessable(
                        "exchange-same-units",
                        "sku",
                        "the missing SKU from the same warehouse is what could not be found: name another SKU or warehouse",
                    ));
                }
                let item = store.catalogue_item(sku).await.map_err(store_problem)?;
                let price = item.and_then(|i| i.price_at(order.currency, now));
                if price != Some(only.unit_price_minor) {
                    return Err(unprocessable(
                        "exchange-price-differs",
                        "sku",
                        "the replacement must have the same unit price",
                    ));
                }
                vec![(sku.clone(), only.missing, only.unit_price_minor)]
            }
            None if warehouse == changed.warehouse => {
                return Err(unprocessable("exchange-same-units", "warehouse", "name another SKU or another warehouse"))
            }
            None => self.missing.iter().map(|m| (m.sku.clone(), m.missing, m.unit_price_minor)).collect(),
        };
        let skus: Vec<Sku> = replacement.iter().map(|(s, ..)| s.clone()).collect();
        let levels = store.shard_levels(&skus, std::slice::from_ref(&warehouse)).await.map_err(store_problem)?;
        let level = |sku: &Sku| levels.get(&(sku.clone(), warehouse.clone()));
        if let Some((sku, ..)) =
            replacement.iter().find(|(s, q, _)| level(s).and_then(|l| l.pick(i64::from(*q), 0)).is_none())
        {
            return Err(
                conflict("exchange-out-of-stock", format!("{warehouse} has not enough {sku}")).with_field("sku")
            );
        }
        let pairs: Vec<(Sku, WarehouseId)> = skus.iter().map(|s| (s.clone(), warehouse.clone())).collect();
        let facts = store.fulfilment_facts(&skus, &pairs).await.map_err(store_problem)?;
        let lines: Vec<_> =
            replacement.iter().map(|(s, q, p)| plan::line(&facts, &warehouse, s.clone(), *q, *p)).collect();
        let counter = units_counter(changed);
        let mut writes: Vec<TransactWriteItem> = replacement
            .iter()
            .map(|(sku, q, _)| store.stock_take((sku, &warehouse), *q, counter, level(sku), now))
            .collect();
        if warehouse == changed.warehouse {
            lines.into_iter().for_each(|line| changed.add_units(line));
            changed.back_to_picking(policy.dispatch_by(now));
            plan::refresh_decisions(changed, order, policy, &facts);
        } else {
            let number = order.shipments.unwrap_or(0) + 1;
            let mut new = plan::new_shipment(order, number, warehouse, lines, policy, &facts, now);
            // An after-sales parcel's units go on as one: prepaid, for the same ticket.
            (new.payment_method, new.for_ticket) = (changed.payment_method, changed.for_ticket.clone());
            writes.push(store.put_shipment(ShipmentWrite { shipment: &new, seen: None }));
            writes.push(store.order_shipment_count(order, number, now));
            changed.status = if changed.lines.is_empty() { ShipmentStatus::Cancelled } else { ShipmentStatus::Packed };
            return Ok((writes, true));
        }
        Ok((writes, false))
    }
}

fn unprocessable(code: &'static str, field: &str, detail: &str) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, "Exchange refused", detail).with_field(field)
}

/// The sweeper's share of fulfilment: shortages nobody answered in time get the policy's default;
/// backorders whose date came are picked again (units taken from available) or refunded.
/// Returns how many shipments it moved.
pub async fn sweep_due(deps: &FulfilmentCore, limit: i32) -> Result<usize, StoreError> {
    let store = &deps.common.store;
    let now = deps.common.clock.now();
    let policy = deps.policy(now).await?;
    let mut moved = 0;
    for bucket in 0..store.buckets() {
        for due in store.shipments_due(bucket, now, limit).await? {
            let answer = match (due.status, policy.shortage_default) {
                (ShipmentStatus::Shortage, ShortageDefault::Refund) => ShortageAnswer::Refund,
                (ShipmentStatus::Shortage, ShortageDefault::Wait) => ShortageAnswer::Wait {
                    until: now.date() + time::Duration::days(i64::from(policy.backorder_default_days)),
                },
                (ShipmentStatus::Backordered, _) => ShortageAnswer::Refund,
                _ => continue,
            };
            let outcome = until_written(deps, || async {
                let (order, shipments) = store.order_and_shipments(due.order_id).await.map_err(store_problem)?;
                let order = order.ok_or_else(|| Problem::not_found("order"))?;
                match due.status {
                    ShipmentStatus::Backordered => backorder_due(deps, &order, &shipments, &due.shipment_id).await,
                    _ => apply(deps, &order, &shipments, &due.shipment_id, &answer, DEFAULT).await,
                }
            })
            .await;
            match outcome {
                Ok(shipment) => {
                    moved += 1;
                    info!(shipment_id = %shipment.shipment_id, status = shipment.status.as_str(), "shortage settled by the sweeper");
                }
                Err(problem) => warn!(shipment_id = %due.shipment_id, code = problem.code, "shortage not settled"),
            }
        }
    }
    Ok(moved)
}

/// A backorder's date came: if the warehouse has the units now, take them and pick again;
/// otherwise refund them.
async fn backorder_due(
    deps: &FulfilmentCore,
    order: &Order,
    shipments: &[Shipment],
    id: &ShipmentId,
) -> Result<Option<Shipment>, Problem> {
    let store = &deps.common.store;
    let shipment = shipment_in(shipments, id)?;
    let missing = match (&shipment.shortage, shipment.status) {
        (Some(shortage), ShipmentStatus::Backordered) => shortage.missing.clone(),
        _ => return Err(conflict("not-backordered", format!("the shipment is {}", shipment.status.as_str()))),
    };
    let now = deps.common.clock.now();
    if shipment.backorder_until.is_some_and(|until| until > now.date()) {
        return Err(conflict("backorder-not-due", "the backorder's date has not come"));
    }
    let skus: Vec<Sku> = missing.iter().map(|m| m.sku.clone()).collect();
    let levels = store.shard_levels(&skus, std::slice::from_ref(&shipment.warehouse)).await.map_err(store_problem)?;
    let level = |sku: &Sku| levels.get(&(sku.clone(), shipment.warehouse.clone()));
    let there = missing.iter().all(|m| level(&m.sku).and_then(|l| l.pick(i64::from(m.missing), 0)).is_some());
    let mut changed = Shipment { updated_at: now, backorder_until: None, ..shipment.clone() };
    let mut extra = Vec::new();
    if there {
        let pairs: Vec<_> = skus.iter().map(|s| (s.clone(), shipment.warehouse.clone())).collect();
        let facts = store.fulfilment_facts(&skus, &pairs).await.map_err(store_problem)?;
        for m in &missing {
            let pair = (&m.sku, &shipment.warehouse);
            extra.push(store.stock_take(pair, m.missing, units_counter(shipment), level(&m.sku), now));
            changed.add_units(plan::line(&facts, &shipment.warehouse, m.sku.clone(), m.missing, m.unit_price_minor));
        }
        let policy = deps.policy(now).await.map_err(store_problem)?;
        changed.back_to_picking(policy.dispatch_by(now));
    } else {
        refund(&mut changed, &missing, refund_due(order, shipments));
    }
    let writes = change_of_one(store, order, shipments, &changed, extra, false, now);
    Ok(store.commit(writes).await.map_err(store_problem)?.then_some(changed))
}
