//! Refunds paid once, against the emulators: every RefundRequested goes through the refunds
//! function (from the RefundsQueue the template's rule fills) to the mock provider, and the
//! provider's signed confirmation through the payment webhook settles it.

use orderflow::domain::refund::{Refund, RefundStatus};
use orderflow::domain::OrderId;
use orderflow::events::{Announcement, DomainEvent, RefundRequested};
use orderflow::handlers::refunds::handle_batch;
use orderflow_tests::fixtures::{cancel_order, deliver_payment, one_warehouse, TEST_PRICE_MINOR};
use orderflow_tests::warehouse::paid;
use orderflow_tests::Stack;
use serde_json::Value;

const QUEUE: &str = "RefundsQueue";

async fn seeded() -> Stack {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 50)])).await.unwrap();
    stack
}

/// A paid order of `units` TEA cancelled by the shop before hand-over: its RefundRequested (the
/// whole payment) relayed onto the refunds queue.
async fn cancelled_after_payment(stack: &Stack, units: i64) -> OrderId {
    let id = paid(stack, &[("TEA", units)]).await;
    assert_eq!(cancel_order(&stack.intake(), &id.to_string()).await.0, 200);
    stack.relay().await;
    id
}

fn refund_request(id: OrderId, amount_minor: i64, reason: &str) -> RefundRequested {
    RefundRequested {
        order_id: id.to_string(),
        payment_id: format!("pay_{id}"),
        amount_minor,
        currency: "CNY".into(),
        reason: reason.into(),
        lines: Vec::new(),
    }
}

/// Requests published as the relay would, each with its own event id (`RefundRequested:<order>:<cause>`,
/// as the relay names a claim's or a ticket's).
async fn request_refunds(stack: &Stack, id: OrderId, requests: Vec<(String, RefundRequested)>) {
    let announcements: Vec<Announcement> = requests
        .into_iter()
        .map(|(cause, r)| Announcement {
            event_id: format!("RefundRequested:{id}:{cause}"),
            entity_id: id.to_string(),
            version: None,
            event: DomainEvent::RefundRequested(r),
        })
        .collect();
    stack.publish_as_relay(&announcements).await;
}

/// The provider's word (`kind`) on everything it took, through the payment webhook.
async fn confirm_all(stack: &Stack, kind: &str) -> Vec<(u16, Value)> {
    let mut answers = Vec::new();
    for (instruction, provider_refund_id) in stack.provider.paid() {
        let (body, _) = orderflow_tests::provider::confirmation(kind, &instruction, &provider_refund_id, "", 0);
        let event: Value = serde_json::from_str(&body).unwrap();
        answers.push(deliver_payment(stack, &event).await);
    }
    answers
}

async fn refunds_of(stack: &Stack, messages: &aws_lambda_events::event::sqs::SqsEvent) -> Vec<Refund> {
    let mut refunds = Vec::new();
    for message in &messages.records {
        let envelope: Value = serde_json::from_str(message.body.as_deref().unwrap()).unwrap();
        let id = Refund::id_for(envelope["detail"]["event_id"].as_str().unwrap());
        refunds.push(stack.store().refund(&id).await.unwrap().expect("recorded"));
    }
    refunds
}

#[tokio::test]
async fn a_refund_retried_after_a_provider_timeout_pays_once() {
    let stack = seeded().await;
    let id = cancelled_after_payment(&stack, 2).await;
    let message = stack.receive_exactly(QUEUE, 1).await;
    stack.provider.lose_next_answers(1);
    let first = handle_batch(&stack.refunds(), message.clone()).await;
    assert_eq!(first.batch_item_failures.len(), 1, "no answer: the message comes back");
    assert_eq!(refunds_of(&stack, &message).await[0].status, RefundStatus::Requested);
    let again = handle_batch(&stack.refunds(), message.clone()).await;
    assert!(again.batch_item_failures.is_empty(), "{again:?}");
    stack.delete(QUEUE, &message.records).await;

    let calls = stack.provider.calls();
    assert_eq!(calls.len(), 2, "asked twice");
    assert_eq!(calls[0], calls[1], "the same refund, with the same key, both times");
    assert_eq!(stack.provider.paid_back(&format!("pay_{id}")), 2 * TEST_PRICE_MINOR, "paid once");
    let refund = &refunds_of(&stack, &message).await[0];
    assert_eq!(refund.status, RefundStatus::Submitted);

    let observer = stack.observe_bus().await;
    assert_eq!(confirm_all(&stack, "refund.succeeded").await, [(200, serde_json::json!({"status": "accepted"}))]);
    assert_eq!(confirm_all(&stack, "refund.succeeded").await, [(200, serde_json::json!({"status": "duplicate"}))]);
    assert_eq!(stack.store().refund(&refund.refund_id).await.unwrap().unwrap().status, RefundStatus::Issued);
    stack.relay().await;
    let events = observer.events_until_quiet(std::time::Duration::from_millis(500)).await;
    let issued: Vec<&Value> = events.iter().filter(|e| e["detail-type"] == "RefundIssued").collect();
    assert_eq!(issued.len(), 1, "{events:?}");
    assert_eq!(issued[0]["detail"]["amount_minor"], 2 * TEST_PRICE_MINOR);
    assert_eq!(issued[0]["detail"]["order_id"], id.to_string());
}

