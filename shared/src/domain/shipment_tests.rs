use super::ShipmentStatus::*;
use super::*;
use time::macros::{date, datetime};

#[test]
fn a_shipment_moves_from_pending_through_picking_packing_and_check_to_the_hand_over() {
    assert!(Pending.can_become(Picking));
    assert!(Picking.can_become(Packed));
    assert!(Packed.can_become(Checked));
    assert!(Packed.can_become(Ready), "a shipment that needs no check");
    assert!(Checked.can_become(Ready));
    assert!(Ready.can_become(HandedOver));
    assert!(!Pending.can_become(Packed), "nothing is packed unpicked");
    assert!(!Picking.can_become(Ready));
    assert!(!Packed.can_become(HandedOver), "no hand-over without a waybill");
}

#[test]
fn every_status_before_the_hand_over_can_be_cancelled_and_none_after() {
    for status in ShipmentStatus::ALL.into_iter().filter(|s| !s.is_final()) {
        assert!(status.can_become(Cancelled), "{status:?}");
    }
    assert!(HandedOver.ways_out().is_empty() && Cancelled.ways_out().is_empty());
}

#[test]
fn a_shortage_has_a_way_out_the_sweeper_takes_when_nobody_answers() {
    for stuck in [Shortage, Backordered] {
        assert!(stuck.ways_out().iter().any(|(_, t)| *t == ShipmentTrigger::Sweeper), "{stuck:?}");
    }
    assert!(Picking.can_become(Shortage));
    assert!(Shortage.can_become(Pending) && Shortage.can_become(Packed) && Shortage.can_become(Backordered));
    assert!(!Shortage.can_become(Picking), "an exchange waits for a new wave, not the finished one");
}

#[test]
fn every_status_reaches_a_final_one() {
    for start in ShipmentStatus::ALL {
        let mut seen = vec![start];
        let mut frontier = vec![start];
        let mut ends = start.is_final();
        while let Some(status) = frontier.pop() {
            for (next, _) in status.ways_out() {
                ends |= next.is_final();
                if !seen.contains(next) {
                    seen.push(*next);
                    frontier.push(*next);
                }
            }
        }
        assert!(ends, "{start:?} never ends");
    }
}

#[test]
fn statuses_serialise_as_their_wire_names_and_ids_round_trip() {
    for s in ShipmentStatus::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
    }
    let id = ShipmentId { order_id: OrderId::generate(), number: 2 };
    assert_eq!(ShipmentId::parse(&id.to_string()).unwrap(), id);
    for bad in ["", "x-1", &format!("{}-0", id.order_id), &format!("{}", id.order_id), &format!("{}-a", id.order_id)] {
        assert!(ShipmentId::parse(bad).is_err(), "{bad}");
    }
}

fn line(sku: &str, quantity: u32, perishable: bool) -> ShipmentLine {
    ShipmentLine {
        sku: Sku::parse(sku).unwrap(),
        quantity,
        unit_price_minor: 1000,
        barcode: format!("690{sku}"),
        perishable,
        weight_grams: 200,
        volume_cm3: 500,
        bin: None,
        picked: 0,
        batches: Vec::new(),
    }
}

fn picking() -> Shipment {
    let now = datetime!(2026-11-22 10:00 UTC);
    Shipment {
        shipment_id: ShipmentId { order_id: OrderId::generate(), number: 1 },
        order_id: OrderId::generate(),
        warehouse: WarehouseId::parse("SH-01").unwrap(),
        status: Picking,
        payment_method: PaymentMethod::Online,
        payment_id: Some("pay_1".into()),
        currency: Currency::CNY,
        province: "Shanghai".into(),
        lines: vec![line("TEA", 2, false), line("MILK", 1, true)],
        dispatch_by: now,
        parcel_type: ParcelType::Box,
        courier: None,
        check_reasons: Vec::new(),
        wave_id: Some("W1".into()),
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
        version: 2,
    }
}

fn scan(shipment: &Shipment, barcode: &str, quantity: u32, expires_on: Option<Date>) -> Scan {
    Scan {
        shipment_id: shipment.shipment_id.clone(),
        barcode: barcode.into(),
        quantity,
        batch: "B-7".into(),
        expires_on,
    }
}

const TODAY: Date = date!(2026 - 11 - 22);

#[test]
fn a_right_scan_is_recorded_with_its_batch_and_picker() {
    let mut s = picking();
    s.record_scan(&scan(&s.clone(), "690TEA", 2, None), "W1", "staff:p1", TODAY, 30).unwrap();
    assert_eq!(s.lines[0].picked, 2);
    assert_eq!(s.lines[0].batches[0].batch, "B-7");
    assert_eq!(s.pickers, ["staff:p1"]);
    assert!(!s.fully_picked());
}

