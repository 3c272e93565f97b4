//! The shipments of an order: one per warehouse its lines were allocated to, each with what
//! picking, checking and courier choice need copied onto it (barcodes, sizes, bins, the courier
//! and why, whether a second person must check it), so that no later step reads the catalogue.

use crate::domain::fulfilment_policy::Parcel;
use crate::domain::shipment::{ParcelType, ShipmentLine};
use crate::domain::{FulfilmentPolicy, ItemFlag, Order, Shipment, ShipmentId, ShipmentStatus, Sku, WarehouseId};
use crate::store::{FulfilmentFacts, Store, StoreError};
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub(super) async fn shipments_for(
    store: &Store,
    order: &Order,
    policy: &FulfilmentPolicy,
    now: OffsetDateTime,
) -> Result<Vec<Shipment>, StoreError> {
    let mut by_warehouse: BTreeMap<WarehouseId, Vec<(Sku, u32, i64)>> = BTreeMap::new();
    for line in &order.lines {
        let Some(warehouse) = &line.warehouse else { continue };
        by_warehouse.entry(warehouse.clone()).or_default().push((
            line.sku.clone(),
            line.quantity.get(),
            line.unit_price_minor,
        ));
    }
    let skus: Vec<Sku> = order.lines.iter().map(|l| l.sku.clone()).collect();
    let pairs: Vec<(Sku, WarehouseId)> = by_warehouse
        .iter()
        .flat_map(|(wh, lines)| lines.iter().map(move |(sku, ..)| (sku.clone(), wh.clone())))
        .collect();
    let facts = store.fulfilment_facts(&skus, &pairs).await?;
    Ok(by_warehouse
        .into_iter()
        .enumerate()
        .map(|(i, (warehouse, lines))| {
            let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let lines = lines.into_iter().map(|(sku, q, price)| line(&facts, &warehouse, sku, q, price)).collect();
            new_shipment(order, number, warehouse, lines, policy, &facts, now)
        })
        .collect())
}

/// A line as picking needs it: barcode, perishability and size from the catalogue, the bin from
/// the stock item. An item missing from the catalogue is picked by its SKU, sized 1 g / 1 cm3.
pub(super) fn line(
    facts: &FulfilmentFacts,
    warehouse: &WarehouseId,
    sku: Sku,
    quantity: u32,
    price: i64,
) -> ShipmentLine {
    let item = facts.catalogue.get(&sku);
    ShipmentLine {
        barcode: item.and_then(|i| i.barcode.clone()).unwrap_or_else(|| sku.as_str().to_owned()),
        perishable: item.is_some_and(|i| i.flags.contains(&ItemFlag::Perishable)),
        weight_grams: item.map_or(1, |i| i.weight_grams),
        volume_cm3: item.map_or(1, |i| i.volume_cm3),
        bin: facts.bins.get(&(sku.clone(), warehouse.clone())).cloned(),
        sku,
        quantity,
        unit_price_minor: price,
        picked: 0,
        batches: Vec::new(),
    }
}

/// A PENDING shipment of `lines` from `warehouse`, with its courier and check decided.
pub(super) fn new_shipment(
    order: &Order,
    number: u32,
    warehouse: WarehouseId,
    lines: Vec<ShipmentLine>,
    policy: &FulfilmentPolicy,
    facts: &FulfilmentFacts,
    now: OffsetDateTime,
) -> Shipment {
    let mut shipment = Shipment {
        shipment_id: ShipmentId { order_id: order.order_id, number },
        order_id: order.order_id,
        warehouse,
        status: ShipmentStatus::Pending,
        payment_method: order.payment_method,
        payment_id: order.payment_id.clone(),
        currency: order.currency,
        province: order.shipping_address.province.clone(),
        lines,
        dispatch_by: policy.dispatch_by(now),
        parcel_type: ParcelType::Envelope,
        courier: None,
        check_reasons: Vec::new(),
        wave_id: None,
        pickers: Vec::new(),
        checked_by: None,
        shortage: None,
        backorder_until: None,
        refunds: Vec::new(),
        waybill: None,
        photo_key: None,
        photo_etag: None,
        tracking: None,
        for_ticket: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    refresh_decisions(&mut shipment, order, policy, facts);
    shipment
}

/// The courier for the shipment as it is now (none when no courier of the policy can take it).
pub(super) fn choose_courier(shipment: &mut Shipment, order: &Order, policy: &FulfilmentPolicy) {
    let parcel = Parcel {
        weight_grams: shipment.weight_grams(),
        volume_cm3: shipment.volume_cm3(),
        province: &shipment.province,
        value_minor: shipment.value_minor(),
        customer_choice: order.preferred_courier.as_ref(),
    };
    shipment.courier = policy.choose_courier(&parcel).ok();
}

/// Parcel type, courier and the double check follow the shipment's lines: decided when it is
/// made and again whenever its lines change (a shortage answered).
pub(super) fn refresh_decisions(
    shipment: &mut Shipment,
    order: &Order,
    policy: &FulfilmentPolicy,
    facts: &FulfilmentFacts,
) {
    shipment.parcel_type = ParcelType::of(shipment.weight_grams(), shipment.volume_cm3());
    choose_courier(shipment, order, policy);
    let mut reasons = Vec::new();
    if shipment.value_minor() > policy.double_check_above_minor {
        reasons.push(format!("worth {} (above {})", shipment.value_minor(), policy.double_check_above_minor));
    }
    for line in &shipment.lines {
        let rate = facts.catalogue.get(&line.sku).and_then(|i| i.return_rate_pct);
        if let Some(rate) = rate.filter(|r| *r > policy.double_check_return_rate_pct) {
            reasons.push(format!("{} is returned {rate}% of the time", line.sku));
        }
    }
    shipment.check_reasons = reasons;
}
