//! The states an order used to be stuck in, each with its way out, against the emulators: a
//! mismatched payment accepted, refunded or settled by a correct further payment; cash on
//! delivery approved or rejected by staff, or approved by the policy; a payment that arrives
//! while its order is still RECEIVED applied once the order is reserved, or refunded once it is
//! rejected.

use orderflow::domain::{OrderId, OrderStatus};
use orderflow::handlers::hold_expiry::sweep;
use orderflow::handlers::stock_reservation::handle_batch as reserve;
use orderflow_tests::fixtures::{
    deliver_payment, exchange, one_warehouse, order_body, payment_event, process_payment_queue, reserved_orders, staff,
    staff_as, submit, warehouse_staff,
};
use orderflow_tests::outbox::BusObserver;
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::sync::Arc;
use time::Duration;

async fn seeded(units: i64) -> (Stack, Arc<orderflow::clock::ManualClock>) {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", units)])).await.unwrap();
    (stack, clock)
}

async fn status_of(stack: &Stack, id: OrderId) -> OrderStatus {
    stack.store().order(id).await.unwrap().unwrap().status
}

async fn pay(stack: &Stack, id: OrderId, amount: i64, currency: &str, payment_id: &str) {
    let now = stack.clock.now().unix_timestamp();
    let event = payment_event("payment.succeeded", &id.to_string(), amount, currency, payment_id, now);
    assert_eq!(deliver_payment(stack, &event).await.0, 200);
}

/// An order of 2 TEA (39.80 CNY) reserved, then paid 39.00: PAYMENT_MISMATCH, 2 units held.
async fn mismatched(stack: &Stack) -> OrderId {
    let id = reserved_orders(stack, 1, &order_body(&[("TEA", 2)], "Zhejiang")).await[0];
    pay(stack, id, 3_900, "CNY", "pay_short").await;
    process_payment_queue(stack, &stack.payment_processor()).await;
    assert_eq!(status_of(stack, id).await, OrderStatus::PaymentMismatch);
    id
}

async fn staff_post(stack: &Stack, path: &str, route: &str) -> (u16, Value) {
    staff(&stack.staff(), "POST", path, route, None).await
}

fn of_type<'a>(events: &'a [Value], detail_type: &str, id: OrderId) -> Vec<&'a Value> {
    events.iter().filter(|e| e["detail-type"] == detail_type && e["detail"]["order_id"] == id.to_string()).collect()
}

