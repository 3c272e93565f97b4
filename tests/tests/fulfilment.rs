//! Fulfilment against the emulators: a paid order made into shipments once however often
//! OrderPaid comes, picked in a wave with every scan checked, packed, checked, labelled,
//! photographed and handed over (the order SHIPPED); shortages and their answers; a cancel
//! before and after the hand-over.

use orderflow::domain::{OrderId, ShipmentStatus};
use orderflow::handlers::fulfilment::{make_shipments, sweep_due, FulfilmentCore};
use orderflow::photos::{DispatchPhotos, PhotoError};
use orderflow::store::HoldStatus;
use orderflow_tests::fixtures::{
    cancel_order, claims, customer, get_order, one_warehouse, order_body, reserved_orders, staff, warehouse_staff,
    TEST_PRICE_MINOR,
};
use orderflow_tests::warehouse::{
    call, hand_over, paid_with_shipments, post, put_to, scan, shipments, upload_photo, wave,
};
use orderflow_tests::Stack;
use serde_json::{json, Value};

async fn seeded(units: i64) -> Stack {
    let (stack, _) = Stack::for_test().await;
    let mut seed = one_warehouse(&[("TEA", units), ("GREEN", units)]);
    seed.stock[0].bin = Some("B-07".into());
    stack.seed(&seed).await.unwrap();
    stack.relay().await;
    stack
}

fn carol() -> orderflow_tests::auth::VerifiedClaims {
    claims(&[("sub", "wh-carol"), ("groups", "[warehouse]")])
}

#[tokio::test]
async fn a_paid_order_is_picked_checked_labelled_photographed_and_handed_over_and_then_shipped() {
    let stack = seeded(10).await;
    let id = paid_with_shipments(&stack, &[("TEA", 2)]).await;
    make_shipments(&stack.fulfilment_core("fulfilment"), id).await.unwrap();
    let made = shipments(&stack, id).await;
    assert_eq!(made.len(), 1, "a redelivered OrderPaid makes nothing twice");
    let shipment = made[0].shipment_id.to_string();
    assert_eq!(made[0].lines[0].bin.as_deref(), Some("B-07"), "the bin comes from the stock item");
    assert!(made[0].courier.as_ref().is_some_and(|c| !c.reasons.is_empty()), "the courier and why are stored");

    let wave = wave(&stack).await;
    assert_eq!(post(&stack, &warehouse_staff(), &shipment, "pack", None).await.1["code"], "pick-incomplete");
    assert_eq!(scan(&stack, &wave, &shipment, "TEA", 2).await.0, 200);
    assert_eq!(post(&stack, &warehouse_staff(), &shipment, "pack", None).await.0, 200);
    let (status, ready) = post(&stack, &warehouse_staff(), &shipment, "label", None).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "READY");
    assert_eq!(stack.courier.bookings().len(), 1);

    let (status, refused) = post(&stack, &warehouse_staff(), &shipment, "hand-over", None).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("photo-missing")), "no hand-over without a photo");
    upload_photo(&stack, &shipment, 200).await;
    let (status, refused) = post(&stack, &warehouse_staff(), &shipment, "hand-over", None).await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("photo-size")), "a 200-byte upload is no photo");
    upload_photo(&stack, &shipment, 4096).await;
    let (status, handed) = post(&stack, &warehouse_staff(), &shipment, "hand-over", None).await;
    assert_eq!(status, 200, "{handed}");

    let (_, view) = get_order(&stack.intake(), &id.to_string()).await;
    assert_eq!(view["status"], "SHIPPED");
    assert_eq!(view["shipments"][0]["status"], "HANDED_OVER");
    assert!(view["shipments"][0]["waybill_number"].is_string());
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved, tea.sold), (8, 0, 2));
    let (status, refused) = cancel_order(&stack.intake(), &id.to_string()).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("order-handed-over")),
        "after the hand-over, after-sales"
    );
}

