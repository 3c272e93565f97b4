//! Telling customers things (the step-up verification code, a parcel's delay) through a port,
//! so the rest of the system does not care which SMS vendor is behind it.

use crate::domain::{CustomerId, OrderId, Phone};
use std::future::Future;
use std::pin::Pin;

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
    fn send_verification_code<'a>(&'a self, order_id: OrderId, phone: &'a Phone, code: &'a str) -> NotifyFuture<'a>;

    fn tell_customer<'a>(&'a self, message: &'a CustomerMessage) -> NotifyFuture<'a>;
}

/// Hands messages to the notification service's queue (`NOTIFICATION_QUEUE_URL`), which owns
/// the SMS vendor. The queue is encrypted; the code never goes on the event bus or in logs.
#[derive(Debug, Clone)]
pub struct SqsNotifier {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsNotifier {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

impl SqsNotifier {
    async fn send(&self, message: serde_json::Value) -> Result<(), NotifyError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.to_string())
            .send()
            .await
            .map_err(|e| NotifyError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

impl Notifier for SqsNotifier {
    fn send_verification_code<'a>(&'a self, order_id: OrderId, phone: &'a Phone, code: &'a str) -> NotifyFuture<'a> {
        Box::pin(self.send(serde_json::json!({
            "template": "order-verification-code",
            "order_id": order_id,
            "phone": phone.as_str(),
            "code": code,
        })))
    }

    fn tell_customer<'a>(&'a self, message: &'a CustomerMessage) -> NotifyFuture<'a> {
        Box::pin(self.send(serde_json::to_value(message).expect("a message serialises")))
    }
}
