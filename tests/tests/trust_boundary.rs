//! The attacks the trust boundary stops, each through the handlers as API Gateway invokes them
//! (verified claims in the request context): a made-up price, someone else's order, a resend
//! flood, callers without the right token, and numbers chosen to overflow. Each attack gets a
//! clear error and changes nothing.

use lambda_http::{Body, Response};
use orderflow::clock::Clock;
use orderflow::domain::{OrderId, OrderStatus};
use orderflow::handlers::order_intake;
use orderflow_tests::auth::VerifiedClaims;
use orderflow_tests::fixtures::{
    claims, customer, deliver_payment, every_order_scores, exchange, http_as, json_request, one_warehouse, operations,
    order_body, payment_event, process_payment_queue, read, shop, staff_as, submit, table_keys, warehouse_staff,
};
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::sync::Arc;
use time::Duration;

const RESEND: &str = "POST /orders/{id}/verification/resend";

async fn seeded() -> (Stack, Arc<orderflow::clock::ManualClock>) {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    stack.relay().await; // the seed's own changes, so that a test sees only what it changed
    (stack, clock)
}

/// An order route called by `who` (claims as the authorizer verified them).
async fn as_caller(
    stack: &Stack,
    who: VerifiedClaims,
    method: &str,
    path: &str,
    route: &str,
    body: Option<Value>,
) -> Response<Body> {
    order_intake::handle(&stack.intake(), json_request(Some(who), method, path, route, body)).await.unwrap()
}

async fn order_of(stack: &Stack, id: &str) -> orderflow::domain::Order {
    stack.store().order(OrderId::parse(id).unwrap()).await.unwrap().unwrap()
}