#[tokio::test]
async fn an_upload_url_takes_only_the_image_type_it_was_signed_for_and_only_with_its_signature() {
    let stack = seeded(10).await;
    let id = paid_with_shipments(&stack, &[("TEA", 1)]).await;
    let shipment_id = shipments(&stack, id).await[0].shipment_id.clone();
    let shipment = shipment_id.to_string();
    let wave = wave(&stack).await;
    assert_eq!(scan(&stack, &wave, &shipment, "TEA", 1).await.0, 200);
    assert_eq!(post(&stack, &warehouse_staff(), &shipment, "pack", None).await.0, 200);
    let (status, upload) =
        post(&stack, &warehouse_staff(), &shipment, "photo", Some(json!({"content_type": "image/png"}))).await;
    assert_eq!(status, 200, "{upload}");
    let url = upload["url"].as_str().unwrap();
    let signed = vec![("content-type".to_owned(), "image/png".to_owned())];
    let other_type = vec![("content-type".to_owned(), "text/html".to_owned())];
    assert_eq!(put_to(url, &other_type, "J".repeat(4096)).await, 403, "the content type is signed");
    let signature_at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let forged = format!("{}{}", &url[..signature_at], "0".repeat(64));
    assert_eq!(put_to(&forged, &signed, "J".repeat(4096)).await, 403, "the signature is checked");
    let photos = DispatchPhotos::new(stack.bucket_for("fulfilment-api", "DispatchPhotoBucket"));
    let key = DispatchPhotos::key(&shipment_id);
    assert!(matches!(photos.check(&key).await, Err(PhotoError::Missing)), "a refused upload stored nothing");
    assert_eq!(put_to(url, &signed, "J".repeat(4096)).await, 200, "the URL as signed uploads");
    assert!(photos.check(&key).await.unwrap().is_some(), "and the photo is there, with its ETag");
}

#[tokio::test]
async fn refused_scans_record_nothing_and_two_pickers_at_once_cannot_over_pick() {
    let stack = seeded(10).await;
    let id = paid_with_shipments(&stack, &[("TEA", 3)]).await;
    let shipment = shipments(&stack, id).await[0].shipment_id.to_string();
    let before_wave = scan(&stack, "nowave", &shipment, "TEA", 1).await;
    assert_eq!(before_wave.1["code"], "scan-other-shipment");
    let wave = wave(&stack).await;
    let wrong = scan(&stack, &wave, &shipment, "GREEN", 1).await;
    assert_eq!((wrong.0, wrong.1["code"].as_str()), (422, Some("scan-wrong-sku")));
    let (a, b) = tokio::join!(scan(&stack, &wave, &shipment, "TEA", 2), scan(&stack, &wave, &shipment, "TEA", 2));
    let codes = [a.0, b.0];
    assert!(codes.contains(&200) && codes.contains(&422), "one of two 2-unit scans of 3 units wins: {a:?} {b:?}");
    let after = &shipments(&stack, id).await[0];
    assert_eq!(after.lines[0].picked, 2, "only the accepted scan is recorded");
    assert_eq!(stack.stock("TEA", "HZ").await.sold, 3, "scans never move stock");
}

#[tokio::test]
async fn a_valuable_shipment_needs_a_check_by_someone_other_than_its_picker() {
    let stack = seeded(10).await;
    let policy = orderflow::domain::FulfilmentPolicy {
        double_check_above_minor: TEST_PRICE_MINOR,
        ..orderflow::domain::FulfilmentPolicy::default()
    };
    stack.store().save_policy(&policy, "test", stack.clock.now()).await.unwrap();
    let id = paid_with_shipments(&stack, &[("TEA", 2)]).await;
    let shipment = shipments(&stack, id).await[0].shipment_id.to_string();
    let wave = wave(&stack).await;
    scan(&stack, &wave, &shipment, "TEA", 2).await;
    post(&stack, &warehouse_staff(), &shipment, "pack", None).await;
    assert_eq!(post(&stack, &warehouse_staff(), &shipment, "label", None).await.1["code"], "check-required");
    let (status, by_picker) = post(&stack, &warehouse_staff(), &shipment, "check", None).await;
    assert_eq!((status, by_picker["code"].as_str()), (403, Some("check-by-picker")));
    assert_eq!(post(&stack, &carol(), &shipment, "check", None).await.0, 200);
    assert_eq!(post(&stack, &warehouse_staff(), &shipment, "label", None).await.1["status"], "READY");
}

/// A 3-TEA order picked 1 short: the unit written off, stock conserved, the customer asked.
async fn short_by_one(stack: &Stack) -> (OrderId, String) {
    let id = paid_with_shipments(stack, &[("TEA", 3)]).await;
    let shipment = shipments(stack, id).await[0].shipment_id.to_string();
    let wave = wave(stack).await;
    scan(stack, &wave, &shipment, "TEA", 2).await;
    let before = stack.stock("TEA", "HZ").await;
    let (status, short) =
        post(stack, &warehouse_staff(), &shipment, "shortage", Some(json!({"reason": "bin empty"}))).await;
    assert_eq!(status, 200, "{short}");
    assert_eq!(short["status"], "SHORTAGE");
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.sold, tea.written_off), (before.sold - 1, before.written_off + 1), "the missing unit written off");
    assert_eq!(tea.available + tea.reserved + tea.sold + tea.written_off, 10, "stock conserved");
    (id, shipment)
}

async fn answer(stack: &Stack, id: OrderId, shipment: &str, body: Value) -> (u16, Value) {
    let owner = stack.store().order(id).await.unwrap().unwrap().customer_id.to_string();
    let path = format!("/shipments/{shipment}/shortage-answer");
    call(stack, &customer(&owner), "POST", &path, "/shipments/{id}/shortage-answer", Some(body)).await
}

