//! The audit trail: every staff route that changes something, called through its handler,
//! leaves a record naming who, what, when, before and after, written with the change itself; a
//! refused call leaves none. The trail reads back by entity and by day, a page at a time.

use orderflow::access::{rule_for, Audience, Effect, ROUTES};
use orderflow::clock::ManualClock;
use orderflow::domain::OrderId;
use orderflow_tests::after_sales::{delivered, open, owner, request, risk_staff};
use orderflow_tests::auth::VerifiedClaims;
use orderflow_tests::fixtures::{
    deliver_payment, exchange, json_request, one_warehouse, operations, order_body, payment_event,
    process_payment_queue, reserved_orders, submit, warehouse_staff, TEST_PRICE_MINOR,
};
use orderflow_tests::local::{LocalFunction, OutsideParties};
use orderflow_tests::parcels::{customer_service, handed_over};
use orderflow_tests::warehouse::{paid_with_shipments, shipments};
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Every staff route that changes something, and the action its record names (a prefix where
/// the action depends on the request: `order.` is a review or a cash-on-delivery decision).
const AUDITED: &[(&str, &str, &str)] = &[
    ("PUT", "/admin/warehouses/{id}", "warehouse.save"),
    ("PUT", "/admin/stock/{sku}/{warehouse}", "stock.stocktake"),
    ("POST", "/admin/stock/{sku}/{warehouse}/adjustments", "stock.adjust"),
    ("PUT", "/admin/stock/{sku}/{warehouse}/shards", "stock.split"),
    ("PUT", "/admin/hold-policy", "hold-policy.save"),
    ("PUT", "/admin/catalogue/{sku}", "catalogue-item.save"),
    ("PUT", "/admin/customers/{id}", "customer-profile.save"),
    ("POST", "/admin/customers/{id}/erasure", "customer.erasure-request"),
    ("PUT", "/admin/risk-rules", "risk-rules.save"),
    ("POST", "/admin/orders/{id}/approve", "order."),
    ("POST", "/admin/orders/{id}/reject", "order."),
    ("POST", "/admin/orders/{id}/payment/accept", "payment.accept"),
    ("POST", "/admin/orders/{id}/payment/refund", "payment.refund"),
    ("POST", "/admin/orders/{id}/personal-data", "personal-data.read"),
    ("PUT", "/admin/fulfilment-policy", "fulfilment-policy.save"),
    ("POST", "/admin/warehouses/{id}/waves", "wave.create"),
    ("POST", "/admin/waves/{id}/scans", "shipment.scan"),
    ("POST", "/admin/shipments/{id}/pack", "shipment.pack"),
    ("POST", "/admin/shipments/{id}/shortage", "stock.write-off"),
    ("POST", "/admin/shipments/{id}/check", "shipment.check"),
    ("POST", "/admin/shipments/{id}/label", "shipment.label"),
    ("POST", "/admin/shipments/{id}/hand-over", "shipment.hand-over"),
    ("POST", "/admin/shipments/{id}/claim-resolution", "claim.resolve"),
    ("POST", "/admin/shipments/{id}/lost", "shipment.lost"),
    ("PUT", "/admin/logistics-policy", "logistics-policy.save"),
    ("POST", "/admin/tickets/{id}/decision", "ticket."),
    ("POST", "/admin/tickets/{id}/received", "ticket.received"),
    ("POST", "/admin/tickets/{id}/qc", "ticket.qc-"),
    ("PUT", "/admin/after-sales-policy", "after-sales-policy.save"),
];

#[test]
fn the_audited_routes_are_every_staff_route_that_changes_something() {
    let changing: BTreeSet<(&str, &str)> = (ROUTES.iter())
        .filter(|r| r.effect == Effect::Changes && matches!(r.audience, Audience::Staff(_)))
        .map(|r| (r.method, r.path))
        .collect();
    let audited: BTreeSet<(&str, &str)> = AUDITED.iter().map(|(m, p, _)| (*m, *p)).collect();
    assert_eq!(audited, changing);
}

/// Staff calls through the template's functions, each checked against the day's trail: a
/// change adds its records (by the caller, the route's action first), a refusal adds none.
struct Audited<'a> {
    stack: &'a Stack,
    clock: Arc<ManualClock>,
    outside: OutsideParties,
    covered: RefCell<BTreeSet<(&'static str, &'static str)>>,
}

