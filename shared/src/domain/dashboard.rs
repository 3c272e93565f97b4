//! The operations dashboard's figures: which bus event moves which counter, the hour a counter
//! belongs to, and the rates staff read off the counters. No I/O: the dashboard function keeps
//! the counters (`handlers::dashboard`), the staff API reads them.
//!
//! Every counter is per hour (UTC) and per sales channel of the order the event is about, so the
//! page can show conversion by channel and any range of hours or days without reading an order.

use super::order_stages::Stage;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// One counter of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    OrdersReceived,
    OrdersReserved,
    OrdersRejected,
    OrdersPaid,
    /// Cash-on-delivery orders approved to ship: converted, though never paid online.
    OrdersCodApproved,
    OrdersExpired,
    OrdersCancelled,
    /// Risk control froze it for a person to look at.
    OrdersFlagged,
    OrdersShipped,
    OrdersDelivered,
    PaymentsSucceeded,
    PaymentsFailed,
    RefundsRequested,
    RefundsIssued,
    ParcelsDispatched,
    ParcelsDelivered,
    ParcelsDeliveredOnTime,
    /// Delivered parcels whose hand-over time is known: what DeliverySeconds sums over.
    ParcelsTimed,
    /// Seconds from the courier taking a parcel to its delivery, summed over ParcelsTimed.
    DeliverySeconds,
    ParcelsStuck,
    ParcelAlertsCleared,
    TicketsOpened,
    TicketsResolved,
    SlasBreached,
    /// Orders that left a stage of [`crate::domain::order_stages`], counted in the hour they
    /// left it, and the seconds they spent in it, summed over them.
    ReservingOrders,
    ReservingSeconds,
    AwaitingPaymentOrders,
    AwaitingPaymentSeconds,
    FulfillingOrders,
    FulfillingSeconds,
    InTransitOrders,
    InTransitSeconds,
}

impl Metric {
    pub const ALL: [Metric; 32] = [
        Self::OrdersReceived,
        Self::OrdersReserved,
        Self::OrdersRejected,
        Self::OrdersPaid,
        Self::OrdersCodApproved,
        Self::OrdersExpired,
        Self::OrdersCancelled,
        Self::OrdersFlagged,
        Self::OrdersShipped,
        Self::OrdersDelivered,
        Self::PaymentsSucceeded,
        Self::PaymentsFailed,
        Self::RefundsRequested,
        Self::RefundsIssued,
        Self::ParcelsDispatched,
        Self::ParcelsDelivered,
        Self::ParcelsDeliveredOnTime,
        Self::ParcelsTimed,
        Self::DeliverySeconds,
        Self::ParcelsStuck,
        Self::ParcelAlertsCleared,
        Self::TicketsOpened,
        Self::TicketsResolved,
        Self::SlasBreached,
        Self::ReservingOrders,
        Self::ReservingSeconds,
        Self::AwaitingPaymentOrders,
        Self::AwaitingPaymentSeconds,
        Self::FulfillingOrders,
        Self::FulfillingSeconds,
        Self::InTransitOrders,
        Self::InTransitSeconds,
    ];

