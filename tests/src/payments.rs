//! The payment provider's side of a test: its events, signed and delivered to the webhook as
//! the provider would, and the payment processor run over what reached its queue.

use crate::fixtures::{exchange, http};
use serde_json::{json, Value};

/// A payment provider's event, as it would POST it.
pub fn payment_event(kind: &str, order_id: &str, amount: i64, currency: &str, payment_id: &str, created: i64) -> Value {
    json!({
        "id": format!("evt_{}", ulid::Ulid::new()),
        "type": kind,
        "created": created,
        "data": {"payment_id": payment_id, "order_id": order_id, "amount_minor": amount, "currency": currency}
    })
}

/// POST a provider event to the webhook, signed with `secret` at `signed_at`.
pub async fn deliver_payment_signed(
    stack: &crate::Stack,
    event: &Value,
    secret: &[u8],
    signed_at: i64,
) -> (u16, Value) {
    let body = event.to_string();
    let signature = orderflow::domain::payment::sign(secret, signed_at, body.as_bytes());
    let request = http(
        "POST",
        "/payments/webhook",
        "/payments/webhook",
        &[("content-type", "application/json"), ("payment-signature", &signature)],
        Some(body),
    );
    let deps = stack.payment_webhook();
    exchange(request, |r| orderflow::handlers::payment_webhook::handle(&deps, r)).await
}

/// POST a provider event to the webhook, signed as the provider would sign it now.
pub async fn deliver_payment(stack: &crate::Stack, event: &Value) -> (u16, Value) {
    let now = stack.clock.now().unix_timestamp();
    deliver_payment_signed(stack, event, crate::Stack::webhook_secret().as_bytes(), now).await
}

/// Relay what the webhook stored, run the payment processor over everything that reached its
/// queue, batch after batch, and relay what that changed; how many messages it processed.
pub async fn process_payment_queue(
    stack: &crate::Stack,
    deps: &orderflow::handlers::payment_processor::ProcessorDeps,
) -> usize {
    const QUEUE: &str = "PaymentEventsQueue";
    stack.relay().await;
    let mut processed = 0;
    loop {
        let event = stack.receive(QUEUE, 10, 1).await;
        if event.records.is_empty() {
            break;
        }
        processed += event.records.len();
        let response = orderflow::handlers::payment_processor::handle_batch(deps, event.clone()).await;
        assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
        stack.delete(QUEUE, &event.records).await;
    }
    assert!(processed > 0, "the stream carried something to the processor");
    stack.relay().await;
    processed
}