impl<'a> Audited<'a> {
    fn new(stack: &'a Stack, clock: Arc<ManualClock>) -> Self {
        let outside = OutsideParties { courier: stack.courier.clone(), provider: stack.provider.clone() };
        Self { stack, clock, outside, covered: RefCell::new(BTreeSet::new()) }
    }

    async fn trail_of_day(&self) -> Vec<orderflow::store::AuditRecord> {
        self.stack.store().audit_of_day(self.stack.clock.now().date()).await.unwrap()
    }

    /// `method path` as `who`, answered `expected`; the body answered.
    async fn call(&self, who: &VerifiedClaims, method: &str, path: &str, body: Option<Value>, expected: u16) -> Value {
        let route = path.split('?').next().unwrap_or(path);
        let rule = rule_for(method, route).unwrap_or_else(|| panic!("{method} {path} is no route"));
        let before = self.trail_of_day().await;
        let function = LocalFunction::for_binary(self.stack, rule.function, &self.outside).unwrap();
        let request = json_request(Some(who.clone()), method, path, rule.path, body);
        let (status, answer) = exchange(request, |r| function.http(r)).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        // What the call added, whatever the order of records of one second.
        let mut added = self.trail_of_day().await;
        for seen in &before {
            let at = added.iter().position(|r| r == seen).expect("the trail only grows");
            added.remove(at);
        }
        if !(200..300).contains(&status) {
            assert!(added.is_empty(), "{method} {path} refused ({status}) yet recorded {added:?}");
            return answer;
        }
        if rule.effect == orderflow::access::Effect::Reads {
            assert!(added.is_empty(), "{method} {path} reads, yet recorded {added:?}");
            return answer;
        }
        let (_, _, action) = AUDITED.iter().find(|(m, p, _)| *m == rule.method && *p == rule.path).unwrap();
        let actor =
            orderflow::auth::Caller::of(&json_request(Some(who.clone()), "GET", "/", "/", None)).unwrap().actor();
        assert!(added.iter().any(|r| r.action.starts_with(action)), "{method} {path}: {action} in {added:?}");
        assert!(added.iter().all(|r| r.actor == actor && r.at.starts_with(&self.stack.clock.now().date().to_string())));
        self.covered.borrow_mut().insert((rule.method, rule.path));
        answer
    }
}