#[tokio::test]
async fn one_request_delivered_twice_at_once_pays_once() {
    let stack = seeded().await;
    let id = cancelled_after_payment(&stack, 3).await;
    let message = stack.receive_exactly(QUEUE, 1).await;
    let deps = stack.refunds();
    let (a, b) = tokio::join!(handle_batch(&deps, message.clone()), handle_batch(&deps, message.clone()));
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty(), "{a:?} {b:?}");
    assert_eq!(stack.provider.paid().len(), 1);
    let calls = stack.provider.calls();
    assert!(calls.iter().all(|c| c == &calls[0]), "every call names the one refund: {calls:?}");
    assert_eq!(stack.provider.paid_back(&format!("pay_{id}")), 3 * TEST_PRICE_MINOR);
    let ledger = stack.store().payment_refunds(&format!("pay_{id}")).await.unwrap().unwrap();
    assert_eq!((ledger.paid_minor, ledger.refunded_minor), (3 * TEST_PRICE_MINOR, 3 * TEST_PRICE_MINOR));
}

#[tokio::test]
async fn a_refund_beyond_what_the_payment_has_left_is_refused_and_never_sent() {
    let stack = seeded().await;
    let id = paid(&stack, &[("TEA", 2)]).await;
    let total = 2 * TEST_PRICE_MINOR;
    request_refunds(&stack, id, vec![("first".into(), refund_request(id, total - 100, "shortage"))]).await;
    let first = stack.receive_exactly(QUEUE, 1).await;
    assert!(handle_batch(&stack.refunds(), first.clone()).await.batch_item_failures.is_empty());
    request_refunds(&stack, id, vec![("second".into(), refund_request(id, 101, "a claim"))]).await;
    let second = stack.receive_exactly(QUEUE, 1).await;
    assert!(handle_batch(&stack.refunds(), second.clone()).await.batch_item_failures.is_empty());

    let refused = &refunds_of(&stack, &second).await[0];
    assert_eq!(refused.status, RefundStatus::Refused);
    assert!(refused.outcome.as_deref().unwrap().contains("100 left"), "{refused:?}");
    assert_eq!(stack.provider.calls().len(), 1, "the refused refund never reached the provider");
    assert_eq!(stack.provider.paid_back(&format!("pay_{id}")), total - 100);

    let observer = stack.observe_bus().await;
    stack.relay().await;
    let events = observer.events_until_quiet(std::time::Duration::from_millis(500)).await;
    assert_eq!(events.iter().filter(|e| e["detail-type"] == "RefundRefused").count(), 1, "{events:?}");
}

#[tokio::test]
async fn two_refunds_at_once_that_only_fit_one_at_a_time_pay_one() {
    let stack = seeded().await;
    let id = paid(&stack, &[("TEA", 2)]).await;
    let total = 2 * TEST_PRICE_MINOR;
    // A first refund, so the race is over the running total rather than its creation.
    request_refunds(&stack, id, vec![("shortage".into(), refund_request(id, 100, "shortage"))]).await;
    let first = stack.receive_exactly(QUEUE, 1).await;
    assert!(handle_batch(&stack.refunds(), first).await.batch_item_failures.is_empty());
    let most = total - 100 - 1;
    let requests = vec![
        ("ticket-a".to_owned(), refund_request(id, most, "return")),
        ("ticket-b".to_owned(), refund_request(id, most, "return")),
    ];
    request_refunds(&stack, id, requests).await;
    let messages = stack.receive_exactly(QUEUE, 2).await;
    let (one, other) = messages.records.split_at(1);
    let batch = |records: &[aws_lambda_events::event::sqs::SqsMessage]| {
        let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
        event.records = records.to_vec();
        event
    };
    let deps = stack.refunds();
    let (a, b) = tokio::join!(handle_batch(&deps, batch(one)), handle_batch(&deps, batch(other)));
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty(), "{a:?} {b:?}");
    let statuses: Vec<RefundStatus> = refunds_of(&stack, &messages).await.iter().map(|r| r.status).collect();
    assert!(statuses.contains(&RefundStatus::Refused) && statuses.contains(&RefundStatus::Submitted), "{statuses:?}");
    assert_eq!(stack.provider.paid_back(&format!("pay_{id}")), 100 + most, "never more than was paid");
    let ledger = stack.store().payment_refunds(&format!("pay_{id}")).await.unwrap().unwrap();
    assert_eq!(ledger.refunded_minor, 100 + most);
}

