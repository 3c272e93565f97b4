//! Risk control at intake, against the emulators: scores and the rules that fired, each
//! disposition's path (accept, step-up, review, freeze, VIP fast lane), the sources' cases, and
//! rule changes reaching warm functions without a restart.

use orderflow::clock::Clock;
use orderflow::domain::OrderId;
use orderflow::handlers::hold_expiry::sweep;
use orderflow::handlers::order_intake::{self, IntakeDeps};
use orderflow_tests::fixtures::{
    customer, every_order_scores, exchange, http_as, one_warehouse, order_body, staff, submit,
};
use orderflow_tests::outbox::detail_types;
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::sync::Arc;
use time::Duration;

/// A seeded stack whose clock reads noon in China today: the default rules include a night-time
/// batch rule (00:00 to 06:00, UTC+8), which a test run at night would otherwise meet.
async fn stack() -> (Stack, Arc<orderflow::clock::ManualClock>) {
    let (stack, clock) = Stack::for_test().await;
    clock.set(clock.now().replace_time(time::macros::time!(04:00)));
    stack.seed(&one_warehouse(&[("TEA", 100), ("GOLD-BAR-10G", 10)])).await.unwrap();
    (stack, clock)
}

async fn staff_view(stack: &Stack, id: &str) -> Value {
    staff(&stack.staff(), "GET", &format!("/admin/orders/{id}"), "/admin/orders/{id}", None).await.1
}

