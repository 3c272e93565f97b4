//! After-sales against the emulators: tickets opened by the order's owner within the policy,
//! decided by staff (risk staff for a refund sent to review), returns received and checked with
//! the stock counted, refunds paid once through the mock provider, exchanges reserving their
//! replacement, and every SLA deadline breached at its time and not before.

use orderflow::domain::{OrderStatus, PaymentMethod, ShipmentStatus};
use orderflow_tests::after_sales::{
    call, delivered, open, owner, pay_requested_refunds, request, risk_staff, ship_back, staff_post, upload_evidence,
};
use orderflow_tests::fixtures::{customer, one_warehouse, warehouse_staff, TEST_PRICE_MINOR};
use orderflow_tests::parcels::customer_service;
use orderflow_tests::warehouse::shipments;
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::sync::Arc;
use time::Duration;

async fn seeded() -> (Stack, Arc<orderflow::clock::ManualClock>) {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    stack.relay().await;
    (stack, clock)
}

fn ticket_of(answer: &Value) -> String {
    answer["ticket_id"].as_str().unwrap_or_else(|| panic!("a ticket: {answer}")).to_owned()
}

/// One run of the scheduled sweeper, as its schedule invokes it.
async fn sweep(stack: &Stack) -> orderflow::handlers::hold_expiry::SweepReport {
    orderflow::handlers::hold_expiry::sweep(&stack.expiry(), None).await.unwrap()
}

#[tokio::test]
async fn a_delivered_order_returned_passes_qc_is_restocked_and_refunded_once() {
    let (stack, clock) = seeded().await;
    let parcel = delivered(&stack, &clock, 2).await;
    let me = owner(&stack, &parcel).await;
    let (status, opened) = open(&stack, &me, &parcel, request("return", "no_reason", &parcel, 1, &[])).await;
    assert_eq!(status, 201, "{opened}");
    let ticket = ticket_of(&opened);
    assert!(opened.get("review").is_none(), "the customer is not shown risk control's reasons: {opened}");

    // A new customer's first order: the refund waits for risk staff.
    let approve = json!({"action": "approve"});
    let (status, problem) = staff_post(&stack, &customer_service(), &ticket, "decision", Some(approve.clone())).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("review-required")), "{problem}");
    let (_, seen) =
        call(&stack, &customer_service(), "GET", &format!("/admin/tickets/{ticket}"), "/admin/tickets/{id}", None)
            .await;
    assert_eq!(seen["review"], json!(["first_order"]), "{seen}");
    let (status, approved) = staff_post(&stack, &risk_staff(), &ticket, "decision", Some(approve.clone())).await;
    assert_eq!((status, approved["status"].as_str()), (200, Some("AWAITING_RETURN")), "{approved}");
    assert_eq!(
        staff_post(&stack, &risk_staff(), &ticket, "decision", Some(approve)).await.0,
        200,
        "approved again: same"
    );
    let returns: Vec<_> =
        stack.courier.bookings().into_iter().filter(|(b, _)| b.return_for.as_deref() == Some(&ticket)).collect();
    assert_eq!(returns.len(), 1, "one return waybill");
    assert_eq!(approved["return_waybill"]["number"], returns[0].1.number.as_str());

    let before = stack.stock("TEA", "HZ").await;
    let (status, received) = staff_post(&stack, &warehouse_staff(), &ticket, "received", None).await;
    assert_eq!((status, received["status"].as_str()), (200, Some("RECEIVED")), "{received}");
    let qc = json!({"passed": true, "notes": "sealed, as new"});
    let (status, checked) = staff_post(&stack, &warehouse_staff(), &ticket, "qc", Some(qc.clone())).await;
    assert_eq!((status, checked["closure"].as_str()), (200, Some("REFUNDED")), "{checked}");
    assert_eq!(staff_post(&stack, &warehouse_staff(), &ticket, "qc", Some(qc)).await.0, 200, "checked again: same");
    let after = stack.stock("TEA", "HZ").await;
    assert_eq!((after.available, after.sold), (before.available + 1, before.sold - 1), "one unit back on sale");
    let audit = stack.store().audit_of_day(stack.clock.now().date()).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "return-restocked" && a.subject == "stock/TEA/HZ"), "{audit:?}");

    assert_eq!(pay_requested_refunds(&stack).await, 1);
    assert_eq!(stack.provider.paid_back(&format!("pay_{}", parcel.order_id)), TEST_PRICE_MINOR, "one unit, once");
    assert_eq!(pay_requested_refunds(&stack).await, 0, "nothing more asked");
}

