//! The local stack's stand-in for the SMS vendor: verification codes and messages to customers
//! (a parcel delayed) are kept in memory, logged and listed at `GET /_mock-notifier/messages`,
//! so a person can complete a step-up check.

use orderflow::domain::{OrderId, Phone};
use orderflow::notify::{CustomerMessage, Notifier, NotifyFuture};
use std::sync::Mutex;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SentCode {
    pub order_id: OrderId,
    /// The phone's hint: the stand-in keeps nothing more.
    pub phone: String,
    pub code: String,
}

#[derive(Debug, Default)]
pub struct LocalNotifier {
    sent: Mutex<Vec<SentCode>>,
    told: Mutex<Vec<CustomerMessage>>,
}

impl LocalNotifier {
    /// Every message to customers, in the order sent, repeats included (a real notification
    /// service drops a repeated key; tests count what the code sent).
    pub fn told(&self) -> Vec<CustomerMessage> {
        self.told.lock().expect("notifier lock").clone()
    }

    pub fn sent(&self) -> Vec<SentCode> {
        self.sent.lock().expect("notifier lock").clone()
    }

    /// The last code sent for an order.
    pub fn code_for(&self, order_id: OrderId) -> Option<String> {
        self.sent().into_iter().rev().find(|m| m.order_id == order_id).map(|m| m.code)
    }
}

impl Notifier for LocalNotifier {
    fn send_verification_code<'a>(&'a self, order_id: OrderId, phone: &'a Phone, code: &'a str) -> NotifyFuture<'a> {
        Box::pin(async move {
            tracing::info!(order_id = %order_id, code, "verification code (local stack: not sent anywhere)");
            let phone = phone.masked();
            self.sent.lock().expect("notifier lock").push(SentCode { order_id, phone, code: code.to_owned() });
            Ok(())
        })
    }

    fn tell_customer<'a>(&'a self, message: &'a CustomerMessage) -> NotifyFuture<'a> {
        Box::pin(async move {
            tracing::info!(order_id = %message.order_id, template = message.template, "message to customer (local stack: not sent anywhere)");
            self.told.lock().expect("notifier lock").push(message.clone());
            Ok(())
        })
    }
}