async fn stack() -> (Stack, Arc<ManualClock>) {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 1_000)])).await.unwrap();
    (stack, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_staff_change_is_recorded_with_its_change_and_a_refused_one_is_not() {
    let (stack, clock) = stack().await;
    let audited = Audited::new(&stack, clock);
    stock_and_settings(&audited).await;
    orders_waiting_for_a_person(&audited).await;
    fulfilment(&audited).await;
    logistics_and_after_sales(&audited).await;
    // A customer's erasure request, for an order of its own.
    let mut body = order_body(&[("TEA", 1)], "Zhejiang");
    body["customer_id"] = json!("cust-erase");
    assert_eq!(submit(&stack.intake(), "erase-me", &body).await.0, 202);
    let erasure = "/admin/customers/cust-erase/erasure";
    audited.call(&customer_service(), "POST", erasure, Some(json!({"reason": ""})), 400).await;
    audited.call(&customer_service(), "POST", erasure, Some(json!({"reason": "customer request #4711"})), 200).await;
    let covered = audited.covered.borrow().clone();
    let all: BTreeSet<_> = AUDITED.iter().map(|(m, p, _)| (*m, *p)).collect();
    assert_eq!(all.difference(&covered).collect::<Vec<_>>(), Vec::<&(&str, &str)>::new(), "routes not exercised");
}

async fn stock_and_settings(audited: &Audited<'_>) {
    let (ops, wh) = (operations(), warehouse_staff());
    let warehouse = json!({"name": "Shanghai", "regions": ["Shanghai"]});
    audited.call(&ops, "PUT", "/admin/warehouses/SH", Some(json!({"name": ""})), 400).await;
    audited.call(&ops, "PUT", "/admin/warehouses/SH", Some(warehouse), 200).await;
    audited.call(&ops, "PUT", "/admin/stock/TEA/NOWHERE", Some(json!({"available": 5})), 404).await;
    audited.call(&ops, "PUT", "/admin/stock/TEA/HZ", Some(json!({"available": 900, "bin": "A-1"})), 200).await;
    let adjust = |delta: i64| Some(json!({"delta": delta, "reason": "damaged"}));
    audited.call(&wh, "POST", "/admin/stock/TEA/HZ/adjustments", adjust(-5_000), 409).await;
    audited.call(&wh, "POST", "/admin/stock/TEA/HZ/adjustments", adjust(-2), 200).await;
    let policy = json!({"default_minutes": 30, "cash_on_delivery_minutes": 1440});
    audited.call(&ops, "PUT", "/admin/hold-policy", Some(policy), 200).await;
    // Read, then saved back as the version read; the same version again is stale.
    let mut item = audited.call(&ops, "GET", "/admin/catalogue/TEA", None, 200).await;
    item.as_object_mut().unwrap().remove("sku");
    audited.call(&ops, "PUT", "/admin/catalogue/TEA", Some(item.clone()), 200).await;
    audited.call(&ops, "PUT", "/admin/catalogue/TEA", Some(item), 409).await;
    let tier = json!({"tier": "L5", "version": 0});
    audited.call(&ops, "PUT", "/admin/customers/cust-audit", Some(tier), 200).await;
    let rules = audited.call(&ops, "GET", "/admin/risk-rules", None, 200).await;
    audited.call(&ops, "PUT", "/admin/risk-rules", Some(rules["rules"].clone()), 200).await;

    // The stock's own trail tells the story, oldest first, with the counts before and after.
    let trail = audited.call(&ops, "GET", "/admin/audit?subject=stock/TEA/HZ", None, 200).await;
    let steps: Vec<_> = trail["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["before"]["available"].clone(), r["after"]["available"].clone()))
        .collect();
    assert_eq!(
        steps,
        [
            ("stock.stocktake", Value::Null, json!(1_000)), // the seed's
            ("stock.stocktake", json!(1_000), json!(900)),
            ("stock.adjust", json!(900), json!(898)),
        ]
    );
    // A split for a sale and the merge after it, each recorded with the units by shard.
    let shards = |n: i64| Some(json!({ "shards": n }));
    audited.call(&wh, "PUT", "/admin/stock/TEA/HZ/shards", shards(4), 403).await;
    audited.call(&ops, "PUT", "/admin/stock/TEA/HZ/shards", shards(0), 400).await;
    audited.call(&ops, "PUT", "/admin/stock/TEA/HZ/shards", shards(4), 200).await;
    let merged = audited.call(&ops, "PUT", "/admin/stock/TEA/HZ/shards", shards(1), 200).await;
    assert_eq!(merged["available_by_shard"], json!([898, 0, 0, 0]));
}

/// An order of 300 TEA (above the 5,000 amount limit): risk control holds it for a person.
async fn held_order(audited: &Audited<'_>, key: &str) -> String {
    let body = orderflow_tests::fixtures::from_own_customer(&order_body(&[("TEA", 300)], "Zhejiang"));
    let (status, accepted) = submit(&audited.stack.intake(), key, &body).await;
    assert_eq!((status, accepted["status"].as_str()), (202, Some("PENDING_REVIEW")), "{accepted}");
    accepted["order_id"].as_str().unwrap().to_owned()
}

/// A reserved order of 2 TEA paid 1 minor unit short: PAYMENT_MISMATCH.
async fn mismatched_order(audited: &Audited<'_>) -> OrderId {
    let stack = audited.stack;
    let id = reserved_orders(stack, 1, &order_body(&[("TEA", 2)], "Zhejiang")).await[0];
    let now = stack.clock.now().unix_timestamp();
    let short = 2 * TEST_PRICE_MINOR - 1;
    let event = payment_event("payment.succeeded", &id.to_string(), short, "CNY", &format!("pay_{id}"), now);
    assert_eq!(deliver_payment(stack, &event).await.0, 200);
    process_payment_queue(stack, &stack.payment_processor()).await;
    id
}

async fn orders_waiting_for_a_person(audited: &Audited<'_>) {
    let ops = operations();
    let (approved, rejected) = (held_order(audited, "held-1").await, held_order(audited, "held-2").await);
    audited.call(&ops, "POST", &format!("/admin/orders/{approved}/approve"), None, 200).await;
    audited.call(&ops, "POST", &format!("/admin/orders/{approved}/reject"), None, 409).await;
    audited.call(&ops, "POST", &format!("/admin/orders/{rejected}/reject"), None, 200).await;
    // Reading personal data is recorded as a change is: with its reason, or not at all.
    let reveal = format!("/admin/orders/{approved}/personal-data");
    audited.call(&customer_service(), "POST", &reveal, Some(json!({"reason": ""})), 400).await;
    audited.call(&customer_service(), "POST", &reveal, Some(json!({"reason": "the customer called"})), 200).await;
    let mut cash = order_body(&[("TEA", 1)], "Zhejiang");
    cash["payment_method"] = json!("cash_on_delivery");
    let cod = reserved_orders(audited.stack, 2, &cash).await;
    audited.call(&ops, "POST", &format!("/admin/orders/{}/approve", cod[0]), None, 200).await;
    audited.call(&ops, "POST", &format!("/admin/orders/{}/reject", cod[1]), None, 200).await;
    let (accepted, refunded) = (mismatched_order(audited).await, mismatched_order(audited).await);
    audited.call(&ops, "POST", &format!("/admin/orders/{accepted}/payment/accept"), None, 200).await;
    audited.call(&ops, "POST", &format!("/admin/orders/{accepted}/payment/refund"), None, 409).await;
    audited.call(&ops, "POST", &format!("/admin/orders/{refunded}/payment/refund"), None, 200).await;

    let trail = audited.call(&ops, "GET", &format!("/admin/audit?subject=orders/{approved}"), None, 200).await;
    let records = trail["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "the approval and the personal data read: {trail}");
    assert_eq!(
        (records[0]["action"].as_str(), records[0]["actor"].as_str()),
        (Some("order.review-approve"), Some("staff:ops-alice"))
    );
    assert_eq!(
        (records[0]["before"]["status"].as_str(), records[0]["after"]["status"].as_str()),
        (Some("PENDING_REVIEW"), Some("RECEIVED"))
    );
}

/// Two paid orders in one wave: one picked, packed, checked by another, labelled, photographed
/// and handed over; the other short.
async fn fulfilment(audited: &Audited<'_>) {
    let (ops, wh) = (operations(), warehouse_staff());
    let policy = audited.call(&ops, "GET", "/admin/fulfilment-policy", None, 200).await;
    audited.call(&ops, "PUT", "/admin/fulfilment-policy", Some(policy), 200).await;
    let mut parcels = Vec::new();
    for _ in 0..2 {
        let id = paid_with_shipments(audited.stack, &[("TEA", 1)]).await;
        parcels.push(shipments(audited.stack, id).await[0].shipment_id.to_string());
    }
    let wave = audited.call(&wh, "POST", "/admin/warehouses/HZ/waves", None, 201).await;
    let wave = wave["wave"]["wave_id"].as_str().unwrap().to_owned();
    let (picked, short) = (&parcels[0], &parcels[1]);
    let scan = |quantity: u32| json!({"shipment_id": picked, "barcode": "TEA", "quantity": quantity, "batch": "L-1"});
    audited.call(&wh, "POST", &format!("/admin/waves/{wave}/scans"), Some(scan(2)), 422).await;
    audited.call(&wh, "POST", &format!("/admin/waves/{wave}/scans"), Some(scan(1)), 200).await;
    let step = |shipment: &str, step: &str| format!("/admin/shipments/{shipment}/{step}");
    audited.call(&wh, "POST", &step(picked, "hand-over"), None, 409).await;
    audited.call(&wh, "POST", &step(picked, "pack"), None, 200).await;
    audited.call(&wh, "POST", &step(picked, "check"), None, 403).await; // its picker
    audited.call(&ops, "POST", &step(picked, "check"), None, 200).await;
    audited.call(&wh, "POST", &step(picked, "label"), None, 200).await;
    orderflow_tests::warehouse::upload_photo(audited.stack, picked, 4096).await;
    audited.call(&wh, "POST", &step(picked, "hand-over"), None, 200).await;
    audited.call(&wh, "POST", &step(short, "shortage"), Some(json!({"reason": "not on the shelf"})), 200).await;

    let trail = audited.call(&ops, "GET", &format!("/admin/audit?subject=shipments/{picked}"), None, 200).await;
    let actions: Vec<_> = trail["records"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["shipment.scan", "shipment.pack", "shipment.check", "shipment.label", "shipment.hand-over"]);
}

async fn logistics_and_after_sales(audited: &Audited<'_>) {
    let (ops, cs, wh) = (operations(), customer_service(), warehouse_staff());
    let stack = audited.stack;
    let lost = handed_over(stack, 1).await;
    audited.call(&ops, "POST", &format!("/admin/shipments/{}/lost", lost.shipment), None, 200).await;
    audited.call(&ops, "POST", &format!("/admin/shipments/{}/lost", lost.shipment), None, 409).await;
    let order = stack.store().order(lost.order_id).await.unwrap().unwrap();
    assert_eq!(order.status, orderflow::domain::OrderStatus::Undelivered, "its only parcel lost, with the record");
    let policy = audited.call(&ops, "GET", "/admin/logistics-policy", None, 200).await;
    audited.call(&ops, "PUT", "/admin/logistics-policy", Some(policy), 200).await;
    let policy = audited.call(&ops, "GET", "/admin/after-sales-policy", None, 200).await;
    audited.call(&ops, "PUT", "/admin/after-sales-policy", Some(policy), 200).await;

    let claimed = delivered(stack, &audited.clock, 1).await;
    let me = owner(stack, &claimed).await;
    let not_received = format!("/shipments/{}/not-received", claimed.shipment);
    let (status, _) = orderflow_tests::parcels::call(
        stack,
        &me,
        "POST",
        &not_received,
        "/shipments/{id}/not-received",
        Some(json!({"note": "never came"})),
    )
    .await;
    assert_eq!(status, 200);
    let resolution = format!("/admin/shipments/{}/claim-resolution", claimed.shipment);
    audited.call(&cs, "POST", &resolution, Some(json!({"kind": "refund", "amount_minor": 0})), 400).await;
    audited.call(&cs, "POST", &resolution, Some(json!({"kind": "reship"})), 200).await;

    let returned = delivered(stack, &audited.clock, 1).await;
    let me = owner(stack, &returned).await;
    let (status, ticket) = open(stack, &me, &returned, request("return", "no_reason", &returned, 1, &[])).await;
    assert_eq!(status, 201, "{ticket}");
    let ticket = ticket["ticket_id"].as_str().unwrap().to_owned();
    let admin = |action: &str| format!("/admin/tickets/{ticket}/{action}");
    audited.call(&wh, "POST", &admin("received"), None, 409).await;
    // A first order's refund is risk's to approve: refused for customer service, and unrecorded.
    audited.call(&cs, "POST", &admin("decision"), Some(json!({"action": "approve"})), 403).await;
    audited.call(&risk_staff(), "POST", &admin("decision"), Some(json!({"action": "approve"})), 200).await;
    audited.call(&wh, "POST", &admin("received"), None, 200).await;
    audited.call(&wh, "POST", &admin("qc"), Some(json!({"passed": true, "notes": "as new"})), 200).await;

    let trail = audited.call(&ops, "GET", &format!("/admin/audit?subject=tickets/{ticket}"), None, 200).await;
    let steps: Vec<_> = (trail["records"].as_array().unwrap().iter())
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["before"]["status"].as_str().unwrap(),
                r["after"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("ticket.approve", "OPEN", "AWAITING_RETURN"),
            ("ticket.received", "AWAITING_RETURN", "RECEIVED"),
            ("ticket.qc-pass", "RECEIVED", "CLOSED")
        ]
    );
    assert_eq!(trail["records"][2]["after"]["closure"], json!("REFUNDED"), "{trail}");
    assert_eq!(trail["records"][0]["actor"], json!("staff:risk-rita"), "the approval is risk's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_of_a_day_reads_a_page_at_a_time_and_a_malformed_query_is_a_400() {
    let (stack, clock) = stack().await;
    let audited = Audited::new(&stack, clock);
    let adjust = Some(json!({"delta": 1, "reason": "found"}));
    for _ in 0..4 {
        audited.call(&warehouse_staff(), "POST", "/admin/stock/TEA/HZ/adjustments", adjust.clone(), 200).await;
    }
    let day = stack.clock.now().date();
    let everything = stack.store().audit_of_day(day).await.unwrap();
    assert!(everything.len() >= 6, "the seed's saves and four adjustments: {everything:?}");
    let (mut pages, mut seen, mut after) = (0, Vec::new(), None::<String>);
    loop {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let path = format!("/admin/audit?day={day}&limit=2{cursor}");
        let page = audited.call(&operations(), "GET", &path, None, 200).await;
        let records = page["records"].as_array().unwrap();
        assert!(records.len() <= 2);
        seen.extend(records.iter().map(|r| (r["subject"].clone(), r["action"].clone(), r["after"].clone())));
        pages += 1;
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<_> = (everything.iter())
        .map(|r| {
            (json!(r.subject), json!(r.action), serde_json::from_str::<Value>(r.after.as_deref().unwrap()).unwrap())
        })
        .collect();
    assert_eq!(seen, expected, "every record once, in order, over {pages} pages");
    assert_eq!(pages, everything.len().div_ceil(2));

    // A day's cursor named on a subject's trail still reads only that subject.
    let first = audited.call(&operations(), "GET", &format!("/admin/audit?day={day}&limit=1"), None, 200).await;
    let next = first["next"].as_str().unwrap();
    let path = format!("/admin/audit?subject=stock/TEA/HZ&after={next}");
    let page = audited.call(&operations(), "GET", &path, None, 200).await;
    assert!(page["records"].as_array().unwrap().iter().all(|r| r["subject"] == "stock/TEA/HZ"), "{page}");

    for (query, field) in [
        ("subject=stock/TEA/HZ&day=2026-01-01", "subject"),
        ("", "subject"),
        ("day=2026-13-01", "day"),
        ("day=2026-01-01&limit=0", "limit"),
        ("day=2026-01-01&after=not-a-cursor", "after"),
    ] {
        let problem = audited.call(&operations(), "GET", &format!("/admin/audit?{query}"), None, 400).await;
        assert_eq!(problem["errors"][0]["field"], json!(field), "{query}: {problem}");
    }
}

/// Adjustments racing each other on one count: each one that answers 200 is one record, the
/// records chain (each before is an earlier after), and the count moved by exactly their deltas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_adjustments_each_leave_one_record_and_the_records_chain() {
    let (stack, clock) = stack().await;
    let audited = Audited::new(&stack, clock);
    let staff = orderflow_tests::fixtures::staff_as;
    let calls = (1..=12).map(|delta| {
        let deps = stack.staff();
        let body = json!({"delta": delta, "reason": "recount"});
        let path = "/admin/stock/TEA/HZ/adjustments";
        async move {
            (
                delta,
                staff(
                    Some(warehouse_staff()),
                    &deps,
                    "POST",
                    path,
                    "/admin/stock/{sku}/{warehouse}/adjustments",
                    Some(body),
                )
                .await
                .0,
            )
        }
    });
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|(_, status)| [200, 409].contains(status)), "{answers:?}");
    let applied: i64 = answers.iter().filter(|(_, status)| *status == 200).map(|(delta, _)| delta).sum();
    assert_eq!(stack.stock("TEA", "HZ").await.available, 1_000 + applied);
    let trail = audited.call(&operations(), "GET", "/admin/audit?subject=stock/TEA/HZ", None, 200).await;
    let adjustments: Vec<_> =
        trail["records"].as_array().unwrap().iter().filter(|r| r["action"] == "stock.adjust").collect();
    assert_eq!(adjustments.len(), answers.iter().filter(|(_, status)| *status == 200).count());
    let mut counts: Vec<(i64, i64)> = adjustments
        .iter()
        .map(|r| (r["before"]["available"].as_i64().unwrap(), r["after"]["available"].as_i64().unwrap()))
        .collect();
    counts.sort();
    let mut at = 1_000;
    for (before, after) in counts {
        assert_eq!(before, at, "each adjustment starts where another ended");
        at = after;
    }
    assert_eq!(at, 1_000 + applied);
}