#[tokio::test]
async fn the_same_unit_is_in_one_open_ticket_at_a_time_and_free_again_when_withdrawn() {
    let (stack, clock) = seeded().await;
    let parcel = delivered(&stack, &clock, 1).await;
    let me = owner(&stack, &parcel).await;
    let (status, first) = open(&stack, &me, &parcel, request("return", "no_reason", &parcel, 1, &[])).await;
    assert_eq!(status, 201, "{first}");
    let (status, problem) = open(&stack, &me, &parcel, request("exchange", "no_reason", &parcel, 1, &[])).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("units-in-another-ticket")), "{problem}");
    let stranger = customer("someone-else");
    let (status, _) = open(&stack, &stranger, &parcel, request("return", "no_reason", &parcel, 1, &[])).await;
    assert_eq!(status, 404, "another customer's order does not exist for them");
    let withdraw = format!("/tickets/{}/withdraw", ticket_of(&first));
    assert_eq!(call(&stack, &stranger, "POST", &withdraw, "/tickets/{id}/withdraw", None).await.0, 404);
    let (status, withdrawn) = call(&stack, &me, "POST", &withdraw, "/tickets/{id}/withdraw", None).await;
    assert_eq!((status, withdrawn["closure"].as_str()), (200, Some("WITHDRAWN")), "{withdrawn}");
    let (status, again) = open(&stack, &me, &parcel, request("return", "no_reason", &parcel, 1, &[])).await;
    assert_eq!(status, 201, "{again}");
}

#[tokio::test]
async fn the_no_reason_window_takes_its_last_second_and_refuses_the_next_naming_the_rule() {
    let (stack, clock) = seeded().await;
    let parcel = delivered(&stack, &clock, 2).await;
    let me = owner(&stack, &parcel).await;
    let delivered_at = stack.clock.now();
    clock.set(delivered_at + Duration::days(7));
    let (status, problem) = open(&stack, &me, &parcel, request("return", "no_reason", &parcel, 1, &[])).await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (422, Some("no-reason-window-closed"), Some("reason"))
    );
    // A fault is taken for 30 days, with a photo of it.
    let (status, problem) = open(&stack, &me, &parcel, request("return", "faulty", &parcel, 1, &[])).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("evidence-required")), "{problem}");
    let photo = upload_evidence(&stack, &me, &parcel, false).await;
    let (status, opened) = open(&stack, &me, &parcel, request("return", "faulty", &parcel, 1, &[photo])).await;
    assert_eq!(status, 201, "{opened}");
    clock.set(delivered_at + Duration::days(7) - Duration::seconds(1));
    let (status, opened) = open(&stack, &me, &parcel, request("return", "no_reason", &parcel, 1, &[])).await;
    assert_eq!(status, 201, "the last second is inside: {opened}");
}

#[tokio::test]
async fn a_failed_qc_rejects_with_its_evidence_restocks_nothing_and_pays_nothing() {
    let (stack, clock) = seeded().await;
    let parcel = delivered(&stack, &clock, 1).await;
    let me = owner(&stack, &parcel).await;
    let ticket = ticket_of(&open(&stack, &me, &parcel, request("return", "no_reason", &parcel, 1, &[])).await.1);
    assert_eq!(staff_post(&stack, &risk_staff(), &ticket, "decision", Some(json!({"action": "approve"}))).await.0, 200);
    assert_eq!(staff_post(&stack, &warehouse_staff(), &ticket, "received", None).await.0, 200);
    let before = stack.stock("TEA", "HZ").await;
    let no_photo = json!({"passed": false, "notes": "opened and used"});
    let (status, problem) = staff_post(&stack, &warehouse_staff(), &ticket, "qc", Some(no_photo)).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("evidence-required")), "{problem}");
    let photo = upload_evidence(&stack, &warehouse_staff(), &parcel, true).await;
    let failed = json!({"passed": false, "notes": "opened and used", "photos": [photo]});
    let (status, rejected) = staff_post(&stack, &warehouse_staff(), &ticket, "qc", Some(failed)).await;
    assert_eq!((status, rejected["closure"].as_str()), (200, Some("REJECTED")), "{rejected}");
    assert_eq!(rejected["qc"]["photos"][0], photo.as_str());
    let after = stack.stock("TEA", "HZ").await;
    assert_eq!((after.available, after.sold), (before.available, before.sold), "nothing restocked");
    assert_eq!(pay_requested_refunds(&stack).await, 0);

    // The goods go back to the customer in a parcel of their own; until it arrives they have
    // nothing to return.
    let (status, problem) = open(&stack, &me, &parcel, request("return", "no_reason", &parcel, 1, &[])).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("units-in-another-ticket")), "{problem}");
    // The window passes with the goods still in the warehouse: the order is not archived yet.
    let delivered_at = stack.store().order(parcel.order_id).await.unwrap().unwrap().delivered_at.unwrap();
    clock.set(delivered_at + Duration::days(30));
    assert_eq!(sweep(&stack).await.archived, 0, "a parcel back to the customer is still under way");
    let back = ship_back(&stack, &clock, &rejected).await;
    let sent = shipments(&stack, parcel.order_id).await;
    let sent = sent.iter().find(|s| s.shipment_id.to_string() == back.shipment).unwrap();
    assert_eq!(sent.for_ticket.as_ref().map(ToString::to_string), Some(ticket.clone()));
    assert_eq!(stack.stock("TEA", "HZ").await, after, "the customer's own goods move no stock");
    assert_eq!(sent.lines[0].bin.as_deref(), Some(format!("returns/{ticket}").as_str()), "not the sellable bin");
    assert_eq!(sweep(&stack).await.archived, 1, "delivered back: after-sales is over");
}