fn retry_after(response: &Response<Body>) -> u64 {
    response.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_made_up_price_is_refused_with_the_current_one_and_nothing_is_stored() {
    let (stack, clock) = seeded().await;
    let intake = stack.intake();
    let before = table_keys(&stack).await;
    let mut body = order_body(&[("TEA", 3)], "Zhejiang");
    body["lines"][0]["unit_price_minor"] = json!(1);
    let (status, problem) = submit(&intake, "zero-yuan", &body).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("price-changed")), "{problem}");
    assert_eq!(problem["current_prices"], json!([{"sku": "TEA", "unit_price_minor": 1_990}]));
    assert_eq!(table_keys(&stack).await, before, "nothing was stored");

    // Without a price the catalogue prices the order, and paying what the client wished it
    // cost is a mismatch, not a purchase.
    body["lines"][0].as_object_mut().unwrap().remove("unit_price_minor");
    let (status, accepted) = submit(&intake, "zero-yuan", &body).await;
    assert_eq!((status, accepted["total_minor"].as_i64()), (202, Some(3 * 1_990)), "{accepted}");
    let id = OrderId::parse(accepted["order_id"].as_str().unwrap()).unwrap();
    stack.relay().await;
    let received = stack.receive_exactly("StockReservationQueue", 1).await;
    orderflow::handlers::stock_reservation::handle_batch(&stack.reservation(), received).await;
    let paid = payment_event("payment.succeeded", &id.to_string(), 3, "CNY", "pay_3", clock.now().unix_timestamp());
    assert_eq!(deliver_payment(&stack, &paid).await.0, 200);
    process_payment_queue(&stack, &stack.payment_processor()).await;
    assert_eq!(order_of(&stack, &id.to_string()).await.status, OrderStatus::PaymentMismatch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_sku_is_a_400_naming_its_line() {
    let (stack, _) = seeded().await;
    let before = table_keys(&stack).await;
    let (status, problem) = submit(&stack.intake(), "k", &order_body(&[("TEA", 1), ("GOLD-BAR", 1)], "Zhejiang")).await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (400, Some("sku-unknown"), Some("lines[1].sku"))
    );
    assert_eq!(table_keys(&stack).await, before, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_cannot_name_the_customer_unless_a_shop_backend_acts_for_them() {
    let (stack, _) = seeded().await;
    let body = order_body(&[("TEA", 1)], "Zhejiang"); // names cust-42
    let request = |who| orderflow_tests::fixtures::post_order_as(who, "k-1", &body);
    let (status, problem) =
        exchange(request(customer("cust-7")), |r| async { order_intake::handle(&stack.intake(), r).await }).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("customer-id-not-allowed")),
        "a customer is who the token says"
    );
    let no_scope = claims(&[("sub", "shop"), ("client_id", "shop"), ("scope", "orderflow/catalogue.read")]);
    let (status, _) = exchange(request(no_scope), |r| async { order_intake::handle(&stack.intake(), r).await }).await;
    assert_eq!(status, 403, "a client without the on-behalf scope may not");
    assert_eq!(stack.relay().await.delivered, 0, "nothing was stored");
    let (status, accepted) =
        exchange(request(shop()), |r| async { order_intake::handle(&stack.intake(), r).await }).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(order_of(&stack, accepted["order_id"].as_str().unwrap()).await.customer_id.as_str(), "cust-42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_customers_order_cannot_be_read_cancelled_verified_or_resent_and_is_unchanged() {
    let (stack, _) = seeded().await;
    every_order_scores(&stack, 85).await; // step-up verification: a code is sent
    let (_, mine) = submit(&stack.intake(), "mine", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let id = mine["order_id"].as_str().unwrap().to_owned();
    let code = stack.notifier.code_for(OrderId::parse(&id).unwrap()).unwrap();
    let before = order_of(&stack, &id).await;
    let sent_before = stack.notifier.sent().len();
    let attempts: [(&str, String, &str, Option<Value>); 4] = [
        ("GET", format!("/orders/{id}"), "/orders/{id}", None),
        ("POST", format!("/orders/{id}/cancel"), "/orders/{id}/cancel", None),
        ("POST", format!("/orders/{id}/verify"), "/orders/{id}/verify", Some(json!({"code": code}))),
        ("POST", format!("/orders/{id}/verification/resend"), "/orders/{id}/verification/resend", None),
    ];
    for (method, path, route, body) in attempts {
        let (status, problem) = read(
            &format!("{method} {route}"),
            &as_caller(&stack, customer("cust-7"), method, &path, route, body).await,
        );
        assert_eq!((status, problem["code"].as_str()), (404, Some("not-found")), "{method} {route}");
    }
    let after = order_of(&stack, &id).await;
    assert_eq!((after.status, after.version, after.verification), (before.status, before.version, before.verification));
    assert_eq!(stack.notifier.sent().len(), sent_before, "no code was sent to the owner's phone");
    let (status, view) = read(
        "GET /orders/{id}",
        &as_caller(&stack, customer("cust-42"), "GET", &format!("/orders/{id}"), "/orders/{id}", None).await,
    );
    assert_eq!((status, view["status"].as_str()), (200, Some("PENDING_VERIFICATION")), "its owner still sees it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_are_one_a_minute_and_five_an_order_each_refusal_a_429_with_retry_after() {
    let (stack, clock) = seeded().await;
    every_order_scores(&stack, 85).await;
    let (_, pending) = submit(&stack.intake(), "sms", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let id = pending["order_id"].as_str().unwrap().to_owned();
    let (path, route) = (format!("/orders/{id}/verification/resend"), "/orders/{id}/verification/resend");
    let resend = || as_caller(&stack, customer("cust-42"), "POST", &path, route, None);
    let sent_at_start = stack.notifier.sent().len();
    let flood = resend().await;
    assert_eq!(
        (read(RESEND, &flood).0, read(RESEND, &flood).1["code"].as_str()),
        (429, Some("verification-resend-too-soon"))
    );
    assert!((1..=60).contains(&retry_after(&flood)), "{}", retry_after(&flood));
    for n in 1..=5 {
        clock.advance(Duration::seconds(61));
        assert_eq!(read(RESEND, &resend().await).0, 202, "resend {n}");
        assert_eq!(read(RESEND, &resend().await).0, 429, "and not again within the minute");
    }
    clock.advance(Duration::seconds(61));
    let over = resend().await;
    assert_eq!(read(RESEND, &over).1["code"], "verification-resend-limit");
    assert!(retry_after(&over) >= 1);
    assert_eq!(stack.notifier.sent().len(), sent_at_start + 5, "five codes more, not one per call");
    let latest = stack.notifier.code_for(OrderId::parse(&id).unwrap()).unwrap();
    let (status, verified) = read(
        "POST /orders/{id}/verify",
        &as_caller(
            &stack,
            customer("cust-42"),
            "POST",
            &format!("/orders/{id}/verify"),
            "/orders/{id}/verify",
            Some(json!({"code": latest})),
        )
        .await,
    );
    assert_eq!((status, verified["status"].as_str()), (200, Some("RECEIVED")), "the last code sent works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_phone_gets_at_most_ten_codes_a_day_and_then_orders_go_to_review() {
    let (stack, clock) = seeded().await;
    // Noon of the next day: the minute the test waits never crosses into another day's count.
    let noon = clock.now().date().next_day().unwrap().with_hms(12, 0, 0).unwrap().assume_utc();
    clock.set(noon);
    every_order_scores(&stack, 85).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let body = orderflow_tests::fixtures::from_own_customer(&order_body(&[("TEA", 1)], "Zhejiang"));
        let (status, accepted) = submit(&stack.intake(), &format!("p-{i}"), &body).await;
        assert_eq!((status, accepted["status"].as_str()), (202, Some("PENDING_VERIFICATION")), "{i}: {accepted}");
        ids.push((body["customer_id"].as_str().unwrap().to_owned(), accepted["order_id"].as_str().unwrap().to_owned()));
    }
    let (_, eleventh) = submit(&stack.intake(), "p-10", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    assert_eq!(eleventh["status"], "PENDING_REVIEW", "no eleventh code: a person looks at it instead");
    clock.advance(Duration::seconds(61));
    let (owner, id) = &ids[0];
    let path = format!("/orders/{id}/verification/resend");
    let refused = as_caller(&stack, customer(owner), "POST", &path, "/orders/{id}/verification/resend", None).await;
    assert_eq!(
        (read(RESEND, &refused).0, read(RESEND, &refused).1["code"].as_str()),
        (429, Some("verification-phone-limit"))
    );
    assert!(retry_after(&refused) > 60, "until the phone's day ends");
    assert_eq!(stack.notifier.sent().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_routes_need_a_token_with_a_role_or_scope_that_allows_them() {
    let (stack, _) = seeded().await;
    let read_stock = |who: Option<VerifiedClaims>| {
        let deps = stack.staff();
        async move { staff_as(who, &deps, "GET", "/admin/stock/TEA", "/admin/stock/{sku}", None).await.0 }
    };
    assert_eq!(read_stock(None).await, 401, "no verified token");
    assert_eq!(read_stock(Some(customer("cust-42"))).await, 403, "a customer");
    let finance = claims(&[("sub", "fin-carol"), ("groups", "[finance]")]);
    assert_eq!(read_stock(Some(finance)).await, 403, "a role this route does not allow");
    assert_eq!(read_stock(Some(warehouse_staff())).await, 200, "the warehouse reads stock");
    assert_eq!(read_stock(Some(shop())).await, 403, "a client without the admin scope");
    assert_eq!(read_stock(Some(operations())).await, 200);
    let admin_client =
        claims(&[("sub", "ops-tool"), ("client_id", "ops-tool"), ("scope", orderflow::auth::ADMIN_SCOPE)]);
    assert_eq!(read_stock(Some(admin_client)).await, 200, "a machine caller with the admin scope");
    let (status, _) = staff_as(
        Some(warehouse_staff()),
        &stack.staff(),
        "PUT",
        "/admin/stock/TEA/HZ",
        "/admin/stock/{sku}/{warehouse}",
        Some(json!({"available": 0})),
    )
    .await;
    assert_eq!(status, 403, "a stocktake is operations'");
    assert_eq!(stack.stock("TEA", "HZ").await.available, 100, "unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_chosen_to_overflow_are_400s_and_change_nothing() {
    let (stack, _) = seeded().await;
    let staff = |method: &'static str, path: &'static str, route: &'static str, body: Option<Value>| {
        let deps = stack.staff();
        async move { staff_as(Some(operations()), &deps, method, path, route, body).await }
    };
    let adjustments = "/admin/stock/{sku}/{warehouse}/adjustments";
    for delta in [i64::MIN, i64::MAX, -i64::MAX] {
        let (status, problem) =
            staff("POST", "/admin/stock/TEA/HZ/adjustments", adjustments, Some(json!({"delta": delta, "reason": "x"})))
                .await;
        assert_eq!((status, problem["field"].as_str()), (400, Some("delta")), "{delta}");
    }
    assert_eq!(stack.stock("TEA", "HZ").await.available, 100);

    let (_, current) = staff("GET", "/admin/risk-rules", "/admin/risk-rules", None).await;
    for multiple in [json!(u32::MAX), json!(u64::MAX), json!(1e30)] {
        let doc = json!({
            "version": current["rules"]["version"], "thresholds": {"verify": 80, "review": 100, "freeze": 120}, "vip_min_tier": 4,
            "rules": [{"id": "big", "points": 10, "when": {"kind": "amount_above_average", "multiple": multiple, "min_orders": 1}}]
        });
        let (status, problem) = staff("PUT", "/admin/risk-rules", "/admin/risk-rules", Some(doc)).await;
        assert_eq!(status, 400, "multiple {multiple}: {problem}");
    }
    let (_, after) = staff("GET", "/admin/risk-rules", "/admin/risk-rules", None).await;
    assert_eq!(after["rules"]["version"], current["rules"]["version"], "no rule document was saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_guesses_compares_no_more_codes_than_the_attempts_allow() {
    let (stack, _) = seeded().await;
    every_order_scores(&stack, 85).await;
    let (_, pending) = submit(&stack.intake(), "guess", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let id = pending["order_id"].as_str().unwrap().to_owned();
    let code = stack.notifier.code_for(OrderId::parse(&id).unwrap()).unwrap();
    let wrong: Vec<String> = (0..1_000_000).map(|n| format!("{n:06}")).filter(|c| *c != code).take(30).collect();
    let path = format!("/orders/{id}/verify");
    let guesses = wrong.into_iter().map(|guess| {
        let (intake, path) = (stack.intake(), path.clone());
        tokio::spawn(async move {
            let headers = [("content-type", "application/json")];
            let body = Some(json!({"code": guess}).to_string());
            let request = http_as(Some(customer("cust-42")), "POST", &path, "/orders/{id}/verify", &headers, body);
            exchange(request, |r| order_intake::handle(&intake, r)).await
        })
    });
    let answers: Vec<(u16, Value)> = futures::future::join_all(guesses).await.into_iter().map(Result::unwrap).collect();
    let compared = answers
        .iter()
        .filter(|(_, p)| matches!(p["code"].as_str(), Some("verification-code-wrong" | "verification-failed")))
        .count();
    assert!(compared <= 5, "{compared} codes compared: {answers:?}");
    let order = order_of(&stack, &id).await;
    match order.verification {
        Some(left) => assert_eq!(left.attempts_left as usize, 5 - compared, "every compared code was counted"),
        None => assert_eq!(order.status, OrderStatus::Cancelled, "out of attempts"),
    }
}
