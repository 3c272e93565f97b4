//! Telling customers things (the step-up verification code) through a port, so the rest of the
//! system does not care which SMS vendor is behind it.

use crate::domain::{OrderId, Phone};
use std::future::Future;
use std::pin::Pin;

#[derive(Debug, thiserror::Error)]
#[error("notification not sent: {0}")]
pub struct NotifyError(pub String);

pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

pub trait Notifier: Send + Sync {
    fn send_verification_code<'a>(&'a self, order_id: OrderId, phone: &'a Phone, code: &'a str) -> NotifyFuture<'a>;
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

impl Notifier for SqsNotifier {
    fn send_verification_code<'a>(&'a self, order_id: OrderId, phone: &'a Phone, code: &'a str) -> NotifyFuture<'a> {
        Box::pin(async move {
            let message = serde_json::json!({
                "template": "order-verification-code",
                "order_id": order_id,
                "phone": phone.as_str(),
                "code": code,
            });
            self.client
                .send_message()
                .queue_url(&self.queue_url)
                .message_body(message.to_string())
                .send()
                .await
                .map_err(|e| NotifyError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
            Ok(())
        })
    }
}