#[test]
fn wrong_sku_over_pick_other_wave_and_unpicked_shipments_are_refused_and_change_nothing() {
    let s = picking();
    let cases = [
        (scan(&s, "690COFFEE", 1, None), "W1", "scan-wrong-sku"),
        (scan(&s, "690TEA", 3, None), "W1", "scan-over-pick"),
        (scan(&s, "690TEA", 1, None), "W2", "scan-other-shipment"),
        (scan(&s, "690TEA", 0, None), "W1", "scan-quantity-invalid"),
    ];
    for (bad, wave, code) in cases {
        let mut copy = s.clone();
        assert_eq!(copy.record_scan(&bad, wave, "staff:p1", TODAY, 30).unwrap_err().code(), code);
        assert_eq!(copy, s, "{code} recorded something");
    }
    let mut packed = Shipment { status: Packed, ..s.clone() };
    let refused = packed.record_scan(&scan(&s, "690TEA", 1, None), "W1", "staff:p1", TODAY, 30).unwrap_err();
    assert_eq!(refused, ScanRefused::NotPicking(Packed));
}

#[test]
fn a_perishable_batch_needs_an_expiry_date_that_leaves_the_shelf_life() {
    let s = picking();
    let try_scan =
        |expires: Option<Date>| s.clone().record_scan(&scan(&s, "690MILK", 1, expires), "W1", "p", TODAY, 30);
    assert_eq!(try_scan(None).unwrap_err().code(), "scan-expiry-required");
    assert_eq!(try_scan(Some(TODAY)).unwrap_err().code(), "scan-batch-expired");
    assert_eq!(try_scan(Some(date!(2026 - 12 - 21))).unwrap_err().code(), "scan-batch-short-dated", "29 days left");
    assert!(try_scan(Some(date!(2026 - 12 - 22))).is_ok(), "30 days left is enough");
}

#[test]
fn an_over_pick_counts_what_earlier_scans_took() {
    let mut s = picking();
    s.record_scan(&scan(&s.clone(), "690TEA", 1, None), "W1", "p1", TODAY, 30).unwrap();
    let refused = s.clone().record_scan(&scan(&s, "690TEA", 2, None), "W1", "p2", TODAY, 30).unwrap_err();
    assert_eq!(refused, ScanRefused::OverPick { remaining: 1 });
}

#[test]
fn refunded_units_leave_the_lines_and_an_emptied_line_goes() {
    let mut s = picking();
    let missing = s.unpicked();
    assert_eq!(missing.len(), 2);
    s.remove_units(&missing[1..]);
    assert_eq!(s.lines.len(), 1);
    assert_eq!(s.value_minor(), 2000);
}

#[test]
fn parcel_types_follow_weight_and_volume() {
    assert_eq!(ParcelType::of(400, 1_500), ParcelType::Envelope);
    assert_eq!(ParcelType::of(600, 1_500), ParcelType::Box);
    assert_eq!(ParcelType::of(25_000, 1_500), ParcelType::Bulky);
}

#[test]
fn a_wave_takes_the_soonest_group_and_its_pick_list_walks_the_bins_in_order() {
    use crate::domain::wave::{next_wave, pick_list};
    let mut early = picking();
    early.status = Pending;
    early.lines[0].bin = Some("B-02".into());
    early.lines[1].bin = Some("A-01".into());
    let mut same_hour = early.clone();
    same_hour.shipment_id.number = 2;
    same_hour.dispatch_by += time::Duration::minutes(30);
    same_hour.lines.truncate(1);
    let mut other_type = early.clone();
    other_type.shipment_id.number = 3;
    other_type.parcel_type = ParcelType::Bulky;
    let mut later = early.clone();
    later.shipment_id.number = 4;
    later.dispatch_by += time::Duration::hours(3);
    let pending = [later, other_type, same_hour.clone(), early.clone()];
    let (key, members) = next_wave(&pending, 10);
    assert_eq!(key.unwrap().parcel_type, ParcelType::Box);
    let ids: Vec<u32> = members.iter().map(|s| s.shipment_id.number).collect();
    assert_eq!(ids, [1, 2], "same hour, courier and parcel type; soonest first");
    let stops = pick_list(&[early, same_hour]);
    let walk: Vec<(Option<&str>, &str)> = stops.iter().map(|s| (s.bin.as_deref(), s.sku.as_str())).collect();
    assert_eq!(walk, [(Some("A-01"), "MILK"), (Some("B-02"), "TEA"), (Some("B-02"), "TEA")]);
}
