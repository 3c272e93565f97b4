//! Domain events: what they say, and how they travel. Events carry ids, SKUs and amounts, never
//! the customer's phone or street address: every subscriber on the bus would otherwise hold PII.
//!
//! Handlers do not publish. A state change is one conditional write; the table's stream carries
//! it to the event relay, which turns it into its events ([`changes`]) and publishes them
//! ([`publisher`]). Each published event carries a deterministic `event_id`, so a re-sent one is
//! recognisable.

pub mod changes;
pub mod fulfilment;
pub mod logistics;
pub mod publisher;
mod refund_changes;
mod shipment_changes;
pub mod ticket_changes;
mod tracking_changes;

pub use publisher::{EventBridgePublisher, EventPublisher, PublishAllFuture, PublishError};

use crate::domain::payment::PaymentEvent;
use crate::domain::{Allocation, ChannelId, Currency, CustomerId, OrderId, PaymentMethod, Quantity, ShortLine, Sku};
use serde::{Deserialize, Serialize};
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
    /// Risk control's score: reservation approves cash on delivery below the policy's score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<u32>,
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
            risk_score: order.risk.as_ref().map(|r| r.score),
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

/// Who approved a cash-on-delivery order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApprovedBy {
    /// Reservation, below the policy's risk score.
    Policy,
    Staff,
}

/// A cash-on-delivery order ready for fulfilment: its stock is held with no expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashOnDeliveryApproved {
    pub order_id: OrderId,
    pub allocations: Vec<Allocation>,
    pub total_minor: i64,
    pub currency: Currency,
    pub approved_by: ApprovedBy,
}

/// An order left RECEIVED with payments that arrived before it was reserved: for payment
/// processing to apply them now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedPaymentsDue {
    pub order_id: OrderId,
    pub payments: Vec<crate::domain::payment::PaymentKey>,
}

/// Why an order was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectionReason {
    /// Some line could not be served from any warehouse.
    StockShort,
    /// Staff rejected an order risk control held.
    RiskReview,
}

impl RejectionReason {
    /// The reason as the events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StockShort => "STOCK_SHORT",
            Self::RiskReview => "RISK_REVIEW",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRejected {
    pub order_id: OrderId,
    pub reason: RejectionReason,
    /// The lines no warehouse could serve (stock short only).
    pub short_lines: Vec<ShortLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: OrderId,
    /// What went back to stock; empty when nothing was held yet.
    pub released: Vec<Allocation>,
    /// The status the order was cancelled from (absent in events relayed before it was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_from: Option<crate::domain::OrderStatus>,
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
    /// The lines refunded, when the refund is of some units only (a shortage).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<crate::domain::shipment::MissingUnits>,
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
    CashOnDeliveryApproved(CashOnDeliveryApproved),
    ParkedPaymentsDue(ParkedPaymentsDue),
    /// A payment provider's callback, stored in the inbox: for payment processing.
    PaymentEventReceived(PaymentEvent),
    ShipmentCreated(fulfilment::ShipmentCreated),
    ShipmentStatusChanged(fulfilment::ShipmentStatusChanged),
    ShortageDetected(fulfilment::ShortageDetected),
    ShipmentDispatched(fulfilment::ShipmentDispatched),
    OrderShipped(fulfilment::OrderShipped),
    /// A courier's signed push, stored in the inbox: for the tracking consumer.
    CourierPushReceived(logistics::CourierPush),
    TrackingUpdated(logistics::TrackingUpdated),
    ParcelStuck(logistics::ParcelStuck),
    ParcelAlertCleared(logistics::ParcelAlertCleared),
    ParcelDeliveryEnded(logistics::ParcelDeliveryEnded),
    NotReceivedClaimOpened(logistics::NotReceivedClaimOpened),
    NotReceivedClaimResolved(logistics::NotReceivedClaimResolved),
    CashCollected(logistics::CashCollected),
    OrderDelivered(logistics::OrderDelivered),
    OrderUndelivered(logistics::OrderUndelivered),
    RefundIssued(crate::domain::refund::Refund),
    RefundDeclined(crate::domain::refund::Refund),
    RefundRefused(crate::domain::refund::Refund),
    TicketOpened(ticket_changes::TicketOpened),
    TicketResolved(ticket_changes::TicketResolved),
    SlaBreached(ticket_changes::SlaBreached),
    OrderArchived(ticket_changes::OrderArchived),
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
            Self::CashOnDeliveryApproved(_) => "CashOnDeliveryApproved",
            Self::ParkedPaymentsDue(_) => "ParkedPaymentsDue",
            Self::PaymentEventReceived(_) => "PaymentEventReceived",
            Self::ShipmentCreated(_) => "ShipmentCreated",
            Self::ShipmentStatusChanged(_) => "ShipmentStatusChanged",
            Self::ShortageDetected(_) => "ShortageDetected",
            Self::ShipmentDispatched(_) => "ShipmentDispatched",
            Self::OrderShipped(_) => "OrderShipped",
            Self::CourierPushReceived(_) => "CourierPushReceived",
            Self::TrackingUpdated(_) => "TrackingUpdated",
            Self::ParcelStuck(_) => "ParcelStuck",
            Self::ParcelAlertCleared(_) => "ParcelAlertCleared",
            Self::ParcelDeliveryEnded(_) => "ParcelDeliveryEnded",
            Self::NotReceivedClaimOpened(_) => "NotReceivedClaimOpened",
            Self::NotReceivedClaimResolved(_) => "NotReceivedClaimResolved",
            Self::CashCollected(_) => "CashCollected",
            Self::OrderDelivered(_) => "OrderDelivered",
            Self::OrderUndelivered(_) => "OrderUndelivered",
            Self::RefundIssued(_) => "RefundIssued",
            Self::RefundDeclined(_) => "RefundDeclined",
            Self::RefundRefused(_) => "RefundRefused",
            Self::TicketOpened(_) => "TicketOpened",
            Self::TicketResolved(_) => "TicketResolved",
            Self::SlaBreached(_) => "SlaBreached",
            Self::OrderArchived(_) => "OrderArchived",
        }
    }

    /// The event's own fields, as a JSON object.
    pub fn detail(&self) -> serde_json::Value {
        let value = match self {
            Self::OrderReceived(d) => serde_json::to_value(d),
            Self::StockReserved(d) => serde_json::to_value(d),
            Self::OrderRejected(d) => serde_json::to_value(d),
            Self::OrderCancelled(d) => serde_json::to_value(d),
            Self::OrderExpired(d) => serde_json::to_value(d),
            Self::OrderPaid(d) => serde_json::to_value(d),
            Self::PaymentMismatch(d) => serde_json::to_value(d),
            Self::RefundRequested(d) => serde_json::to_value(d),
            Self::OrderFlagged(d) => serde_json::to_value(d),
            Self::CashOnDeliveryApproved(d) => serde_json::to_value(d),
            Self::ParkedPaymentsDue(d) => serde_json::to_value(d),
            Self::PaymentEventReceived(d) => serde_json::to_value(d),
            Self::ShipmentCreated(d) => serde_json::to_value(d),
            Self::ShipmentStatusChanged(d) => serde_json::to_value(d),
            Self::ShortageDetected(d) => serde_json::to_value(d),
            Self::ShipmentDispatched(d) => serde_json::to_value(d),
            Self::OrderShipped(d) => serde_json::to_value(d),
            Self::CourierPushReceived(d) => serde_json::to_value(d),
            Self::TrackingUpdated(d) => serde_json::to_value(d),
            Self::ParcelStuck(d) => serde_json::to_value(d),
            Self::ParcelAlertCleared(d) => serde_json::to_value(d),
            Self::ParcelDeliveryEnded(d) => serde_json::to_value(d),
            Self::NotReceivedClaimOpened(d) => serde_json::to_value(d),
            Self::NotReceivedClaimResolved(d) => serde_json::to_value(d),
            Self::CashCollected(d) => serde_json::to_value(d),
            Self::OrderDelivered(d) => serde_json::to_value(d),
            Self::OrderUndelivered(d) => serde_json::to_value(d),
            Self::RefundIssued(d) | Self::RefundDeclined(d) | Self::RefundRefused(d) => serde_json::to_value(d),
            Self::TicketOpened(d) => serde_json::to_value(d),
            Self::TicketResolved(d) => serde_json::to_value(d),
            Self::SlaBreached(d) => serde_json::to_value(d),
            Self::OrderArchived(d) => serde_json::to_value(d),
        };
        value.expect("event details are plain data and always serialise")
    }
}