#[tokio::test]
async fn a_refund_answer_refunds_exactly_the_missing_units_once() {
    let stack = seeded(10).await;
    let (id, shipment) = short_by_one(&stack).await;
    let (status, answered) = answer(&stack, id, &shipment, json!({"choice": "refund"})).await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["status"], "PACKED", "the two picked units go on");
    assert_eq!(answered["refunds"][0]["amount_minor"], TEST_PRICE_MINOR);
    assert_eq!(answer(&stack, id, &shipment, json!({"choice": "refund"})).await.1["code"], "no-open-shortage");
    let stranger = call(
        &stack,
        &customer("someone-else"),
        "POST",
        &format!("/shipments/{shipment}/shortage-answer"),
        "/shipments/{id}/shortage-answer",
        Some(json!({"choice": "refund"})),
    )
    .await;
    assert_eq!(stranger.0, 404, "another customer's shipment is not theirs to answer");
    let bus = stack.observe_bus().await;
    stack.relay().await;
    let refunds: Vec<Value> = bus
        .events_until_quiet(std::time::Duration::from_millis(500))
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "RefundRequested")
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["detail"]["amount_minor"], TEST_PRICE_MINOR);
    assert_eq!(refunds[0]["detail"]["lines"][0]["missing"], 1);
}

#[tokio::test]
async fn an_exchange_takes_another_sku_at_once_and_a_wait_backorders_until_its_date() {
    let stack = seeded(10).await;
    let (id, shipment) = short_by_one(&stack).await;
    let (status, exchanged) = answer(&stack, id, &shipment, json!({"choice": "exchange", "sku": "GREEN"})).await;
    assert_eq!(status, 200, "{exchanged}");
    assert_eq!(exchanged["status"], "PENDING", "back in the pick queue");
    assert_eq!(stack.stock("GREEN", "HZ").await.sold, 1, "the replacement is taken at once");

    let (id, shipment) = short_by_one(&stack).await;
    let until = (stack.clock.now().date() + time::Duration::days(3)).to_string();
    let (status, waiting) = answer(&stack, id, &shipment, json!({"choice": "wait", "until": until})).await;
    assert_eq!((status, waiting["status"].as_str()), (200, Some("BACKORDERED")), "{waiting}");
}

#[tokio::test]
async fn an_unanswered_shortage_gets_the_default_answer_from_the_sweeper() {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 10)])).await.unwrap();
    let (id, _) = short_by_one(&stack).await;
    let core = FulfilmentCore::new(stack.common_for("hold-expiry"));
    assert_eq!(sweep_due(&core, 100).await.unwrap(), 0, "not yet due");
    clock.advance(time::Duration::hours(25));
    assert_eq!(sweep_due(&core, 100).await.unwrap(), 1);
    let after = &shipments(&stack, id).await[0];
    assert_eq!(after.status, ShipmentStatus::Packed);
    assert_eq!(after.shortage.as_ref().unwrap().answered_by.as_deref(), Some("default"));
    assert_eq!(after.refunds.len(), 1, "the default is a refund of the missing unit");
}

#[tokio::test]
async fn a_cancel_before_hand_over_returns_the_units_and_requests_one_refund() {
    let stack = seeded(10).await;
    let id = paid_with_shipments(&stack, &[("TEA", 2)]).await;
    let shipment = shipments(&stack, id).await[0].shipment_id.to_string();
    wave(&stack).await;
    let (status, cancelled) = cancel_order(&stack.intake(), &id.to_string()).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED_AFTER_PAYMENT");
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.sold), (10, 0), "every unit back");
    assert_eq!(shipments(&stack, id).await[0].status, ShipmentStatus::Cancelled);
    assert_eq!(post(&stack, &warehouse_staff(), &shipment, "pack", None).await.1["code"], "shipment-not-picking");
    assert_eq!(cancel_order(&stack.intake(), &id.to_string()).await.1["status"], "CANCELLED_AFTER_PAYMENT");
    assert_eq!(stack.stock("TEA", "HZ").await.available, 10, "a second cancel returns nothing twice");
    let bus = stack.observe_bus().await;
    stack.relay().await;
    let events = bus.events_until_quiet(std::time::Duration::from_millis(500)).await;
    let refunds: Vec<&Value> = events.iter().filter(|e| e["detail-type"] == "RefundRequested").collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["detail"]["amount_minor"], 2 * TEST_PRICE_MINOR);
}

