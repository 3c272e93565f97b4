//! The stages of an order's flow the dashboard times, to show where orders wait (the
//! bottleneck): which bus event enters and which leaves each stage, and what a stage's time
//! adds to the counters once both ends of it are known.
//!
//! | stage | entered by | left by |
//! |---|---|---|
//! | reserving | OrderReceived | StockReserved, OrderRejected (stock short), CashOnDeliveryApproved (by policy), OrderCancelled (from RECEIVED) |
//! | awaiting payment (or review) | StockReserved | OrderPaid (on time), CashOnDeliveryApproved (by staff), OrderExpired, OrderCancelled (from a held status) |
//! | fulfilling | OrderPaid, CashOnDeliveryApproved | OrderShipped, OrderCancelled (from PAID or COD_APPROVED) |
//! | in transit | OrderShipped | OrderDelivered |
//!
//! A late payment (after expiry or cancellation) only enters fulfilling: the order had left
//! awaiting payment already. Risk review before reservation (frozen, pending review) is not a
//! timed stage: a rejection from it ends nothing timed.
//!
//! Times are the bus's (the envelope's `time`, seconds after the change). The events of one
//! order arrive in any order and any number of times: each end is kept the first time it is
//! seen, and a stage counts once, when whichever of its two events comes second finds the other.

use super::dashboard::Metric;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Reserving,
    AwaitingPayment,
    Fulfilling,
    InTransit,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Self::Reserving, Self::AwaitingPayment, Self::Fulfilling, Self::InTransit];

    pub fn name(self) -> &'static str {
        match self {
            Self::Reserving => "reserving",
            Self::AwaitingPayment => "awaiting_payment",
            Self::Fulfilling => "fulfilling",
            Self::InTransit => "in_transit",
        }
    }

    /// The counters a timed stage adds to: orders that left it, and the seconds they spent in it.
    pub fn metrics(self) -> (Metric, Metric) {
        match self {
            Self::Reserving => (Metric::ReservingOrders, Metric::ReservingSeconds),
            Self::AwaitingPayment => (Metric::AwaitingPaymentOrders, Metric::AwaitingPaymentSeconds),
            Self::Fulfilling => (Metric::FulfillingOrders, Metric::FulfillingSeconds),
            Self::InTransit => (Metric::InTransitOrders, Metric::InTransitSeconds),
        }
    }
}

/// One end of a stage, as an event marks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Entered(Stage),
    Left(Stage),
}

impl End {
    /// The attribute the end's time is kept under on the order's stage item.
    pub fn field(self) -> String {
        match self {
            Self::Entered(stage) => format!("entered_{}", stage.name()),
            Self::Left(stage) => format!("left_{}", stage.name()),
        }
    }
}

/// The stage ends an event of `detail_type` marks for its order.
pub fn ends(detail_type: &str, detail: &Value) -> Vec<End> {
    use End::{Entered, Left};
    use Stage::*;
    let cancelled_from = detail["cancelled_from"].as_str().unwrap_or_default();
    match detail_type {
        "OrderReceived" => vec![Entered(Reserving)],
        "StockReserved" => vec![Left(Reserving), Entered(AwaitingPayment)],
        "OrderRejected" if detail["reason"] == "STOCK_SHORT" => vec![Left(Reserving)],
        "CashOnDeliveryApproved" if detail["approved_by"] == "POLICY" => vec![Left(Reserving), Entered(Fulfilling)],
        "CashOnDeliveryApproved" if detail["approved_by"] == "STAFF" => {
            vec![Left(AwaitingPayment), Entered(Fulfilling)]
        }
        "OrderPaid" if detail["late"] == true => vec![Entered(Fulfilling)],
        "OrderPaid" => vec![Left(AwaitingPayment), Entered(Fulfilling)],
        "OrderExpired" => vec![Left(AwaitingPayment)],
        "OrderCancelled" => match cancelled_from {
            "RECEIVED" => vec![Left(Reserving)],
            "AWAITING_PAYMENT" | "AWAITING_REVIEW" | "PAYMENT_MISMATCH" => vec![Left(AwaitingPayment)],
            "PAID" | "COD_APPROVED" => vec![Left(Fulfilling)],
            _ => Vec::new(),
        },
        "OrderShipped" => vec![Left(Fulfilling), Entered(InTransit)],
        "OrderDelivered" => vec![Left(InTransit)],
        _ => Vec::new(),
    }
}

/// A stage both of whose ends are known: when it was left, and what it adds to the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedStage {
    pub stage: Stage,
    pub left_at: OffsetDateTime,
    pub increments: [(Metric, i64); 2],
}