#[tokio::test]
async fn an_exchange_passing_qc_ships_its_replacement_through_fulfilment_and_the_order_stays_delivered() {
    let (stack, clock) = seeded().await;
    let parcel = delivered(&stack, &clock, 1).await;
    let delivered_at = stack.store().order(parcel.order_id).await.unwrap().unwrap().delivered_at;
    let me = owner(&stack, &parcel).await;
    let ticket = ticket_of(&open(&stack, &me, &parcel, request("exchange", "no_reason", &parcel, 1, &[])).await.1);
    let approve = Some(json!({"action": "approve"}));
    assert_eq!(staff_post(&stack, &customer_service(), &ticket, "decision", approve).await.0, 200);
    assert_eq!(staff_post(&stack, &warehouse_staff(), &ticket, "received", None).await.0, 200);
    let qc = Some(json!({"passed": true, "notes": "as new"}));
    let (status, replaced) = staff_post(&stack, &warehouse_staff(), &ticket, "qc", qc).await;
    assert_eq!((status, replaced["closure"].as_str()), (200, Some("REPLACED")), "{replaced}");
    let made = shipments(&stack, parcel.order_id).await;
    assert_eq!(made.len(), 2, "the replacement is the order's second shipment");
    assert_eq!((made[1].status, made[1].lines[0].quantity), (ShipmentStatus::Pending, 1));
    assert_eq!(made[1].payment_method, PaymentMethod::Online, "prepaid: the courier collects nothing");
    let sold = stack.stock("TEA", "HZ").await;

    let back = ship_back(&stack, &clock, &replaced).await;
    assert_eq!(stack.stock("TEA", "HZ").await, sold, "the replacement was sold at QC: shipping moves nothing");
    let order = stack.store().order(parcel.order_id).await.unwrap().unwrap();
    assert_eq!(
        (order.status, order.delivered_at),
        (OrderStatus::Delivered, delivered_at),
        "the window keeps its start"
    );
    // The returned unit came back for good: the customer holds one unit, the replacement, and
    // may return it once, whichever parcel they name.
    let (status, opened) = open(&stack, &me, &back, request("return", "no_reason", &back, 1, &[])).await;
    assert_eq!(status, 201, "{opened}");
    let (status, problem) = open(&stack, &me, &parcel, request("return", "no_reason", &parcel, 1, &[])).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("units-in-another-ticket")), "{problem}");
}