async fn audit_actions(stack: &Stack) -> Vec<(String, String, String)> {
    let day = stack.clock.now().date();
    let mut found: Vec<(String, String, String)> = (stack.store().audit_of_day(day).await.unwrap().into_iter())
        .map(|record| (record.action, record.subject, record.actor))
        .filter(|(_, _, actor)| actor != "seed")
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_accept_a_mismatched_amount_as_payment_and_the_units_are_sold() {
    let (stack, _) = seeded(10).await;
    let id = mismatched(&stack).await;
    let path = format!("/admin/orders/{id}/payment/accept");
    let route = "/admin/orders/{id}/payment/accept";
    let (status, _) = staff_as(Some(warehouse_staff()), &stack.staff(), "POST", &path, route, None).await;
    assert_eq!(status, 403, "the warehouse may not settle payments");
    let bus = stack.observe_bus().await;
    let (status, view) = staff_post(&stack, &path, route).await;
    assert_eq!((status, view["status"].as_str()), (200, Some("PAID")), "{view}");
    let stock = stack.stock("TEA", "HZ").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (8, 0, 2));
    assert_eq!(
        audit_actions(&stack).await,
        [("payment.accept".into(), format!("orders/{id}"), "staff:ops-alice".into())]
    );
    stack.relay().await;
    let events = bus.at_least(1).await;
    let paid = of_type(&events, "OrderPaid", id);
    assert_eq!(paid.len(), 1, "{events:?}");
    assert_eq!(paid[0]["detail"]["amount_minor"], 3_900, "paid what was received");
    let (status, problem) = staff_post(&stack, &path, route).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("no-payment-under-review")), "settled once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_refund_a_mismatched_payment_the_order_is_cancelled_and_its_stock_released() {
    let (stack, _) = seeded(10).await;
    let id = mismatched(&stack).await;
    let bus = stack.observe_bus().await;
    let (path, route) = (format!("/admin/orders/{id}/payment/refund"), "/admin/orders/{id}/payment/refund");
    let (status, view) = staff_post(&stack, &path, route).await;
    assert_eq!((status, view["status"].as_str()), (200, Some("CANCELLED")), "{view}");
    let stock = stack.stock("TEA", "HZ").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (10, 0, 0));
    assert_eq!(
        audit_actions(&stack).await,
        [("payment.refund".into(), format!("orders/{id}"), "staff:ops-alice".into())]
    );
    stack.relay().await;
    let events = bus.at_least(2).await;
    let refunds = of_type(&events, "RefundRequested", id);
    assert_eq!(refunds.len(), 1, "one refund: {events:?}");
    assert_eq!(
        (refunds[0]["detail"]["payment_id"].as_str(), refunds[0]["detail"]["amount_minor"].as_i64()),
        (Some("pay_short"), Some(3_900))
    );
    assert_eq!(of_type(&events, "OrderCancelled", id).len(), 1);
    let (status, _) = staff_post(&stack, &path, route).await;
    assert_eq!(status, 409, "refunded once");
    let accept = format!("/admin/orders/{id}/payment/accept");
    assert_eq!(staff_post(&stack, &accept, "/admin/orders/{id}/payment/accept").await.0, 409, "and not accepted after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_in_another_currency_cannot_be_accepted_only_refunded() {
    let (stack, _) = seeded(10).await;
    let id = reserved_orders(&stack, 1, &order_body(&[("TEA", 2)], "Zhejiang")).await[0];
    pay(&stack, id, 3_980, "USD", "pay_usd").await;
    process_payment_queue(&stack, &stack.payment_processor()).await;
    let accept = format!("/admin/orders/{id}/payment/accept");
    let (status, problem) = staff_post(&stack, &accept, "/admin/orders/{id}/payment/accept").await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("payment-currency-differs")));
    assert_eq!(status_of(&stack, id).await, OrderStatus::PaymentMismatch, "nothing changed");
    let refund = format!("/admin/orders/{id}/payment/refund");
    assert_eq!(staff_post(&stack, &refund, "/admin/orders/{id}/payment/refund").await.0, 200);
    assert_eq!(status_of(&stack, id).await, OrderStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_further_payment_settles_a_mismatch_and_the_short_one_is_refunded() {
    let (stack, _) = seeded(10).await;
    let id = mismatched(&stack).await;
    let bus = stack.observe_bus().await;
    pay(&stack, id, 3_980, "CNY", "pay_exact").await;
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(status_of(&stack, id).await, OrderStatus::Paid);
    assert_eq!(stack.stock("TEA", "HZ").await.sold, 2);
    let events = bus.at_least(2).await;
    let paid = of_type(&events, "OrderPaid", id);
    assert_eq!(paid.len(), 1, "{events:?}");
    assert_eq!(
        (paid[0]["detail"]["payment_id"].as_str(), paid[0]["detail"]["amount_minor"].as_i64()),
        (Some("pay_exact"), Some(3_980))
    );
    let refunds = of_type(&events, "RefundRequested", id);
    assert_eq!(refunds.len(), 1, "the short payment goes back: {events:?}");
    assert_eq!(refunds[0]["detail"]["payment_id"], "pay_short");
    let accept = format!("/admin/orders/{id}/payment/accept");
    assert_eq!(staff_post(&stack, &accept, "/admin/orders/{id}/payment/accept").await.0, 409, "nothing left to review");
}

fn cash_on_delivery() -> Value {
    let mut body = order_body(&[("TEA", 2)], "Zhejiang");
    body["payment_method"] = json!("cash_on_delivery");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_approve_cash_on_delivery_and_the_stock_stays_held_for_fulfilment() {
    let (stack, clock) = seeded(10).await;
    let id = reserved_orders(&stack, 1, &cash_on_delivery()).await[0];
    assert_eq!(status_of(&stack, id).await, OrderStatus::AwaitingReview);
    let bus = stack.observe_bus().await;
    let path = format!("/admin/orders/{id}/approve");
    let (status, view) = staff_post(&stack, &path, "/admin/orders/{id}/approve").await;
    assert_eq!((status, view["status"].as_str()), (200, Some("COD_APPROVED")), "{view}");
    assert_eq!(
        audit_actions(&stack).await,
        [("order.cod-approve".into(), format!("orders/{id}"), "staff:ops-alice".into())]
    );
    stack.relay().await;
    let events = bus.at_least(1).await;
    let approved = of_type(&events, "CashOnDeliveryApproved", id);
    assert_eq!(approved.len(), 1, "{events:?}");
    assert_eq!(approved[0]["detail"]["approved_by"], "STAFF");
    clock.advance(Duration::days(30));
    sweep(&stack.expiry(), None).await.unwrap();
    assert_eq!(status_of(&stack, id).await, OrderStatus::CodApproved, "an approved order's hold does not expire");
    assert_eq!(stack.stock("TEA", "HZ").await.reserved, 2);
    assert_eq!(staff_post(&stack, &path, "/admin/orders/{id}/approve").await.0, 409, "decided once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_reject_cash_on_delivery_and_its_stock_is_released() {
    let (stack, _) = seeded(10).await;
    let id = reserved_orders(&stack, 1, &cash_on_delivery()).await[0];
    let path = format!("/admin/orders/{id}/reject");
    let (status, view) = staff_post(&stack, &path, "/admin/orders/{id}/reject").await;
    assert_eq!((status, view["status"].as_str()), (200, Some("CANCELLED")), "{view}");
    let stock = stack.stock("TEA", "HZ").await;
    assert_eq!((stock.available, stock.reserved), (10, 0));
    assert_eq!(
        audit_actions(&stack).await,
        [("order.cod-reject".into(), format!("orders/{id}"), "staff:ops-alice".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_approves_cash_on_delivery_below_its_risk_score_and_leaves_the_rest_to_staff() {
    let (stack, _) = seeded(10).await;
    let policy = json!({"default_minutes": 30, "cash_on_delivery_minutes": 1440, "cod_auto_approve_below_score": 40});
    let (status, saved) = staff(&stack.staff(), "PUT", "/admin/hold-policy", "/admin/hold-policy", Some(policy)).await;
    assert_eq!(status, 200, "{saved}");
    let low = reserved_orders(&stack, 1, &cash_on_delivery()).await[0];
    assert_eq!(status_of(&stack, low).await, OrderStatus::CodApproved, "score 0 is below 40");
    orderflow_tests::fixtures::every_order_scores(&stack, 50).await;
    let risky = reserved_orders(&stack, 1, &cash_on_delivery()).await[0];
    assert_eq!(status_of(&stack, risky).await, OrderStatus::AwaitingReview, "50 is not below 40");
    let bus = stack.observe_bus().await;
    stack.relay().await;
    let events = bus.at_least(1).await;
    let approved = of_type(&events, "CashOnDeliveryApproved", low);
    assert_eq!(approved.len(), 1, "{events:?}");
    assert_eq!(approved[0]["detail"]["approved_by"], "POLICY");
    assert!(of_type(&events, "CashOnDeliveryApproved", risky).is_empty());
}

/// Submit an order of 2 TEA, pay it in full before reservation has run, and process the payment:
/// it is parked on the order. The order's OrderReceived waits on the reservation queue.
async fn paid_while_received(stack: &Stack) -> OrderId {
    let (status, accepted) = submit(&stack.intake(), "early", &order_body(&[("TEA", 2)], "Zhejiang")).await;
    assert_eq!(status, 202);
    let id = OrderId::parse(accepted["order_id"].as_str().unwrap()).unwrap();
    pay(stack, id, 3_980, "CNY", "pay_early").await;
    process_payment_queue(stack, &stack.payment_processor()).await;
    assert_eq!(status_of(stack, id).await, OrderStatus::Received, "the payment waits for the order");
    assert!(stack.drain("PaymentEventsDeadLetterQueue").await.is_empty(), "and did not fail its way to the DLQ");
    id
}

async fn run_reservation(stack: &Stack) {
    let received = stack.receive_exactly("StockReservationQueue", 1).await;
    assert!(reserve(&stack.reservation(), received).await.batch_item_failures.is_empty());
}

async fn outcome_events(bus: &BusObserver, id: OrderId, detail_type: &str) -> Vec<Value> {
    let events = bus.at_least(1).await;
    of_type(&events, detail_type, id).into_iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_that_arrives_before_reservation_is_applied_once_the_order_is_reserved() {
    let (stack, _) = seeded(10).await;
    let id = paid_while_received(&stack).await;
    let bus = stack.observe_bus().await;
    run_reservation(&stack).await;
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(status_of(&stack, id).await, OrderStatus::Paid);
    let stock = stack.stock("TEA", "HZ").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (8, 0, 2));
    let paid = outcome_events(&bus, id, "OrderPaid").await;
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0]["detail"]["payment_id"], "pay_early");
    assert!(stack.drain("PaymentEventsDeadLetterQueue").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_that_arrives_before_a_rejection_is_refunded() {
    let (stack, _) = seeded(1).await;
    let id = paid_while_received(&stack).await;
    let bus = stack.observe_bus().await;
    run_reservation(&stack).await;
    assert_eq!(status_of(&stack, id).await, OrderStatus::Rejected, "one unit for two");
    process_payment_queue(&stack, &stack.payment_processor()).await;
    let refunds = outcome_events(&bus, id, "RefundRequested").await;
    assert_eq!(refunds.len(), 1, "the customer's money goes back");
    assert_eq!(
        (refunds[0]["detail"]["payment_id"].as_str(), refunds[0]["detail"]["amount_minor"].as_i64()),
        (Some("pay_early"), Some(3_980))
    );
    assert_eq!(status_of(&stack, id).await, OrderStatus::Rejected);
    assert_eq!(stack.stock("TEA", "HZ").await.available, 1, "and no stock moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatched_payment_reported_again_is_refunded_once_whatever_staff_decide() {
    let (stack, _) = seeded(10).await;
    let id = mismatched(&stack).await;
    let bus = stack.observe_bus().await;
    // The provider reports the same payment again under a new event id, before and after the
    // ruling.
    pay(&stack, id, 3_900, "CNY", "pay_short").await;
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(status_of(&stack, id).await, OrderStatus::PaymentMismatch, "still under review");
    let (path, route) = (format!("/admin/orders/{id}/payment/refund"), "/admin/orders/{id}/payment/refund");
    assert_eq!(staff_post(&stack, &path, route).await.0, 200);
    stack.relay().await;
    pay(&stack, id, 3_900, "CNY", "pay_short").await;
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(status_of(&stack, id).await, OrderStatus::Cancelled);
    let events = bus.at_least(2).await;
    assert_eq!(of_type(&events, "RefundRequested", id).len(), 1, "one refund for one payment: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_cash_on_delivery_order_can_still_be_rejected_and_a_rejected_one_is_not_revived_by_paying_online() {
    let (stack, _) = seeded(10).await;
    let id = reserved_orders(&stack, 1, &cash_on_delivery()).await[0];
    let approve = format!("/admin/orders/{id}/approve");
    assert_eq!(staff_post(&stack, &approve, "/admin/orders/{id}/approve").await.0, 200);
    let reject = format!("/admin/orders/{id}/reject");
    let (status, view) = staff_post(&stack, &reject, "/admin/orders/{id}/reject").await;
    assert_eq!((status, view["status"].as_str()), (200, Some("CANCELLED")), "{view}");
    assert_eq!(stack.stock("TEA", "HZ").await.available, 10, "its stock is back");
    let bus = stack.observe_bus().await;
    let now = stack.clock.now().unix_timestamp();
    let online = payment_event("payment.succeeded", &id.to_string(), 3_980, "CNY", "pay_online", now);
    assert_eq!(deliver_payment(&stack, &online).await.0, 200);
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_ne!(status_of(&stack, id).await, OrderStatus::Paid, "the staff decision stands");
    assert_eq!(stack.stock("TEA", "HZ").await.available, 10);
    let events = bus.at_least(1).await;
    assert_eq!(of_type(&events, "RefundRequested", id).len(), 1, "the payment goes back: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_order_reservation_never_decides_is_cancelled_at_its_deadline_and_its_early_payment_refunded() {
    let (stack, clock) = seeded(10).await;
    orderflow_tests::fixtures::every_order_scores(&stack, 85).await;
    let (_, pending) = submit(&stack.intake(), "verify-me", &order_body(&[("TEA", 2)], "Zhejiang")).await;
    let id = OrderId::parse(pending["order_id"].as_str().unwrap()).unwrap();
    let code = stack.notifier.code_for(id).unwrap();
    let verify = orderflow_tests::fixtures::http_as(
        Some(orderflow_tests::fixtures::customer("cust-42")),
        "POST",
        &format!("/orders/{id}/verify"),
        "/orders/{id}/verify",
        &[("content-type", "application/json")],
        Some(json!({"code": code}).to_string()),
    );
    let intake = stack.intake();
    let (status, _) = exchange(verify, |r| orderflow::handlers::order_intake::handle(&intake, r)).await;
    assert_eq!(status, 200);
    pay(&stack, id, 3_980, "CNY", "pay_parked").await;
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(status_of(&stack, id).await, OrderStatus::Received, "parked, waiting for reservation");
    // Its OrderReceived is dead-lettered: reservation never decides it.
    stack.drain("StockReservationQueue").await;
    let bus = stack.observe_bus().await;
    clock.advance(Duration::minutes(61));
    let report = sweep(&stack.expiry(), None).await.unwrap();
    assert_eq!(report.unreserved_cancelled, 1, "{report:?}");
    assert_eq!(status_of(&stack, id).await, OrderStatus::Cancelled);
    process_payment_queue(&stack, &stack.payment_processor()).await;
    let events = bus.at_least(2).await;
    let refunds = of_type(&events, "RefundRequested", id);
    assert_eq!(refunds.len(), 1, "the parked payment goes back: {events:?}");
    assert_eq!(refunds[0]["detail"]["payment_id"], "pay_parked");
}