    /// The counter's name in the table and in the staff API.
    pub fn name(self) -> &'static str {
        match self {
            Self::OrdersReceived => "orders_received",
            Self::OrdersReserved => "orders_reserved",
            Self::OrdersRejected => "orders_rejected",
            Self::OrdersPaid => "orders_paid",
            Self::OrdersCodApproved => "orders_cod_approved",
            Self::OrdersExpired => "orders_expired",
            Self::OrdersCancelled => "orders_cancelled",
            Self::OrdersFlagged => "orders_flagged",
            Self::OrdersShipped => "orders_shipped",
            Self::OrdersDelivered => "orders_delivered",
            Self::PaymentsSucceeded => "payments_succeeded",
            Self::PaymentsFailed => "payments_failed",
            Self::RefundsRequested => "refunds_requested",
            Self::RefundsIssued => "refunds_issued",
            Self::ParcelsDispatched => "parcels_dispatched",
            Self::ParcelsDelivered => "parcels_delivered",
            Self::ParcelsDeliveredOnTime => "parcels_delivered_on_time",
            Self::ParcelsTimed => "parcels_timed",
            Self::DeliverySeconds => "delivery_seconds",
            Self::ParcelsStuck => "parcels_stuck",
            Self::ParcelAlertsCleared => "parcel_alerts_cleared",
            Self::TicketsOpened => "tickets_opened",
            Self::TicketsResolved => "tickets_resolved",
            Self::SlasBreached => "slas_breached",
            Self::ReservingOrders => "reserving_orders",
            Self::ReservingSeconds => "reserving_seconds",
            Self::AwaitingPaymentOrders => "awaiting_payment_orders",
            Self::AwaitingPaymentSeconds => "awaiting_payment_seconds",
            Self::FulfillingOrders => "fulfilling_orders",
            Self::FulfillingSeconds => "fulfilling_seconds",
            Self::InTransitOrders => "in_transit_orders",
            Self::InTransitSeconds => "in_transit_seconds",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// What one event adds to the counters, before the hand-over time of a delivered parcel (which
/// the event does not carry) is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub increments: Vec<(Metric, i64)>,
    /// The channel, when the event names it; otherwise the order's is looked up.
    pub channel: Option<String>,
    /// The order the event is about, when it names one of ours.
    pub order_id: Option<String>,
    /// A delivered parcel: its shipment id and delivery time, for [`Metric::DeliverySeconds`].
    pub delivered: Option<(String, OffsetDateTime)>,
}

/// Every detail-type the dashboard counts: what the template's Dashboard rule sends it.
pub const COUNTED_EVENTS: [&str; 20] = [
    "OrderReceived",
    "StockReserved",
    "OrderRejected",
    "OrderPaid",
    "CashOnDeliveryApproved",
    "OrderExpired",
    "OrderCancelled",
    "OrderFlagged",
    "OrderShipped",
    "OrderDelivered",
    "PaymentEventReceived",
    "RefundRequested",
    "RefundIssued",
    "ShipmentDispatched",
    "ParcelDeliveryEnded",
    "ParcelStuck",
    "ParcelAlertCleared",
    "TicketOpened",
    "TicketResolved",
    "SlaBreached",
];

/// What the bus event `detail_type` with `detail` adds to the counters; none for an event the
/// dashboard does not count.
pub fn tally(detail_type: &str, detail: &Value) -> Option<Tally> {
    let one = |metric| vec![(metric, 1)];
    let increments = match detail_type {
        "OrderReceived" => one(Metric::OrdersReceived),
        "StockReserved" => one(Metric::OrdersReserved),
        "OrderRejected" => one(Metric::OrdersRejected),
        "OrderPaid" => one(Metric::OrdersPaid),
        "CashOnDeliveryApproved" => one(Metric::OrdersCodApproved),
        "OrderExpired" => one(Metric::OrdersExpired),
        "OrderCancelled" => one(Metric::OrdersCancelled),
        "OrderFlagged" => one(Metric::OrdersFlagged),
        "OrderShipped" => one(Metric::OrdersShipped),
        "OrderDelivered" => one(Metric::OrdersDelivered),
        "PaymentEventReceived" => match detail["type"].as_str() {
            Some("payment.succeeded") => one(Metric::PaymentsSucceeded),
            Some("payment.failed") => one(Metric::PaymentsFailed),
            _ => return None,
        },
        "RefundRequested" => one(Metric::RefundsRequested),
        "RefundIssued" => one(Metric::RefundsIssued),
        "ShipmentDispatched" => one(Metric::ParcelsDispatched),
        "ParcelDeliveryEnded" if detail["status"] == "DELIVERED" => match detail["on_time"].as_bool() {
            Some(true) => vec![(Metric::ParcelsDelivered, 1), (Metric::ParcelsDeliveredOnTime, 1)],
            _ => one(Metric::ParcelsDelivered),
        },
        "ParcelStuck" => one(Metric::ParcelsStuck),
        "ParcelAlertCleared" => one(Metric::ParcelAlertsCleared),
        "TicketOpened" => one(Metric::TicketsOpened),
        "TicketResolved" => one(Metric::TicketsResolved),
        "SlaBreached" => one(Metric::SlasBreached),
        _ => return None,
    };
    let order_id = detail["order_id"].as_str().or_else(|| detail["data"]["order_id"].as_str());
    // A delivery whose time does not read still counts; it is just not timed.
    let delivered = match (detail_type, detail["shipment_id"].as_str(), detail["at"].as_str()) {
        ("ParcelDeliveryEnded", Some(shipment), Some(at)) => {
            let at = OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok();
            at.map(|at| (shipment.to_owned(), at))
        }
        _ => None,
    };
    Some(Tally {
        increments,
        channel: detail["channel"].as_str().map(str::to_owned),
        order_id: order_id.map(str::to_owned),
        delivered,
    })
}

/// The hour a counter is kept for: `2026-11-23T05` (UTC).
pub fn hour_of(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}T{:02}", at.year(), u8::from(at.month()), at.day(), at.hour())
}

/// The counters of one hour and channel, as stored and as the staff API shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCounters {
    pub hour: String,
    pub channel: String,
    pub counts: BTreeMap<Metric, i64>,
}

/// The rates staff read off summed counters: `None` where the denominator is zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Orders converted (paid online, or cash on delivery approved) over orders received, in
    /// the same hours: a flow ratio, so a range may show more than 1.
    pub conversion: Option<f64>,
    pub payment_success: Option<f64>,
    /// Refunds requested over orders paid.
    pub refund: Option<f64>,
    /// Tickets opened over orders delivered.
    pub after_sales: Option<f64>,
    pub on_time_delivery: Option<f64>,
    pub average_delivery_hours: Option<f64>,
    /// Average hours the orders that left each stage in the range spent in it: the largest is
    /// where orders wait.
    pub hours_in_stage: BTreeMap<Stage, Option<f64>>,
}