#[tokio::test]
async fn an_exchange_for_a_sku_already_on_the_shipment_joins_its_line_and_a_cancel_returns_every_unit() {
    let stack = seeded(10).await;
    let id = paid_with_shipments(&stack, &[("TEA", 3), ("GREEN", 1)]).await;
    let shipment = shipments(&stack, id).await[0].shipment_id.to_string();
    let wave = wave(&stack).await;
    scan(&stack, &wave, &shipment, "TEA", 2).await;
    scan(&stack, &wave, &shipment, "GREEN", 1).await;
    assert_eq!(post(&stack, &warehouse_staff(), &shipment, "shortage", Some(json!({"reason": "torn"}))).await.0, 200);
    let (status, exchanged) = answer(&stack, id, &shipment, json!({"choice": "exchange", "sku": "GREEN"})).await;
    assert_eq!(status, 200, "{exchanged}");
    assert_eq!(exchanged["status"], "PENDING", "back in the pick queue for a new wave");
    let after = &shipments(&stack, id).await[0];
    let green: Vec<_> = after.lines.iter().filter(|l| l.sku.as_str() == "GREEN").collect();
    assert_eq!(green.len(), 1, "one scannable line per SKU: {:?}", after.lines);
    assert_eq!((green[0].quantity, green[0].picked), (2, 1));

    let (status, cancelled) = cancel_order(&stack.intake(), &id.to_string()).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("CANCELLED_AFTER_PAYMENT")), "{cancelled}");
    let (tea, green) = (stack.stock("TEA", "HZ").await, stack.stock("GREEN", "HZ").await);
    assert_eq!((green.available, green.sold), (10, 0), "the original and the exchanged GREEN both back");
    assert_eq!((tea.available, tea.sold, tea.written_off), (9, 0, 1), "the missing TEA stays written off");
}

#[tokio::test]
async fn a_cash_on_delivery_parcel_handed_over_moves_its_units_to_sold_and_commits_the_hold() {
    let stack = seeded(10).await;
    let mut body = order_body(&[("TEA", 2)], "Zhejiang");
    body["payment_method"] = json!("cash_on_delivery");
    let id = reserved_orders(&stack, 1, &body).await[0];
    let approve = format!("/admin/orders/{id}/approve");
    assert_eq!(staff(&stack.staff(), "POST", &approve, "/admin/orders/{id}/approve", None).await.0, 200);
    make_shipments(&stack.fulfilment_core("fulfilment"), id).await.unwrap();
    let shipment = shipments(&stack, id).await[0].shipment_id.to_string();
    assert_eq!(stack.stock("TEA", "HZ").await.reserved, 2, "held for the courier's collection");
    hand_over(&stack, &shipment, &[("TEA", 2)]).await;

    assert_eq!(get_order(&stack.intake(), &id.to_string()).await.1["status"], "SHIPPED");
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.reserved, tea.sold), (8, 0, 2));
    let hold = stack.store().hold(id).await.unwrap().unwrap();
    assert_eq!(hold.hold_status, HoldStatus::Committed);
}

#[tokio::test]
async fn a_backorder_whose_date_came_goes_back_to_a_wave_if_the_units_are_back_else_is_refunded() {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 10)])).await.unwrap();
    let core = FulfilmentCore::new(stack.common_for("hold-expiry"));
    let until = (stack.clock.now().date() + time::Duration::days(2)).to_string();
    let (back, shipment) = short_by_one(&stack).await;
    assert_eq!(answer(&stack, back, &shipment, json!({"choice": "wait", "until": until})).await.0, 200);
    let (gone, other) = short_by_one(&stack).await;
    assert_eq!(answer(&stack, gone, &other, json!({"choice": "wait", "until": until})).await.0, 200);
    clock.advance(time::Duration::days(1));
    assert_eq!(sweep_due(&core, 100).await.unwrap(), 0, "not before its date");

    // Of the 4 TEA still available, 3 go (damaged): one backorder finds its unit, one does not.
    let adjust = json!({"delta": -3, "reason": "damaged"});
    let path = "/admin/stock/TEA/HZ/adjustments";
    assert_eq!(
        staff(&stack.staff(), "POST", path, "/admin/stock/{sku}/{warehouse}/adjustments", Some(adjust)).await.0,
        200
    );
    clock.advance(time::Duration::days(1));
    assert_eq!(sweep_due(&core, 100).await.unwrap(), 2);
    let mut statuses = Vec::new();
    for id in [back, gone] {
        let s = shipments(&stack, id).await.remove(0);
        statuses.push((s.status, s.refunds.len(), s.wave_id.is_none()));
    }
    statuses.sort_by_key(|(status, ..)| status.as_str());
    assert_eq!(
        statuses,
        [(ShipmentStatus::Packed, 1, false), (ShipmentStatus::Pending, 0, true)],
        "one refunded and packed with what it has, one back in the pick queue"
    );
    let tea = stack.stock("TEA", "HZ").await;
    assert_eq!((tea.available, tea.written_off), (0, 2));
    assert_eq!(tea.available + tea.reserved + tea.sold + tea.written_off, 7, "10 less the 3 damaged");
}
