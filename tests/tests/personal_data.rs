//! Personal data at rest and on the way out: the table never holds an order's phone, recipient,
//! street, house number or client IP in the clear; the order's views show the phone's hint;
//! staff read the clear values only with a reason, and that read is audited; sealing calls KMS
//! once per cached data key, not per order.

use orderflow::domain::OrderId;
use orderflow::notify::{Notifier, SqsNotifier};
use orderflow::personal::Purpose;
use orderflow_tests::fixtures::{
    claims, customer, exchange, json_request, one_warehouse, operations, order_body, submit, table_text,
};
use orderflow_tests::Stack;
use serde_json::{json, Value};

/// The test order's personal values, as `order_body` sends them (and the request's source IP),
/// as they would show in a JSON answer.
const CLEAR: [&str; 5] = ["13800138000", "Li Lei", "Wensan Road", "\"88\"", "198.51.100.23"];
/// The same, as they would show in an item DynamoDB returns.
const CLEAR_ITEM: [&str; 5] = ["13800138000", "Li Lei", "Wensan Road", "S(\"88\")", "198.51.100.23"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_holds_no_clear_personal_value_and_staff_read_it_only_for_a_reason() {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    let (status, accepted) = submit(&stack.intake(), "pii-1", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["order_id"].as_str().unwrap().to_owned();
    stack.relay().await;

    let table = table_text(&stack).await;
    assert!(table.contains(&id), "the scan reads the order");
    for clear in CLEAR_ITEM {
        assert!(!table.contains(clear), "{clear} in the table");
    }
    let stored = stack.store().order(OrderId::parse(&id).unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.phone_hint, "**********8000");
    assert_eq!(stored.personal.as_ref().unwrap().fields.len(), 5, "phone, recipient, street, house number, IP");

    // The owner reads their own data (not the IP) beside the masked view; a shop backend acting
    // for them sees only the masks.
    let path = format!("/orders/{id}");
    let view_as = |who| {
        let request = json_request(Some(who), "GET", &path, "/orders/{id}", None);
        let deps = stack.intake();
        async move { exchange(request, |r| orderflow::handlers::order_intake::handle(&deps, r)).await.1 }
    };
    let mut view = view_as(customer(stored.customer_id.as_str())).await;
    let own = view.as_object_mut().unwrap().remove("personal").expect("the customer's own data");
    assert_eq!(
        own,
        json!({"phone": "+8613800138000", "recipient": "Li Lei", "street": "Wensan Road", "house_number": "88"})
    );
    for view in [view, view_as(orderflow_tests::fixtures::shop()).await] {
        assert_eq!(
            (view["phone"].as_str(), view["ship_to"]["city"].as_str()),
            (Some("**********8000"), Some("Hangzhou"))
        );
        for clear in CLEAR {
            assert!(!view.to_string().contains(clear), "{clear} in {view}");
        }
    }

    // Staff read the clear values with a reason; without one, nothing is read or recorded.
    let staff = |group: &'static str, body: Option<Value>| {
        let path = format!("/admin/orders/{id}/personal-data");
        let who = claims(&[("sub", "cs-dan"), ("groups", group)]);
        let request = json_request(Some(who), "POST", &path, "/admin/orders/{id}/personal-data", body);
        let deps = stack.staff();
        async move { exchange(request, |r| orderflow::handlers::staff_api::handle(&deps, r)).await }
    };
    let (status, problem) = staff("[customer-service]", Some(json!({"reason": "  "}))).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("reason")), "{problem}");
    let trail = stack.store().audit_of_day(stack.clock.now().date()).await.unwrap();
    assert!(trail.iter().all(|r| r.action != "personal-data.read"), "no reason, no record");
    let why = json!({"reason": "the courier cannot find the door"});
    let (status, revealed) = staff("[customer-service]", Some(why.clone())).await;
    assert_eq!(status, 200, "{revealed}");
    assert_eq!(revealed["personal"]["phone"], "+8613800138000");
    assert_eq!(revealed["personal"]["recipient"], "Li Lei");
    assert_eq!(revealed["personal"]["street"], "Wensan Road");
    assert_eq!(revealed["personal"]["house_number"], "88");
    assert!(revealed["personal"].get("client_ip").is_none(), "the client IP is risk's: {revealed}");
    let (status, as_risk) = staff("[risk]", Some(why)).await;
    assert_eq!((status, as_risk["personal"]["client_ip"].as_str()), (200, Some("198.51.100.23")));
    let trail = stack.store().audit_of_day(stack.clock.now().date()).await.unwrap();
    let reads: Vec<_> = trail.iter().filter(|r| r.action == "personal-data.read").collect();
    assert_eq!(reads.len(), 2, "{trail:?}");
    assert_eq!((reads[0].actor.as_str(), reads[0].subject.clone()), ("staff:cs-dan", format!("orders/{id}")));
    let shown = |i: usize| serde_json::from_str::<Value>(reads[i].after.as_deref().unwrap()).unwrap();
    assert_eq!(shown(0)["reason"], "the courier cannot find the door");
    assert_eq!(shown(0)["fields"], json!(["phone", "recipient", "street", "house_number"]));
    assert_eq!(shown(1)["fields"], json!(["phone", "recipient", "street", "house_number", "client_ip"]));

    // The staff order view and the review list keep to the hint.
    let request = json_request(Some(operations()), "GET", &format!("/admin/orders/{id}"), "/admin/orders/{id}", None);
    let (_, view) =
        exchange(request, |r| async { orderflow::handlers::staff_api::handle(&stack.staff(), r).await }).await;
    for clear in CLEAR {
        assert!(!view.to_string().contains(clear), "{clear} in {view}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_sealed_under_a_cached_data_key_not_one_kms_call_each() {
    let (stack, _, calls) = Stack::for_test_counting_calls().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    let intake = stack.intake();
    for i in 0..20 {
        let body = orderflow_tests::fixtures::from_own_customer(&order_body(&[("TEA", 1)], "Zhejiang"));
        assert_eq!(submit(&intake, &format!("pii-{i}"), &body).await.0, 202);
    }
    let kms: Vec<_> =
        calls.snapshot().into_iter().filter(|(k, _)| k.contains("GenerateDataKey") || k.contains("Decrypt")).collect();
    // One data key sealed the 20 orders; the other is the fingerprint key, made once for the
    // deployment by its first user (a new instance unwraps it instead).
    assert_eq!(kms, [("order-intake KMS.GenerateDataKey".to_owned(), 2)], "two data keys for 20 orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_code_goes_to_the_notification_queue_with_only_the_phone_sealed_for_it() {
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    orderflow_tests::fixtures::every_order_scores(&stack, 85).await; // step-up: a code is sent
    let (_, accepted) = submit(&stack.intake(), "code", &order_body(&[("TEA", 1)], "Zhejiang")).await;
    let id = OrderId::parse(accepted["order_id"].as_str().unwrap()).unwrap();
    clock.advance(time::Duration::seconds(61));
    let owner = customer(stack.store().order(id).await.unwrap().unwrap().customer_id.as_str());
    let path = format!("/orders/{id}/verification/resend");
    let request = json_request(Some(owner), "POST", &path, "/orders/{id}/verification/resend", None);
    let (status, body) =
        exchange(request, |r| async { orderflow::handlers::order_intake::handle(&stack.intake(), r).await }).await;
    assert_eq!(status, 202, "{body}");

    let sent: Vec<_> = stack.notifier.sent().into_iter().filter(|s| s.order_id == id).collect();
    assert_eq!(sent.len(), 2, "the first code and the resent one");
    assert!(sent.iter().all(|s| s.phone == "**********8000"), "to the order's phone: {sent:?}");

    // The adapter that hands codes to the notification service's queue seals the phone.
    let queue = stack.provisioned.queue_url("NotificationQueue").to_owned();
    let notifier = SqsNotifier::new(stack.sqs_for("order-intake"), &queue)
        .sealing_phones_with(stack.sealer_of("order-intake", Purpose::Notification));
    let phone = orderflow::domain::Phone::parse("13800138000").unwrap();
    notifier.send_verification_code(id, &phone, "424242").await.unwrap();
    let received = stack.sqs.receive_message().queue_url(&queue).wait_time_seconds(2).send().await.unwrap();
    let body = received.messages()[0].body().unwrap().to_owned();
    assert!(!body.contains("13800138000"), "sealed: {body}");
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["code"], "424242");
    let sealed: orderflow::personal::SealedPersonal = serde_json::from_value(message["to"]["sealed"].clone()).unwrap();
    assert_eq!(sealed.fields.keys().collect::<Vec<_>>(), ["phone"], "only the phone travels");
    let context = message["to"]["context"].as_str().unwrap();
    // The notification service opens it with a key of its purpose; the table's purpose does not.
    let service = stack.sealer_of("notification-service", Purpose::Notification);
    assert_eq!(service.open_field(&sealed, context, "phone").await.unwrap().as_deref(), Some("+8613800138000"));
    let table_side = stack.sealer_of("staff-api", Purpose::PersonalData);
    assert!(table_side.open_field(&sealed, context, "phone").await.is_err(), "another purpose does not unwrap it");
}