fn with_address(mut body: Value, street: &str, number: &str) -> Value {
    body["shipping_address"]["street"] = json!(street);
    body["shipping_address"]["house_number"] = json!(number);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_order_is_scored_accepted_and_explained_to_staff() {
    let (stack, _) = stack().await;
    let (status, accepted) = submit(&stack.intake(), "k", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    assert_eq!((status, accepted["status"].as_str()), (202, Some("RECEIVED")));
    let view = staff_view(&stack, accepted["order_id"].as_str().unwrap()).await;
    assert_eq!(view["risk"]["score"], 0);
    assert_eq!(view["risk"]["disposition"], "accept");
    assert_eq!(view["risk"]["fired"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_orders_in_seconds_from_one_device_to_new_addresses_with_a_new_virtual_phone_go_to_review_or_above() {
    let (stack, clock) = stack().await;
    let intake: IntakeDeps = stack.intake();
    let bus = stack.observe_bus().await;
    // A customer with one ordinary order behind them.
    submit(&intake, "history", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let mut last = Value::Null;
    for i in 0..12 {
        let mut body =
            with_address(order_body(&[("TEA", 1)], "Zhejiang"), &format!("Road {i}"), &format!("{}", 100 + i));
        body["phone"] = json!("+8617012345678");
        body["device_id"] = json!("dev-burst");
        let (status, accepted) = submit(&intake, &format!("burst-{i}"), &body).await;
        assert_eq!(status, 202);
        last = accepted;
        clock.advance(Duration::milliseconds(250)); // 12 orders in 3 seconds
    }
    assert_eq!(last["status"], "PENDING_REVIEW", "the client is told only that it is under review");
    let view = staff_view(&stack, last["order_id"].as_str().unwrap()).await;
    let fired: Vec<&str> =
        view["risk"]["fired"].as_array().unwrap().iter().map(|f| f["rule_id"].as_str().unwrap()).collect();
    for rule in ["device-burst", "new-address", "virtual-phone", "customer-burst"] {
        assert!(fired.contains(&rule), "{rule} missing from {fired:?}");
    }
    assert!(view["risk"]["score"].as_u64().unwrap() > 100);
    assert!(matches!(view["status"].as_str(), Some("PENDING_REVIEW" | "FROZEN")));
    stack.relay().await;
    let frozen = staff(&stack.staff(), "GET", "/admin/review-queue", "/admin/review-queue", None).await.1["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "FROZEN")
        .count();
    let flagged = detail_types(&bus.events().await).iter().filter(|t| *t == "OrderFlagged").count();
    assert!(frozen > 0, "the burst froze some orders");
    assert_eq!(flagged, frozen, "the risk team hears of every frozen order");
    let queue = staff(&stack.staff(), "GET", "/admin/review-queue", "/admin/review-queue", None).await.1;
    assert!(queue["orders"].as_array().unwrap().iter().any(|o| o["order_id"] == last["order_id"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gifts_to_a_known_family_address_are_not_penalised() {
    let (stack, _) = stack().await;
    let intake = stack.intake();
    let home = order_body(&[("TEA", 1)], "Zhejiang");
    let mum = with_address(order_body(&[("TEA", 1)], "Zhejiang"), "Lakeside Lane", "7");
    submit(&intake, "home", &home).await;
    let (_, first_gift) = submit(&intake, "gift-1", &mum).await;
    let view = staff_view(&stack, first_gift["order_id"].as_str().unwrap()).await;
    assert_eq!(view["risk"]["fired"][0]["rule_id"], "new-address", "the first gift is a new address");
    assert_eq!(first_gift["status"], "RECEIVED", "30 points do not stop an order");
    let (_, second_gift) = submit(&intake, "gift-2", &mum).await;
    let view = staff_view(&stack, second_gift["order_id"].as_str().unwrap()).await;
    assert_eq!((view["risk"]["score"].as_u64(), second_gift["status"].as_str()), (Some(0), Some("RECEIVED")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vip_takes_the_fast_lane_over_the_threshold() {
    let (stack, _) = stack().await;
    let intake = stack.intake();
    let mut big = order_body(&[("TEA", 300)], "Zhejiang"); // 300 × 19.90 = 5,970: above 5,000
    let (_, ordinary) = submit(&intake, "big", &big).await;
    assert_eq!(ordinary["status"], "PENDING_REVIEW");
    big["customer_id"] = json!("cust-vip");
    let profile = json!({"tier": "L4", "version": 0});
    let (status, saved) =
        staff(&stack.staff(), "PUT", "/admin/customers/cust-vip", "/admin/customers/{id}", Some(profile)).await;
    assert_eq!((status, saved["version"].as_u64()), (200, Some(1)), "{saved}");
    let (_, vip) = submit(&intake, "big-vip", &big).await;
    assert_eq!(vip["status"], "RECEIVED");
    assert_eq!(staff_view(&stack, vip["order_id"].as_str().unwrap()).await["risk"]["disposition"], "fast_lane");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_claimed_in_the_body_is_refused_and_changes_nothing() {
    let (stack, _) = stack().await;
    let intake = stack.intake();
    let mut big = order_body(&[("TEA", 300)], "Zhejiang");
    big["customer_tier"] = json!("L9");
    stack.relay().await; // the seed's own changes
    let (status, problem) = submit(&intake, "big-l9", &big).await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (400, Some("field-server-owned"), Some("customer_tier"))
    );
    assert_eq!(stack.relay().await.delivered, 0, "nothing was stored");
    big.as_object_mut().unwrap().remove("customer_tier");
    let (_, ordinary) = submit(&intake, "big-l9", &big).await;
    assert_eq!(ordinary["status"], "PENDING_REVIEW", "without a profile, no fast lane");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_verification_continues_the_order_with_the_right_code_and_cancels_it_otherwise() {
    let (stack, clock) = stack().await;
    every_order_scores(&stack, 85).await;
    let intake = stack.intake();
    let verify = |id: &str, code: &str| {
        let request = http_as(
            Some(customer("cust-42")),
            "POST",
            &format!("/orders/{id}/verify"),
            "/orders/{id}/verify",
            &[("content-type", "application/json")],
            Some(json!({"code": code}).to_string()),
        );
        let intake = intake.clone();
        async move { exchange(request, |r| order_intake::handle(&intake, r)).await }
    };

    let (_, good) = submit(&intake, "good", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    assert_eq!(good["status"], "PENDING_VERIFICATION");
    let id = good["order_id"].as_str().unwrap();
    let code = stack.notifier.code_for(OrderId::parse(id).unwrap()).expect("a code was sent");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, problem) = verify(id, wrong).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("verification-code-wrong")));
    let (status, order) = verify(id, &code).await;
    assert_eq!((status, order["status"].as_str()), (200, Some("RECEIVED")));
    stack.relay().await;
    let announced = stack.drain("StockReservationQueue").await;
    assert!(announced.iter().any(|m| m.body.as_deref().unwrap().contains(id)), "on to reservation");

    let (_, bad) = submit(&intake, "bad", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let id = bad["order_id"].as_str().unwrap();
    let code = stack.notifier.code_for(OrderId::parse(id).unwrap()).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        assert_eq!(verify(id, wrong).await.0, 400);
    }
    let (status, problem) = verify(id, wrong).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("verification-failed")));
    assert_eq!(verify(id, &code).await.1["code"], "not-awaiting-verification", "cancelled for good");

    let (_, late) = submit(&intake, "late", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    clock.advance(Duration::minutes(11));
    sweep(&stack.expiry(), None).await.unwrap();
    let (_, view) = orderflow_tests::fixtures::get_order(&intake, late["order_id"].as_str().unwrap()).await;
    assert_eq!(view["status"], "CANCELLED", "an expired code cancels the order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_approve_or_reject_orders_in_the_review_queue() {
    let (stack, _) = stack().await;
    every_order_scores(&stack, 110).await;
    let intake = stack.intake();
    let (_, a) = submit(&intake, "a", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let (_, b) = submit(&intake, "b", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let queue = staff(&stack.staff(), "GET", "/admin/review-queue", "/admin/review-queue", None).await.1;
    assert_eq!(queue["orders"].as_array().unwrap().len(), 2);
    let (a, b) = (a["order_id"].as_str().unwrap(), b["order_id"].as_str().unwrap());
    let (status, approved) =
        staff(&stack.staff(), "POST", &format!("/admin/orders/{a}/approve"), "/admin/orders/{id}/approve", None).await;
    assert_eq!((status, approved["status"].as_str()), (200, Some("RECEIVED")));
    let (status, rejected) =
        staff(&stack.staff(), "POST", &format!("/admin/orders/{b}/reject"), "/admin/orders/{id}/reject", None).await;
    assert_eq!((status, rejected["status"].as_str()), (200, Some("REJECTED")));
    let (status, _) =
        staff(&stack.staff(), "POST", &format!("/admin/orders/{b}/approve"), "/admin/orders/{id}/approve", None).await;
    assert_eq!(status, 409, "reviewed once");
    assert!(staff(&stack.staff(), "GET", "/admin/review-queue", "/admin/review-queue", None).await.1["orders"]
        .as_array()
        .unwrap()
        .is_empty());
    stack.relay().await;
    let announced = stack.drain("StockReservationQueue").await;
    assert_eq!(announced.len(), 1, "only the approved order goes on to reservation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_change_reaches_a_warm_function_within_its_cache_time_and_is_audited() {
    let (stack, clock) = stack().await;
    let intake = stack.intake();
    assert_eq!(submit(&intake, "warm", &order_body(&[("TEA", 1)], "Zhejiang")).await.1["status"], "RECEIVED");
    every_order_scores(&stack, 130).await;
    let body = || from(&order_body(&[("TEA", 1)], "Zhejiang"));
    assert_eq!(
        submit(&intake, "cached", &body()).await.1["status"],
        "RECEIVED",
        "the warm function still trusts its copy"
    );
    clock.advance(Duration::seconds(61));
    assert_eq!(submit(&intake, "fresh", &body()).await.1["status"], "PENDING_REVIEW", "frozen, shown as under review");

    let stale = json!({"version": 0, "thresholds": {"verify": 80, "review": 100, "freeze": 120}, "vip_min_tier": 4, "rules": []});
    let (status, problem) = staff(&stack.staff(), "PUT", "/admin/risk-rules", "/admin/risk-rules", Some(stale)).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("rules-version-conflict")));
    let invalid = json!({"version": 1, "thresholds": {"verify": 80, "review": 60, "freeze": 120}, "vip_min_tier": 4, "rules": []});
    let (status, problem) = staff(&stack.staff(), "PUT", "/admin/risk-rules", "/admin/risk-rules", Some(invalid)).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("thresholds")));
    let audit = stack.store().audit_of_day(clock.now().date()).await.unwrap();
    let rule_saves: Vec<_> = audit.iter().filter(|record| record.action == "risk-rules.save").collect();
    assert_eq!(rule_saves.len(), 1, "one saved change, one audit record: {audit:?}");
    assert!(rule_saves[0].after.as_deref().unwrap().contains("\"version\":1"));
}

fn from(body: &Value) -> Value {
    orderflow_tests::fixtures::from_own_customer(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_cancels_most_orders_this_month_scores_for_it() {
    let (stack, _) = stack().await;
    let intake = stack.intake();
    for i in 0..4 {
        let (_, accepted) = submit(&intake, &format!("c-{i}"), &order_body(&[("TEA", 1)], "Zhejiang")).await;
        if i > 0 {
            let (status, _) =
                orderflow_tests::fixtures::cancel_order(&intake, accepted["order_id"].as_str().unwrap()).await;
            assert_eq!(status, 200);
        }
    }
    let (_, next) = submit(&intake, "next", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let view = staff_view(&stack, next["order_id"].as_str().unwrap()).await;
    let fired: Vec<&str> =
        view["risk"]["fired"].as_array().unwrap().iter().map(|f| f["rule_id"].as_str().unwrap()).collect();
    assert!(fired.contains(&"cancel-rate"), "3 of 4 orders cancelled this month: {fired:?}");
}

/// The score and disposition of each of 20 orders from one device (each from an account of its
/// own), fired one after another or all at once, sorted.
async fn twenty_from_one_device(concurrently: bool) -> Vec<(u64, String)> {
    let (stack, _) = stack().await;
    let intake = stack.intake();
    let bodies: Vec<Value> = (0..20)
        .map(|i| {
            let mut body = order_body(&[("TEA", 1)], "Zhejiang");
            body["customer_id"] = json!(format!("cust-dev-{i}"));
            body["device_id"] = json!("dev-shared");
            body
        })
        .collect();
    let mut accepted: Vec<Value> = Vec::new();
    if concurrently {
        let calls = bodies.iter().enumerate().map(|(i, body)| {
            let (intake, body) = (intake.clone(), body.clone());
            tokio::spawn(async move { submit(&intake, &format!("k-{i}"), &body).await })
        });
        for result in futures::future::join_all(calls).await {
            let (status, body) = result.unwrap();
            assert_eq!(status, 202, "{body}");
            accepted.push(body);
        }
    } else {
        for (i, body) in bodies.iter().enumerate() {
            let (status, body) = submit(&intake, &format!("k-{i}"), body).await;
            assert_eq!(status, 202, "{body}");
            accepted.push(body);
        }
    }
    let mut outcomes = Vec::new();
    for order in accepted {
        let risk = &staff_view(&stack, order["order_id"].as_str().unwrap()).await["risk"];
        outcomes.push((risk["score"].as_u64().unwrap(), risk["disposition"].as_str().unwrap().to_owned()));
    }
    outcomes.sort();
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_orders_from_one_device_are_scored_as_if_sent_one_after_another() {
    let sequential = twenty_from_one_device(false).await;
    let distinct: std::collections::BTreeSet<&str> = sequential.iter().map(|(_, d)| d.as_str()).collect();
    assert!(distinct.len() > 1, "the device's count moves the dispositions: {sequential:?}");
    let concurrent = twenty_from_one_device(true).await;
    assert_eq!(concurrent, sequential, "firing them at once dodges no rule");
}