#[tokio::test]
async fn two_approvals_of_one_refund_at_once_pay_once() {
    let (stack, clock) = seeded().await;
    let parcel = delivered(&stack, &clock, 2).await;
    let me = owner(&stack, &parcel).await;
    let photo = upload_evidence(&stack, &me, &parcel, false).await;
    let (status, opened) = open(&stack, &me, &parcel, request("refund_only", "damaged", &parcel, 2, &[photo])).await;
    assert_eq!(status, 201, "{opened}");
    let ticket = ticket_of(&opened);
    let risk = risk_staff();
    let approve = || staff_post(&stack, &risk, &ticket, "decision", Some(json!({"action": "approve"})));
    let ((a, _), (b, _)) = tokio::join!(approve(), approve());
    assert_eq!((a, b), (200, 200), "the second finds it approved");
    assert_eq!(pay_requested_refunds(&stack).await, 1, "one refund asked for");
    assert_eq!(stack.provider.paid().len(), 1);
    assert_eq!(stack.provider.paid_back(&format!("pay_{}", parcel.order_id)), 2 * TEST_PRICE_MINOR);
    let order = stack.store().order(parcel.order_id).await.unwrap().unwrap();
    let history = stack.store().refund_history(order.customer_id.as_str(), stack.clock.now()).await.unwrap();
    assert_eq!(history.month_refunds, 1, "counted once into the customer's month");
    // Refunded units are not refunded again.
    let (status, problem) = open(&stack, &me, &parcel, request("return", "no_reason", &parcel, 1, &[])).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("units-in-another-ticket")), "{problem}");
}

#[tokio::test]
async fn an_exchange_reserves_its_replacement_which_an_abandoned_return_releases_and_qc_pass_sells() {
    let (stack, clock) = seeded().await;
    let parcel = delivered(&stack, &clock, 1).await;
    let me = owner(&stack, &parcel).await;
    let exchange = || open(&stack, &me, &parcel, request("exchange", "no_reason", &parcel, 1, &[]));
    let ticket = ticket_of(&exchange().await.1);
    let before = stack.stock("TEA", "HZ").await;
    let approve = json!({"action": "approve"});
    let (status, approved) = staff_post(&stack, &customer_service(), &ticket, "decision", Some(approve.clone())).await;
    assert_eq!(status, 200, "an exchange gives no money back: no review {approved}");
    let reserved = stack.stock("TEA", "HZ").await;
    assert_eq!((reserved.available, reserved.reserved), (before.available - 1, before.reserved + 1));
    let withdraw = format!("/tickets/{ticket}/withdraw");
    let (status, problem) = call(&stack, &me, "POST", &withdraw, "/tickets/{id}/withdraw", None).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("ticket-past-withdrawal")), "goods may be on their way");

    // The goods never come: the return-by deadline (14 days) is breached, the ticket is in the
    // staff queue, and rejecting it gives the replacement back.
    let approved_at = stack.clock.now();
    clock.set(approved_at + Duration::days(14) - Duration::seconds(1));
    assert_eq!(sweep(&stack).await.sla_breached, 0);
    clock.set(approved_at + Duration::days(14));
    assert_eq!(sweep(&stack).await.sla_breached, 1);
    let (_, queue) = call(&stack, &customer_service(), "GET", "/admin/tickets", "/admin/tickets", None).await;
    assert_eq!(queue["tickets"][0]["ticket_id"], ticket.as_str(), "{queue}");
    let reject = json!({"action": "reject", "note": "nothing came back"});
    let (status, rejected) = staff_post(&stack, &customer_service(), &ticket, "decision", Some(reject)).await;
    assert_eq!((status, rejected["closure"].as_str()), (200, Some("REJECTED")), "{rejected}");
    let released = stack.stock("TEA", "HZ").await;
    assert_eq!((released.available, released.reserved), (before.available, before.reserved), "released");

    // Two weeks after delivery a no-reason exchange is out of the window; a faulty unit is not.
    assert_eq!(exchange().await.1["code"], "no-reason-window-closed");
    let photo = upload_evidence(&stack, &me, &parcel, false).await;
    let (status, faulty) = open(&stack, &me, &parcel, request("exchange", "faulty", &parcel, 1, &[photo])).await;
    assert_eq!(status, 201, "{faulty}");
    let ticket = ticket_of(&faulty);
    assert_eq!(staff_post(&stack, &customer_service(), &ticket, "decision", Some(approve)).await.0, 200);
    assert_eq!(staff_post(&stack, &warehouse_staff(), &ticket, "received", None).await.0, 200);
    let qc = json!({"passed": true, "notes": "fine"});
    let (status, replaced) = staff_post(&stack, &warehouse_staff(), &ticket, "qc", Some(qc)).await;
    assert_eq!((status, replaced["closure"].as_str()), (200, Some("REPLACED")), "{replaced}");
    let after = stack.stock("TEA", "HZ").await;
    // The returned unit back on sale and the replacement sold: available and sold as before,
    // nothing left reserved.
    assert_eq!((after.available, after.reserved, after.sold), (before.available, before.reserved, before.sold));
    assert_eq!(pay_requested_refunds(&stack).await, 0);
}