impl Rates {
    pub fn of(counts: &BTreeMap<Metric, i64>) -> Self {
        let count = |m: Metric| counts.get(&m).copied().unwrap_or(0);
        let ratio = |over: i64, under: i64| (under > 0).then(|| over as f64 / under as f64);
        let payments = count(Metric::PaymentsSucceeded) + count(Metric::PaymentsFailed);
        let delivered = count(Metric::ParcelsDelivered);
        Self {
            conversion: ratio(
                count(Metric::OrdersPaid) + count(Metric::OrdersCodApproved),
                count(Metric::OrdersReceived),
            ),
            payment_success: ratio(count(Metric::PaymentsSucceeded), payments),
            refund: ratio(count(Metric::RefundsRequested), count(Metric::OrdersPaid)),
            after_sales: ratio(count(Metric::TicketsOpened), count(Metric::OrdersDelivered)),
            on_time_delivery: ratio(count(Metric::ParcelsDeliveredOnTime), delivered),
            average_delivery_hours: ratio(count(Metric::DeliverySeconds), count(Metric::ParcelsTimed))
                .map(|s| s / 3_600.0),
            hours_in_stage: Stage::ALL
                .into_iter()
                .map(|stage| {
                    let (orders, seconds) = stage.metrics();
                    (stage, ratio(count(seconds), count(orders)).map(|s| s / 3_600.0))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_delivered_parcel_counts_on_time_only_when_it_was() {
        let detail = json!({"order_id": "O", "shipment_id": "O-1", "status": "DELIVERED", "on_time": false,
            "at": "2026-11-23T05:10:00Z"});
        let late = tally("ParcelDeliveryEnded", &detail).unwrap();
        assert_eq!(late.increments, vec![(Metric::ParcelsDelivered, 1)]);
        assert_eq!(late.delivered.unwrap().0, "O-1");
        let returned = json!({"order_id": "O", "shipment_id": "O-1", "status": "RETURNED_TO_SENDER", "on_time": false});
        assert_eq!(tally("ParcelDeliveryEnded", &returned), None, "not a delivery");
    }

    #[test]
    fn an_on_time_delivery_counts_twice_and_every_counted_event_moves_a_counter() {
        let detail = json!({"order_id": "O", "shipment_id": "O-1", "status": "DELIVERED", "on_time": true,
            "at": "not a time"});
        let on_time = tally("ParcelDeliveryEnded", &detail).unwrap();
        assert_eq!(on_time.increments, [(Metric::ParcelsDelivered, 1), (Metric::ParcelsDeliveredOnTime, 1)]);
        assert_eq!(on_time.delivered, None, "counted, not timed, when its time does not read");
        for detail_type in COUNTED_EVENTS {
            let detail = json!({"order_id": "O", "status": "DELIVERED", "type": "payment.failed"});
            assert!(tally(detail_type, &detail).is_some_and(|t| !t.increments.is_empty()), "{detail_type}");
        }
        for ignored in
            ["CourierPushReceived", "TrackingUpdated", "ShipmentCreated", "OrderUndelivered", "RefundDeclined"]
        {
            assert_eq!(tally(ignored, &json!({"order_id": "O"})), None, "{ignored}");
        }
    }

    #[test]
    fn payments_count_by_outcome_and_the_channel_comes_from_the_event_when_it_has_one() {
        let paid = tally("PaymentEventReceived", &json!({"type": "payment.succeeded", "data": {"order_id": "O"}}));
        assert_eq!(
            paid.as_ref().map(|t| (t.increments.clone(), t.order_id.as_deref())),
            Some((vec![(Metric::PaymentsSucceeded, 1)], Some("O")))
        );
        let received = tally("OrderReceived", &json!({"order_id": "O", "channel": "app"})).unwrap();
        assert_eq!(received.channel.as_deref(), Some("app"));
        assert_eq!(tally("CourierPushReceived", &json!({})), None);
    }

    #[test]
    fn rates_divide_by_what_they_name_and_are_none_without_a_denominator() {
        let counts = BTreeMap::from([
            (Metric::OrdersReceived, 4),
            (Metric::OrdersPaid, 3),
            (Metric::ParcelsDelivered, 3),
            (Metric::ParcelsTimed, 2),
            (Metric::DeliverySeconds, 2 * 7_200),
        ]);
        let rates = Rates::of(&counts);
        assert_eq!((rates.conversion, rates.average_delivery_hours, rates.after_sales), (Some(0.75), Some(2.0), None));
        assert_eq!(hour_of(time::macros::datetime!(2026-11-23 05:59:59 +08:00)), "2026-11-22T21");
    }
}