/// An event as the relay publishes it: the event, its deterministic id (the same each time the
/// same change is relayed: `<detail-type>:<entity id>[:v<version>]`), and the version of the
/// entity it describes, for consumers that order by it.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    pub event_id: String,
    /// The entity the event is about (an order id, a provider's event id): its events must not
    /// overtake one another.
    pub entity_id: String,
    pub version: Option<u64>,
    pub event: DomainEvent,
}

impl Announcement {
    /// An event about version `version` of an order.
    pub fn of_order(order_id: OrderId, version: u64, event: DomainEvent) -> Self {
        Self {
            event_id: format!("{}:{order_id}:v{version}", event.detail_type()),
            entity_id: order_id.to_string(),
            version: Some(version),
            event,
        }
    }

    /// An event about version `version` of a shipment: ordered with its order's events.
    pub fn of_shipment(shipment_id: &crate::domain::ShipmentId, version: u64, event: DomainEvent) -> Self {
        Self {
            event_id: format!("{}:{shipment_id}:v{version}", event.detail_type()),
            entity_id: shipment_id.order_id.to_string(),
            version: Some(version),
            event,
        }
    }

    /// An event about an outside party's event (a payment provider's, a courier's push), whose
    /// record changes state once or twice (stored, then resolved), so its id alone tells one
    /// announcement from another.
    pub fn of_payment(provider_event_id: &str, event: DomainEvent) -> Self {
        Self {
            event_id: format!("{}:{provider_event_id}", event.detail_type()),
            entity_id: provider_event_id.to_owned(),
            version: None,
            event,
        }
    }

    pub fn detail_type(&self) -> &'static str {
        self.event.detail_type()
    }

    /// The EventBridge `detail`: the event's fields with `event_id` (and `version`) beside them.
    pub fn detail_json(&self) -> String {
        let mut detail = self.event.detail();
        if let Some(object) = detail.as_object_mut() {
            object.insert("event_id".into(), self.event_id.clone().into());
            if let Some(version) = self.version {
                object.insert("version".into(), version.into());
            }
        }
        detail.to_string()
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
            risk_score: Some(12),
        };
        let json = DomainEvent::OrderReceived(detail).detail();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(!keys.iter().any(|k| k.contains("phone") || k.contains("address") || k.contains("street")), "{keys:?}");
        assert_eq!(json["lines"][0]["sku"], "A");
    }
}