/// The stages timed by `known` (each end's time, as kept): those both of whose ends are known.
/// A stage left before it was entered (clocks seconds apart) counts zero seconds.
pub fn timed(known: impl Fn(End) -> Option<OffsetDateTime>) -> Vec<TimedStage> {
    let both = |stage| Some((known(End::Entered(stage))?, known(End::Left(stage))?));
    let timed = Stage::ALL.into_iter().filter_map(|stage| {
        let (entered, left) = both(stage)?;
        let (orders, seconds) = stage.metrics();
        let spent = (left - entered).whole_seconds().max(0);
        Some(TimedStage { stage, left_at: left, increments: [(orders, 1), (seconds, spent)] })
    });
    timed.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    #[test]
    fn a_stage_is_timed_only_once_both_its_ends_are_known_whichever_came_first() {
        let at = |minutes: i64| OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minutes);
        let mut known: HashMap<String, OffsetDateTime> = HashMap::new();
        // Shipped seen before paid: nothing is timed until paid arrives.
        for end in ends("OrderShipped", &json!({})) {
            known.insert(end.field(), at(90));
        }
        assert_eq!(timed(|end| known.get(&end.field()).copied()), Vec::new());
        for end in ends("OrderPaid", &json!({})) {
            known.insert(end.field(), at(30));
        }
        let stages = timed(|end| known.get(&end.field()).copied());
        assert_eq!(stages.len(), 1);
        assert_eq!(stages[0].stage, Stage::Fulfilling);
        assert_eq!(stages[0].increments, [(Metric::FulfillingOrders, 1), (Metric::FulfillingSeconds, 3_600)]);
        assert_eq!(stages[0].left_at, at(90));
    }

    #[test]
    fn the_way_an_order_left_a_stage_decides_which_stage_it_left() {
        use crate::domain::{Currency, OrderId, OrderStatus};
        use crate::events::{ApprovedBy, CashOnDeliveryApproved, OrderCancelled, OrderRejected, RejectionReason};
        let order_id = OrderId::generate();
        let as_sent = |event: serde_json::Result<Value>| event.expect("an event serialises");
        let rejected = |reason| as_sent(serde_json::to_value(OrderRejected { order_id, reason, short_lines: vec![] }));
        assert_eq!(ends("OrderRejected", &rejected(RejectionReason::StockShort)), [End::Left(Stage::Reserving)]);
        assert!(ends("OrderRejected", &rejected(RejectionReason::RiskReview)).is_empty(), "before any timed stage");
        let approved = |approved_by| {
            let event = CashOnDeliveryApproved {
                order_id,
                allocations: vec![],
                total_minor: 100,
                currency: Currency::parse("CNY").unwrap(),
                approved_by,
            };
            as_sent(serde_json::to_value(event))
        };
        let by_policy = ends("CashOnDeliveryApproved", &approved(ApprovedBy::Policy));
        assert_eq!(by_policy, [End::Left(Stage::Reserving), End::Entered(Stage::Fulfilling)]);
        let by_staff = ends("CashOnDeliveryApproved", &approved(ApprovedBy::Staff));
        assert_eq!(by_staff, [End::Left(Stage::AwaitingPayment), End::Entered(Stage::Fulfilling)]);
        let cancelled = |from| {
            as_sent(serde_json::to_value(OrderCancelled { order_id, released: vec![], cancelled_from: Some(from) }))
        };
        assert_eq!(ends("OrderCancelled", &cancelled(OrderStatus::Received)), [End::Left(Stage::Reserving)]);
        assert_eq!(
            ends("OrderCancelled", &cancelled(OrderStatus::AwaitingReview)),
            [End::Left(Stage::AwaitingPayment)]
        );
        assert_eq!(ends("OrderCancelled", &cancelled(OrderStatus::Paid)), [End::Left(Stage::Fulfilling)]);
        assert!(ends("OrderCancelled", &json!({"order_id": "O", "released": []})).is_empty(), "from an unknown status");
        let late = ends("OrderPaid", &json!({"order_id": "O", "late": true}));
        assert_eq!(late, [End::Entered(Stage::Fulfilling)], "it had left awaiting payment when it expired");
        assert!(ends("TicketOpened", &json!({})).is_empty());
    }

    #[test]
    fn every_event_that_ends_a_stage_is_one_the_dashboard_receives() {
        let detail = json!({"reason": "STOCK_SHORT", "approved_by": "POLICY", "cancelled_from": "RECEIVED"});
        for detail_type in [
            "OrderReceived",
            "StockReserved",
            "OrderRejected",
            "CashOnDeliveryApproved",
            "OrderPaid",
            "OrderExpired",
            "OrderCancelled",
            "OrderShipped",
            "OrderDelivered",
        ] {
            assert!(!ends(detail_type, &detail).is_empty(), "{detail_type}");
            assert!(crate::domain::dashboard::COUNTED_EVENTS.contains(&detail_type), "{detail_type}");
        }
    }
}