#[tokio::test]
async fn a_major_complaint_breaches_its_first_response_at_four_hours_once_and_leads_the_queue() {
    let (stack, clock) = seeded().await;
    let parcel = delivered(&stack, &clock, 1).await;
    let me = owner(&stack, &parcel).await;
    let complaint = json!({"kind": "complaint", "reason": "service", "text": "rude courier"});
    let (status, opened) = open(&stack, &me, &parcel, complaint.clone()).await;
    assert_eq!(status, 201, "{opened}");
    let normal = ticket_of(&opened);
    clock.set(stack.clock.now() + Duration::minutes(1));
    // Opened second, answered first once it is major.
    let major = ticket_of(&open(&stack, &me, &parcel, complaint).await.1);
    let opened_at = stack.clock.now();
    let (status, _) =
        staff_post(&stack, &customer_service(), &major, "decision", Some(json!({"action": "escalate"}))).await;
    assert_eq!(status, 200);
    let (_, queue) = call(&stack, &customer_service(), "GET", "/admin/tickets", "/admin/tickets", None).await;
    let order: Vec<&str> =
        queue["tickets"].as_array().unwrap().iter().filter_map(|t| t["ticket_id"].as_str()).collect();
    assert_eq!(order, [major.as_str(), normal.as_str()], "the nearest deadline first");

    let observer = stack.observe_bus().await;
    clock.set(opened_at + Duration::hours(4) - Duration::seconds(1));
    assert_eq!(sweep(&stack).await.sla_breached, 0, "not a second before");
    clock.set(opened_at + Duration::hours(4));
    assert_eq!(sweep(&stack).await.sla_breached, 1);
    assert_eq!(sweep(&stack).await.sla_breached, 0, "once per deadline");
    clock.set(opened_at + Duration::hours(24));
    assert_eq!(sweep(&stack).await.sla_breached, 2, "the major plan and the normal first response");
    stack.relay().await;
    let events = observer.events_until_quiet(std::time::Duration::from_millis(500)).await;
    let breached: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["detail-type"] == "SlaBreached")
        .map(|e| (e["detail"]["ticket_id"].as_str().unwrap(), e["detail"]["deadline"].as_str().unwrap()))
        .collect();
    assert_eq!(breached.len(), 3, "{breached:?}");
    assert!(breached.contains(&(major.as_str(), "FIRST_RESPONSE")) && breached.contains(&(major.as_str(), "PLAN")));
    // Breached and still unanswered: still in the queue, first.
    let (_, queue) = call(&stack, &customer_service(), "GET", "/admin/tickets", "/admin/tickets", None).await;
    assert_eq!(queue["tickets"][0]["ticket_id"], major.as_str(), "{queue}");
    let answered = json!({"action": "answer", "note": "apologised, courier retrained"});
    assert_eq!(staff_post(&stack, &customer_service(), &normal, "decision", Some(answered)).await.0, 200);
    let (_, queue) = call(&stack, &customer_service(), "GET", "/admin/tickets", "/admin/tickets", None).await;
    assert_eq!(queue["tickets"].as_array().unwrap().len(), 1, "the answered one left the queue: {queue}");
}