#[tokio::test]
async fn a_duplicate_charge_is_refunded_whole_and_once() {
    let stack = seeded().await;
    let id = paid(&stack, &[("TEA", 1)]).await;
    let now = stack.clock.now().unix_timestamp();
    let again = orderflow_tests::fixtures::payment_event(
        "payment.succeeded",
        &id.to_string(),
        TEST_PRICE_MINOR,
        "CNY",
        "pay_twice",
        now,
    );
    assert_eq!(deliver_payment(&stack, &again).await.0, 200);
    orderflow_tests::fixtures::process_payment_queue(&stack, &stack.payment_processor()).await;
    stack.relay().await;
    let message = stack.receive_exactly(QUEUE, 1).await;
    let deps = stack.refunds();
    assert!(handle_batch(&deps, message.clone()).await.batch_item_failures.is_empty());
    assert!(handle_batch(&deps, message.clone()).await.batch_item_failures.is_empty());
    assert_eq!(stack.provider.paid_back("pay_twice"), TEST_PRICE_MINOR, "the second charge, once");
    assert_eq!(stack.provider.paid_back(&format!("pay_{id}")), 0, "the order's own payment is kept");
    let ledger = stack.store().payment_refunds("pay_twice").await.unwrap().unwrap();
    assert_eq!((ledger.paid_minor, ledger.refunded_minor), (TEST_PRICE_MINOR, TEST_PRICE_MINOR));
}

#[tokio::test]
async fn a_refund_the_provider_reports_failed_is_declined_until_it_reports_it_paid() {
    let stack = seeded().await;
    let id = cancelled_after_payment(&stack, 1).await;
    let message = stack.receive_exactly(QUEUE, 1).await;
    assert!(handle_batch(&stack.refunds(), message.clone()).await.batch_item_failures.is_empty());
    let payment = format!("pay_{id}");
    let observer = stack.observe_bus().await;
    assert_eq!(confirm_all(&stack, "refund.failed").await[0].1["status"], "accepted");
    assert_eq!(refunds_of(&stack, &message).await[0].status, RefundStatus::Declined);
    assert_eq!(stack.store().payment_refunds(&payment).await.unwrap().unwrap().refunded_minor, 0, "freed");
    stack.relay().await;
    let events = observer.events_until_quiet(std::time::Duration::from_millis(500)).await;
    assert_eq!(events.iter().filter(|e| e["detail-type"] == "RefundDeclined").count(), 1, "{events:?}");
    // The provider's later word that the money did go back wins: the ledger counts it again.
    assert_eq!(confirm_all(&stack, "refund.succeeded").await[0].1["status"], "accepted");
    assert_eq!(refunds_of(&stack, &message).await[0].status, RefundStatus::Issued);
    let ledger = stack.store().payment_refunds(&payment).await.unwrap().unwrap();
    assert_eq!(ledger.refunded_minor, TEST_PRICE_MINOR);
}

#[tokio::test]
async fn a_refund_the_provider_declines_is_declined_and_its_amount_freed() {
    let stack = seeded().await;
    let id = paid(&stack, &[("TEA", 1)]).await;
    stack.provider.decline_payment(&format!("pay_{id}"));
    request_refunds(&stack, id, vec![("declined".into(), refund_request(id, TEST_PRICE_MINOR, "return"))]).await;
    let message = stack.receive_exactly(QUEUE, 1).await;
    assert!(handle_batch(&stack.refunds(), message.clone()).await.batch_item_failures.is_empty());
    assert_eq!(refunds_of(&stack, &message).await[0].status, RefundStatus::Declined);
    let ledger = stack.store().payment_refunds(&format!("pay_{id}")).await.unwrap().unwrap();
    assert_eq!(ledger.refunded_minor, 0, "the declined amount is free again");
}

#[tokio::test]
async fn a_confirmation_for_no_refund_of_ours_or_another_amount_is_refused() {
    let stack = seeded().await;
    let id = cancelled_after_payment(&stack, 1).await;
    let message = stack.receive_exactly(QUEUE, 1).await;
    assert!(handle_batch(&stack.refunds(), message.clone()).await.batch_item_failures.is_empty());
    let (mut instruction, provider_refund_id) = stack.provider.paid().remove(0);
    instruction.amount_minor += 1;
    let (body, _) =
        orderflow_tests::provider::confirmation("refund.succeeded", &instruction, &provider_refund_id, "", 0);
    let (status, problem) = deliver_payment(&stack, &serde_json::from_str(&body).unwrap()).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("refund-mismatch")));
    instruction.refund_id = Refund::id_for("never requested");
    let (body, _) =
        orderflow_tests::provider::confirmation("refund.succeeded", &instruction, &provider_refund_id, "", 0);
    let (status, problem) = deliver_payment(&stack, &serde_json::from_str(&body).unwrap()).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("refund-unknown")));
    let refund = &refunds_of(&stack, &message).await[0];
    assert_eq!((refund.status, refund.order_id.as_str()), (RefundStatus::Submitted, id.to_string().as_str()));
}
