//! Erasing personal data: an archived order keeps it for the after-sales policy's
//! `personal_data_days`, then the sweeper erases it; a customer's erasure request erases the
//! orders done with at once and the rest once they are; each erasure audited, and an erased
//! order's clear values never read again.

use orderflow::clock::{Clock, ManualClock};
use orderflow::domain::{Order, OrderId, OrderStatus};
use orderflow_tests::after_sales::{call, delivered};
use orderflow_tests::fixtures::{
    claims, customer, exchange, one_warehouse, operations, order_body, staff_as, submit, table_items,
};
use orderflow_tests::parcels::customer_service;
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

async fn seeded() -> (Stack, Arc<ManualClock>) {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    stack.relay().await;
    (stack, clock)
}

async fn sweep(stack: &Stack) -> orderflow::handlers::hold_expiry::SweepReport {
    orderflow::handlers::hold_expiry::sweep(&stack.expiry(), None).await.unwrap()
}

async fn order(stack: &Stack, id: OrderId) -> Order {
    stack.store().order(id).await.unwrap().unwrap()
}

/// The order's item as stored: which attributes it has.
async fn stored_attributes(stack: &Stack, id: OrderId) -> Vec<String> {
    let item = (table_items(stack).await.into_iter())
        .find(|item| item.get("PK").and_then(|v| v.as_s().ok()) == Some(&format!("ORDER#{id}")))
        .expect("the order's item");
    item.into_keys().collect()
}

/// `POST /admin/orders/{id}/personal-data` as customer service.
async fn reveal(stack: &Stack, id: OrderId) -> (u16, Value) {
    let path = format!("/admin/orders/{id}/personal-data");
    let body = Some(json!({"reason": "the customer called"}));
    staff_as(Some(customer_service()), &stack.staff(), "POST", &path, "/admin/orders/{id}/personal-data", body).await
}

async fn erasure_request(stack: &Stack, who: orderflow_tests::auth::VerifiedClaims, customer: &str) -> (u16, Value) {
    let path = format!("/admin/customers/{customer}/erasure");
    let body = Some(json!({"reason": "customer request #4711"}));
    staff_as(Some(who), &stack.staff(), "POST", &path, "/admin/customers/{id}/erasure", body).await
}

/// A trail: (actor, action, before, after) of each record, oldest first.
async fn trail_of(stack: &Stack, subject: String) -> Vec<(String, String, Option<String>, Option<String>)> {
    let subject = orderflow::store::AuditTrail::Subject(subject);
    let (records, _) = stack.store().audit_trail(&subject, None, 100).await.unwrap();
    records.into_iter().map(|r| (r.actor, r.action, r.before, r.after)).collect()
}

async fn trail(stack: &Stack, id: OrderId) -> Vec<(String, String, Option<String>, Option<String>)> {
    trail_of(stack, format!("orders/{id}")).await
}

async fn customer_trail(stack: &Stack, customer: &str) -> Vec<(String, String, Option<String>, Option<String>)> {
    trail_of(stack, format!("customers/{customer}")).await
}