#[tokio::test]
async fn an_order_is_archived_when_its_window_has_passed_with_every_ticket_closed_and_counts_in_the_rate() {
    let (stack, clock) = seeded().await;
    let with_ticket = delivered(&stack, &clock, 1).await;
    let quiet = delivered(&stack, &clock, 1).await;
    let status_of = |parcel: &orderflow_tests::parcels::Parcel| {
        let (stack, id) = (&stack, parcel.order_id);
        async move { stack.store().order(id).await.unwrap().unwrap() }
    };
    let quiet_delivered = status_of(&quiet).await.delivered_at.unwrap();
    let me = owner(&stack, &with_ticket).await;
    let (status, opened) = open(&stack, &me, &with_ticket, request("return", "no_reason", &with_ticket, 1, &[])).await;
    assert_eq!(status, 201, "{opened}");

    // The quality window (30 days) is the longer: its last second is still after-sales.
    let window = Duration::days(30);
    clock.set(quiet_delivered + window - Duration::seconds(1));
    assert_eq!(sweep(&stack).await.archived, 0, "inside the window; the other order's ticket is open");
    let bus = stack.observe_bus().await;
    clock.set(quiet_delivered + window);
    assert_eq!(sweep(&stack).await.archived, 1);
    let archived = status_of(&quiet).await;
    assert_eq!((archived.status, archived.archived_at), (OrderStatus::Archived, Some(quiet_delivered + window)));
    assert_eq!(status_of(&with_ticket).await.status, OrderStatus::Delivered, "its ticket is still open");
    stack.relay().await;
    let announced = bus.at_least(1).await;
    let archived_events: Vec<_> = announced
        .iter()
        .filter(|e| e["detail-type"] == "OrderArchived" && e["detail"]["order_id"] == quiet.order_id.to_string())
        .collect();
    assert_eq!(archived_events.len(), 1, "{announced:?}");

    // The return is refunded; the order put off while it was open is looked at again an hour on.
    let ticket = ticket_of(&opened);
    let steps = [
        (risk_staff(), "decision", Some(json!({"action": "approve"}))),
        (warehouse_staff(), "received", None),
        (warehouse_staff(), "qc", Some(json!({"passed": true, "notes": "sealed"}))),
    ];
    for (who, action, body) in steps {
        assert_eq!(staff_post(&stack, &who, &ticket, action, body).await.0, 200, "{action}");
    }
    let put_off_at = quiet_delivered + window - Duration::seconds(1);
    clock.set(put_off_at + Duration::hours(1) - Duration::seconds(1));
    assert_eq!(sweep(&stack).await.archived, 0);
    clock.set(put_off_at + Duration::hours(1));
    assert_eq!(sweep(&stack).await.archived, 1);
    assert_eq!(status_of(&with_ticket).await.status, OrderStatus::Archived);
    assert_eq!(sweep(&stack).await.archived, 0, "archived once");
    let photo = upload_evidence(&stack, &me, &with_ticket, false).await;
    let late = request("refund_only", "damaged", &with_ticket, 1, &[photo]);
    let (status, problem) = open(&stack, &me, &with_ticket, late).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("after-sales-ended")), "{problem}");

    let mut months: Vec<String> = [quiet_delivered + window, put_off_at + Duration::hours(1)]
        .iter()
        .map(|at| format!("{:04}-{:02}", at.year(), u8::from(at.month())))
        .collect();
    months.dedup();
    let mut totals = (0, 0, 0);
    for month in &months {
        let path = format!("/admin/after-sales-rate?month={month}");
        let (status, rate) = call(&stack, &customer_service(), "GET", &path, "/admin/after-sales-rate", None).await;
        assert_eq!(status, 200, "{rate}");
        let figure = |name: &str| rate["figures"][name].as_u64().unwrap();
        totals = (totals.0 + figure("archived"), totals.1 + figure("with_after_sales"), totals.2 + figure("refunded"));
        if months.len() == 1 {
            assert_eq!(rate["after_sales_rate_pct"], json!(50.0), "{rate}");
        }
    }
    assert_eq!(totals, (2, 1, 1), "two archived, one with after-sales, refunded");
}

#[tokio::test]
async fn operations_replace_the_policy_by_version_and_a_stale_or_invalid_one_is_refused() {
    let (stack, _) = seeded().await;
    let route = "/admin/after-sales-policy";
    let ops = orderflow_tests::fixtures::operations();
    let (status, _) = call(&stack, &customer_service(), "GET", route, route, None).await;
    assert_eq!(status, 403, "customer service does not set policy");
    let (status, mut policy) = call(&stack, &ops, "GET", route, route, None).await;
    assert_eq!((status, policy["version"].as_u64(), policy["no_reason_days"].as_u64()), (200, Some(0), Some(7)));
    policy["no_reason_days"] = json!(10);
    let (status, saved) = call(&stack, &ops, "PUT", route, route, Some(policy.clone())).await;
    assert_eq!((status, saved["version"].as_u64()), (200, Some(1)), "{saved}");
    let (_, read) = call(&stack, &ops, "GET", route, route, None).await;
    assert_eq!((read["version"].as_u64(), read["no_reason_days"].as_u64()), (Some(1), Some(10)));
    let (status, stale) = call(&stack, &ops, "PUT", route, route, Some(policy.clone())).await;
    assert_eq!((status, stale["code"].as_str()), (409, Some("version-conflict")), "{stale}");
    policy["version"] = json!(1);
    policy["no_reason_days"] = json!(0);
    let (status, problem) = call(&stack, &ops, "PUT", route, route, Some(policy)).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("no_reason_days")), "{problem}");
    let audit = stack.store().audit_of_day(stack.clock.now().date()).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.action == "after-sales-policy.save").count(), 1, "{audit:?}");
}
