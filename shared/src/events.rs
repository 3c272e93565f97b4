//! Domain events and the port that publishes them. Events carry ids, SKUs and amounts, never the
//! customer's phone or street address: every subscriber on the bus would otherwise hold PII.

use crate::domain::{Allocation, ChannelId, Currency, CustomerId, OrderId, PaymentMethod, Quantity, ShortLine, Sku};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use thiserror::Error;
use time::OffsetDateTime;

pub const SOURCE: &str = "orderflow";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRequest {
    pub sku: Sku,
    pub quantity: Quantity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderReceived {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub payment_method: PaymentMethod,
    /// Some channels (promotions) hold stock for less time.
    pub channel: ChannelId,
    /// Selects the regional warehouse; the rest of the address stays in the table.
    pub province: String,
    pub lines: Vec<LineRequest>,
    pub total_minor: i64,
    pub currency: Currency,
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: OffsetDateTime,
}

impl OrderReceived {
    /// The announcement of a stored order.
    pub fn of(order: &crate::domain::Order) -> Self {
        Self {
            order_id: order.order_id,
            customer_id: order.customer_id.clone(),
            payment_method: order.payment_method,
            channel: order.channel.clone(),
            province: order.shipping_address.province.clone(),
            lines: order.lines.iter().map(|l| LineRequest { sku: l.sku.clone(), quantity: l.quantity }).collect(),
            total_minor: order.total_minor,
            currency: order.currency,
            event_time: order.event_time,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockReserved {
    pub order_id: OrderId,
    pub allocations: Vec<Allocation>,
    #[serde(with = "time::serde::rfc3339")]
    pub hold_expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRejected {
    pub order_id: OrderId,
    pub short_lines: Vec<ShortLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: OrderId,
    /// What went back to stock; empty when nothing was held yet.
    pub released: Vec<Allocation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderExpired {
    pub order_id: OrderId,
    /// What went back to stock.
    pub released: Vec<Allocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub order_id: OrderId,
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: Currency,
    /// Paid after its hold had ended; the stock was reserved again.
    pub late: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMismatch {
    pub order_id: OrderId,
    pub payment_id: String,
    pub expected_minor: i64,
    pub expected_currency: String,
    pub received_minor: i64,
    pub received_currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequested {
    /// As the provider sent it: a refund may be for an order that is not ours.
    pub order_id: String,
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
}

/// An order risk control froze, for the risk team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFlagged {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub score: u32,
    pub fired: Vec<crate::domain::risk::Fired>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    OrderReceived(OrderReceived),
    StockReserved(StockReserved),
    OrderRejected(OrderRejected),
    OrderCancelled(OrderCancelled),
    OrderExpired(OrderExpired),
    OrderPaid(OrderPaid),
    PaymentMismatch(PaymentMismatch),
    RefundRequested(RefundRequested),
    OrderFlagged(OrderFlagged),
}

impl DomainEvent {
    /// The EventBridge `detail-type`, which the bus rules match on.
    pub fn detail_type(&self) -> &'static str {
        match self {
            Self::OrderReceived(_) => "OrderReceived",
            Self::StockReserved(_) => "StockReserved",
            Self::OrderRejected(_) => "OrderRejected",
            Self::OrderCancelled(_) => "OrderCancelled",
            Self::OrderExpired(_) => "OrderExpired",
            Self::OrderPaid(_) => "OrderPaid",
            Self::PaymentMismatch(_) => "PaymentMismatch",
            Self::RefundRequested(_) => "RefundRequested",
            Self::OrderFlagged(_) => "OrderFlagged",
        }
    }

    pub fn detail_json(&self) -> String {
        let value = match self {
            Self::OrderReceived(d) => serde_json::to_string(d),
            Self::StockReserved(d) => serde_json::to_string(d),
            Self::OrderRejected(d) => serde_json::to_string(d),
            Self::OrderCancelled(d) => serde_json::to_string(d),
            Self::OrderExpired(d) => serde_json::to_string(d),
            Self::OrderPaid(d) => serde_json::to_string(d),
            Self::PaymentMismatch(d) => serde_json::to_string(d),
            Self::RefundRequested(d) => serde_json::to_string(d),
            Self::OrderFlagged(d) => serde_json::to_string(d),
        };
        value.expect("event details are plain data and always serialise")
    }
}

#[derive(Debug, Error)]
#[error("publishing {detail_type} failed: {reason}")]
pub struct PublishError {
    pub detail_type: &'static str,
    pub reason: String,
}

pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>>;
pub type PublishAllFuture<'a> = Pin<Box<dyn Future<Output = Vec<Result<(), PublishError>>> + Send + 'a>>;

/// Where domain events go. The EventBridge adapter is the real one; tests may wrap it to fail.
pub trait EventPublisher: Send + Sync {
    /// Publish several events in as few calls as the bus allows; one result per event, in order.
    fn publish_all<'a>(&'a self, events: &'a [DomainEvent]) -> PublishAllFuture<'a>;

    fn publish<'a>(&'a self, event: &'a DomainEvent) -> PublishFuture<'a> {
        Box::pin(async move {
            self.publish_all(std::slice::from_ref(event))
                .await
                .pop()
                .unwrap_or_else(|| Err(PublishError { detail_type: event.detail_type(), reason: "no result".into() }))
        })
    }
}

/// Publishes to one EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgePublisher {
    /// PutEvents takes at most this many entries per call.
    const MAX_ENTRIES: usize = 10;

    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }

    async fn put_chunk(&self, events: &[DomainEvent]) -> Vec<Result<(), PublishError>> {
        let entries = events.iter().map(|event| {
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus_name)
                .source(SOURCE)
                .detail_type(event.detail_type())
                .detail(event.detail_json())
                .build()
        });
        let fail = |event: &DomainEvent, reason: String| Err(PublishError { detail_type: event.detail_type(), reason });
        match self.client.put_events().set_entries(Some(entries.collect())).send().await {
            Err(err) => {
                let reason = aws_sdk_eventbridge::error::DisplayErrorContext(err).to_string();
                events.iter().map(|e| fail(e, reason.clone())).collect()
            }
            // Entries come back in request order; a refused one carries an error code.
            Ok(output) => events
                .iter()
                .enumerate()
                .map(|(i, event)| match output.entries().get(i) {
                    Some(entry) if entry.error_code().is_none() => Ok(()),
                    Some(entry) => fail(event, format!("entry refused: {}", entry.error_code().unwrap_or_default())),
                    None => fail(event, "no result for entry".into()),
                })
                .collect(),
        }
    }
}

impl EventPublisher for EventBridgePublisher {
    fn publish_all<'a>(&'a self, events: &'a [DomainEvent]) -> PublishAllFuture<'a> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(events.len());
            for chunk in events.chunks(Self::MAX_ENTRIES) {
                results.extend(self.put_chunk(chunk).await);
            }
            results
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_received_detail_carries_no_phone_or_street() {
        let detail = OrderReceived {
            order_id: OrderId::generate(),
            customer_id: CustomerId::parse("c1").unwrap(),
            payment_method: PaymentMethod::Online,
            channel: ChannelId::parse("app").unwrap(),
            province: "Zhejiang".into(),
            lines: vec![LineRequest { sku: Sku::parse("A").unwrap(), quantity: Quantity::new(1).unwrap() }],
            total_minor: 100,
            currency: Currency::CNY,
            event_time: OffsetDateTime::UNIX_EPOCH,
        };
        let json: serde_json::Value = serde_json::from_str(&DomainEvent::OrderReceived(detail).detail_json()).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(!keys.iter().any(|k| k.contains("phone") || k.contains("address") || k.contains("street")), "{keys:?}");
        assert_eq!(json["lines"][0]["sku"], "A");
    }
}