/// The reason a record's `after` gives.
fn reason_of(record: &(String, String, Option<String>, Option<String>)) -> String {
    let after: Value = serde_json::from_str(record.3.as_deref().unwrap_or("null")).unwrap();
    after["reason"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_order_keeps_its_personal_data_for_the_policys_days_then_the_sweeper_erases_it() {
    let (stack, clock) = seeded().await;
    let ops = operations();
    let (_, mut policy) =
        call(&stack, &ops, "GET", "/admin/after-sales-policy", "/admin/after-sales-policy", None).await;
    policy["personal_data_days"] = json!(10);
    let (status, saved) =
        call(&stack, &ops, "PUT", "/admin/after-sales-policy", "/admin/after-sales-policy", Some(policy)).await;
    assert_eq!(status, 200, "{saved}");
    let parcel = delivered(&stack, &clock, 1).await;
    let id = parcel.order_id;

    let archived_at = order(&stack, id).await.delivered_at.unwrap() + Duration::days(30);
    clock.set(archived_at);
    let run = sweep(&stack).await;
    assert_eq!((run.archived, run.personal_erased), (1, 0));
    assert_eq!(reveal(&stack, id).await.0, 200, "archived, still kept");
    clock.set(archived_at + Duration::days(10) - Duration::seconds(1));
    assert_eq!(sweep(&stack).await.personal_erased, 0, "the retention's last second");
    clock.set(archived_at + Duration::days(10));
    assert_eq!(sweep(&stack).await.personal_erased, 1);
    assert_eq!(sweep(&stack).await.personal_erased, 0, "erased once");

    let erased = order(&stack, id).await;
    assert_eq!(
        (erased.status, erased.personal.as_ref(), erased.phone_hint.as_str()),
        (OrderStatus::Archived, None, "")
    );
    assert_eq!(erased.personal_erased_at, Some(clock.now()));
    let attributes = stored_attributes(&stack, id).await;
    assert!(!attributes.iter().any(|a| a == "personal" || a == "waiting_queue"), "{attributes:?}");
    let (status, problem) = reveal(&stack, id).await;
    assert_eq!((status, problem["code"].as_str()), (410, Some("personal-data-erased")));
    let last = trail(&stack, id).await.pop().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str()), ("system:retention", "personal-data.erase"));
    assert_eq!(reason_of(&last), "retention ended");
    let fields: Value = serde_json::from_str(&last.2.unwrap()).unwrap();
    assert_eq!(fields["fields"].as_array().unwrap().len(), 5, "what was erased is named, not shown: {fields}");
}

/// A cancelled order of `customer_id` (final), by the customer's own token.
async fn cancelled_order(stack: &Stack, customer_id: &str, key: &str) -> OrderId {
    let mut body = order_body(&[("TEA", 1)], "Zhejiang");
    body["customer_id"] = json!(customer_id);
    let (status, accepted) = submit(&stack.intake(), key, &body).await;
    assert_eq!(status, 202, "{accepted}");
    let id = OrderId::parse(accepted["order_id"].as_str().unwrap()).unwrap();
    let path = format!("/orders/{id}/cancel");
    let request = orderflow_tests::fixtures::json_request(
        Some(customer(customer_id)),
        "POST",
        &path,
        "/orders/{id}/cancel",
        None,
    );
    let (status, answer) =
        exchange(request, |r| async { orderflow::handlers::order_intake::handle(&stack.intake(), r).await }).await;
    assert_eq!(status, 200, "{answer}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_request_erases_what_is_done_with_now_and_the_rest_once_it_is() {
    let (stack, clock) = seeded().await;
    let parcel = delivered(&stack, &clock, 1).await;
    let under_way = parcel.order_id;
    let who = order(&stack, under_way).await.customer_id.to_string();
    let cancelled = cancelled_order(&stack, &who, "c-1").await;
    let someone_else = cancelled_order(&stack, "cust-other", "c-2").await;

    let warehouse = claims(&[("sub", "wh-wu"), ("groups", "[warehouse]")]);
    assert_eq!(erasure_request(&stack, warehouse, &who).await.0, 403, "not the warehouse's to ask");
    // A delivered parcel may still come back; a late payment may revive a cancelled order.
    let (status, done) = erasure_request(&stack, customer_service(), &who).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done, json!({"erased": [], "later": [under_way, cancelled], "already": []}));
    assert_eq!(reveal(&stack, cancelled).await.0, 200, "kept for now");
    let (status, again) = erasure_request(&stack, customer_service(), &who).await;
    assert_eq!((status, &again["already"]), (200, &json!([under_way, cancelled])), "{again}");
    for id in [under_way, cancelled] {
        let asked: Vec<_> =
            trail(&stack, id).await.into_iter().filter(|r| r.1 == "personal-data.erase-requested").collect();
        assert_eq!(asked.len(), 1, "{id}: asked once, recorded once");
        assert_eq!((asked[0].0.as_str(), reason_of(&asked[0])), ("staff:cs-dan", "customer request #4711".to_owned()));
    }
    let requests = customer_trail(&stack, &who).await;
    assert_eq!(requests.len(), 2, "each request is recorded, whatever it found");
    assert_eq!(reason_of(&requests[1]), "customer request #4711");

    // An hour on, nothing is done with yet; at the window's end the parcel's order is archived,
    // the cancelled one is 30 days old, and both are erased in that run.
    clock.set(clock.now() + Duration::hours(1));
    assert_eq!(sweep(&stack).await.personal_erased, 0);
    let at: OffsetDateTime = order(&stack, under_way).await.delivered_at.unwrap() + Duration::days(30);
    clock.set(at);
    let run = sweep(&stack).await;
    assert_eq!((run.archived, run.personal_erased), (1, 2));
    for id in [under_way, cancelled] {
        let erased = order(&stack, id).await;
        assert_eq!((erased.personal, erased.personal_erased_at), (None, Some(at)), "{id}");
        let last = trail(&stack, id).await.pop().unwrap();
        assert_eq!((last.0.as_str(), last.1.as_str()), ("system:erasure-request", "personal-data.erase"));
        assert_eq!(reason_of(&last), "customer request #4711");
    }
    assert_eq!(sweep(&stack).await.personal_erased, 0, "each erased once");
    assert!(order(&stack, someone_else).await.personal.is_some(), "another customer's order is untouched");

    // An order done with when asked about is erased at once.
    let old = cancelled_order(&stack, &who, "c-3").await;
    clock.set(clock.now() + Duration::days(30));
    let (_, done) = erasure_request(&stack, customer_service(), &who).await;
    assert_eq!(done["erased"], json!([old]), "{done}");
    assert_eq!(order(&stack, old).await.personal, None);
}

