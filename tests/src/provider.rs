//! The mock payment provider's refunds: takes refunds through the PaymentProvider port and pays
//! each refund id once however often it is asked (as the provider's idempotency key promises),
//! records every call, repeats included, and can be told to lose its next answers (the refund is
//! paid, the caller hears nothing: the provider timeout of the issue) or to decline a payment's
//! refunds. The local stack's stand-in serves it over HTTP and confirms each refund by a signed
//! webhook ([`confirmation`]).

use orderflow::payment_provider::{
    PaymentProvider, ReceiptStatus, RefundCallError, RefundFuture, RefundInstruction, RefundReceipt,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct MockProvider {
    /// Paid refunds, by refund id (the idempotency key).
    paid: Mutex<HashMap<String, (RefundInstruction, String)>>,
    calls: Mutex<Vec<RefundInstruction>>,
    lose_answers: AtomicUsize,
    declined_payments: Mutex<Vec<String>>,
}

impl MockProvider {
    /// The next `n` refunds are paid but their answers lost.
    pub fn lose_next_answers(&self, n: usize) {
        self.lose_answers.store(n, Ordering::SeqCst);
    }

    /// Refunds of `payment_id` are declined from now on.
    pub fn decline_payment(&self, payment_id: &str) {
        self.declined_payments.lock().expect("provider lock").push(payment_id.to_owned());
    }

    /// Every refund call made, repeats included.
    pub fn calls(&self) -> Vec<RefundInstruction> {
        self.calls.lock().expect("provider lock").clone()
    }

    /// Every refund paid (once each), with the provider's refund id.
    pub fn paid(&self) -> Vec<(RefundInstruction, String)> {
        self.paid.lock().expect("provider lock").values().cloned().collect()
    }

    /// What went back to `payment_id` in total.
    pub fn paid_back(&self, payment_id: &str) -> i64 {
        self.paid().iter().filter(|(i, _)| i.payment_id == payment_id).map(|(i, _)| i.amount_minor).sum()
    }

    fn take(&self, instruction: &RefundInstruction) -> Result<RefundReceipt, RefundCallError> {
        self.calls.lock().expect("provider lock").push(instruction.clone());
        if self.declined_payments.lock().expect("provider lock").contains(&instruction.payment_id) {
            return Err(RefundCallError::Declined("the payment cannot be refunded".into()));
        }
        let mut paid = self.paid.lock().expect("provider lock");
        let (first, provider_refund_id) = paid
            .entry(instruction.refund_id.clone())
            .or_insert_with(|| (instruction.clone(), format!("re_{}", ulid::Ulid::new())))
            .clone();
        drop(paid);
        if first != *instruction {
            // As real providers do: one key, one request; another body under it is an error.
            return Err(RefundCallError::Declined("the idempotency key was used for another refund".into()));
        }
        let lost = self.lose_answers.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if lost {
            return Err(RefundCallError::Unavailable("timed out after 5 s".into()));
        }
        Ok(RefundReceipt { provider_refund_id, status: ReceiptStatus::Pending })
    }
}

impl PaymentProvider for MockProvider {
    fn refund<'a>(&'a self, instruction: &'a RefundInstruction) -> RefundFuture<'a> {
        Box::pin(async move { self.take(instruction) })
    }
}

/// The provider's signed word on a refund it took (`kind`: `refund.succeeded` or
/// `refund.failed`): its body, and the `Payment-Signature` header signed with `secret` at `at`
/// (unix seconds).
pub fn confirmation(
    kind: &str,
    instruction: &RefundInstruction,
    provider_refund_id: &str,
    secret: &str,
    at: i64,
) -> (String, String) {
    let body = serde_json::json!({
        "id": format!("evt_{}", ulid::Ulid::new()),
        "type": kind,
        "created": at,
        "data": {
            "refund_id": instruction.refund_id,
            "provider_refund_id": provider_refund_id,
            "payment_id": instruction.payment_id,
            "amount_minor": instruction.amount_minor,
            "currency": instruction.currency,
        }
    })
    .to_string();
    let signature = orderflow::domain::payment::sign(secret.as_bytes(), at, body.as_bytes());
    (body, signature)
}
