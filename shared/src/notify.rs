//! Telling customers things (the step-up verification code, a parcel's delay) through a port,
//! so the rest of the system does not care which SMS vendor is behind it.

use crate::aws::json_service::JsonService;
use crate::domain::{CustomerId, OrderId, Phone};
use crate::personal::Sealer;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("notification not sent: {0}")]
pub struct NotifyError(pub String);

pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// A message about an order, by template: the notification service looks up how to reach the
/// customer, so no contact detail travels. `key` is the same for a repeat of the same message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CustomerMessage {
    pub template: &'static str,
    pub customer_id: CustomerId,
    pub order_id: OrderId,
    pub key: String,
}

pub trait Notifier: Send + Sync {
    /// A step-up code for an order, to `phone`: the one place a phone travels. An adapter that
    /// sends it anywhere seals it first ([`SqsNotifier`]).
    fn send_verification_code<'a>(&'a self, order_id: OrderId, phone: &'a Phone, code: &'a str) -> NotifyFuture<'a>;

    fn tell_customer<'a>(&'a self, message: &'a CustomerMessage) -> NotifyFuture<'a>;
}

/// Hands messages to the notification service's queue (`NOTIFICATION_QUEUE_URL`), which owns
/// the SMS vendor. The code never goes on the event bus or in logs; the phone goes sealed under
/// a data key of its own purpose (`orderflow-notification`), which the notification service may
/// unwrap and which opens nothing else: `{"template", "order_id", "code", "to": {"context":
/// "orders/<id>", "sealed": {"key", "fields": {"phone"}}}}`, the phone's field base64 of a 12-byte
/// nonce and its AES-256-GCM ciphertext, with `<context>/phone` as associated data.
///
/// A send that got no answer in time is made again ([`crate::aws::signing`]), so the service may
/// receive a message twice: a customer message's `key`, and a code's order and code, are the same
/// in both, for it to drop the repeat.
#[derive(Clone)]
pub struct SqsNotifier {
    sqs: JsonService,
    queue_url: String,
    /// Seals phones; a notifier without one sends messages to customers only (logistics).
    phones: Option<Arc<Sealer>>,
}

impl SqsNotifier {
    pub fn new(sqs: JsonService, queue_url: impl Into<String>) -> Self {
        Self { sqs, queue_url: queue_url.into(), phones: None }
    }

    /// The same, able to send verification codes: `sealer` (of purpose notification) seals the phone.
    pub fn sealing_phones_with(self, sealer: Arc<Sealer>) -> Self {
        Self { phones: Some(sealer), ..self }
    }
}

impl SqsNotifier {
    async fn send(&self, message: serde_json::Value) -> Result<(), NotifyError> {
        let input = serde_json::json!({ "QueueUrl": self.queue_url, "MessageBody": message.to_string() });
        let _: serde::de::IgnoredAny =
            self.sqs.call("SendMessage", &input).await.map_err(|e| NotifyError(e.to_string()))?;
        Ok(())
    }
}

impl Notifier for SqsNotifier {
    fn send_verification_code<'a>(&'a self, order_id: OrderId, phone: &'a Phone, code: &'a str) -> NotifyFuture<'a> {
        Box::pin(async move {
            let context = crate::personal::order_context(order_id);
            let sealer = self.phones.as_ref().ok_or_else(|| NotifyError("no sealer for phones".into()))?;
            let sealed = sealer.seal_fields(&[("phone", phone.as_str())], &context).await;
            let sealed = sealed.map_err(|e| NotifyError(e.to_string()))?;
            self.send(serde_json::json!({
                "template": "order-verification-code",
                "order_id": order_id,
                "to": { "context": context, "sealed": sealed },
                "code": code,
            }))
            .await
        })
    }

    fn tell_customer<'a>(&'a self, message: &'a CustomerMessage) -> NotifyFuture<'a> {
        Box::pin(self.send(serde_json::to_value(message).expect("a message serialises")))
    }
}