/// An order of the customer reserved and left unpaid until the sweeper expired it.
async fn expired_order(stack: &Stack, clock: &ManualClock, customer_id: &str, key: &str) -> OrderId {
    let mut body = order_body(&[("TEA", 1)], "Zhejiang");
    body["customer_id"] = json!(customer_id);
    let (status, accepted) = submit(&stack.intake(), key, &body).await;
    assert_eq!(status, 202, "{accepted}");
    let id = OrderId::parse(accepted["order_id"].as_str().unwrap()).unwrap();
    let received = orderflow::events::OrderReceived::of(&order(stack, id).await);
    orderflow::handlers::stock_reservation::reserve_order(&stack.reservation(), &received).await.unwrap();
    clock.set(clock.now() + Duration::minutes(31));
    sweep(stack).await;
    assert_eq!(order(stack, id).await.status, OrderStatus::Expired);
    id
}

#[tokio::test]
async fn a_late_payment_for_an_erased_order_is_refunded_where_one_for_a_kept_order_revives_it() {
    use orderflow_tests::fixtures::{deliver_payment, payment_event, process_payment_queue};
    let (stack, clock) = seeded().await;
    let erased = expired_order(&stack, &clock, "cust-late", "late-1").await;
    clock.set(clock.now() + Duration::days(30));
    let kept = expired_order(&stack, &clock, "cust-late", "late-2").await;
    let (_, done) = erasure_request(&stack, customer_service(), "cust-late").await;
    assert_eq!((&done["erased"], &done["later"]), (&json!([erased]), &json!([kept])), "{done}");

    let before = stack.stock("TEA", "HZ").await;
    for (id, pay) in [(erased, "pay_erased"), (kept, "pay_kept")] {
        let total = order(&stack, id).await.total_minor;
        let event =
            payment_event("payment.succeeded", &id.to_string(), total, "CNY", pay, clock.now().unix_timestamp());
        assert_eq!(deliver_payment(&stack, &event).await.0, 200);
    }
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(order(&stack, kept).await.status, OrderStatus::Paid, "a kept order is revived by its payment");
    assert_eq!(order(&stack, erased).await.status, OrderStatus::RefundRequired, "nowhere to ship: refunded");
    let after = stack.stock("TEA", "HZ").await;
    assert_eq!((after.available, after.sold), (before.available - 1, before.sold + 1), "only the kept order's unit");
}
