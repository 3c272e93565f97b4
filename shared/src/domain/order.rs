//! The order and its life cycle. Every transition the program makes is listed, with what
//! triggers it, in [`OrderStatus::ways_out`]; the store's write conditions follow the same list,
//! and a test walks it: every status that is not final can be left by something that happens.

use super::address::Destination;
use super::allocation::Allocation;
use super::values::{ChannelId, Currency, CustomerId, DeviceId, OrderId, Quantity, Sku, WarehouseId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Risk asked for step-up verification: a code was sent to the customer's phone.
    PendingVerification,
    /// Risk sent the order to the manual review queue.
    PendingReview,
    /// Risk froze the order and told the risk team (OrderFlagged).
    Frozen,
    /// Stored (OrderReceived announced from the stream), stock not yet reserved.
    Received,
    /// Stock held until `hold_expires_at`; an online payment is expected.
    AwaitingPayment,
    /// Cash on delivery: stock held, the order waits for review before fulfilment.
    AwaitingReview,
    /// Cash on delivery approved (by staff, or automatically below the policy's risk score):
    /// stock held with no expiry, ready for fulfilment; paid when the courier collects the cash.
    CodApproved,
    /// Some line could not be served; nothing is held.
    Rejected,
    /// Cancelled before payment; any hold was released.
    Cancelled,
    /// The hold ran out before payment; stock returned.
    Expired,
    /// Paid; stock sold.
    Paid,
    /// A payment arrived with the wrong amount or currency: held for review, nothing ships.
    PaymentMismatch,
    /// Paid too late to be served (its stock was gone): the payment must be refunded.
    RefundRequired,
    /// Every shipment handed over to a courier (OrderShipped).
    Shipped,
    /// Every parcel delivered (OrderDelivered): the after-sales window starts.
    Delivered,
    /// After-sales over: every ticket closed and the window passed (OrderArchived); counted in
    /// its month's after-sales rate.
    Archived,
    /// Every parcel's delivery ended and one or more was lost or returned to the sender
    /// (OrderUndelivered): staff settle it (a not-received claim's refund or reship).
    Undelivered,
    /// Paid, then cancelled before any shipment was handed over: its units went back to stock
    /// and its payment is refunded (OrderCancelled, RefundRequested).
    CancelledAfterPayment,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 18] = [
        Self::PendingVerification,
        Self::PendingReview,
        Self::Frozen,
        Self::Received,
        Self::AwaitingPayment,
        Self::AwaitingReview,
        Self::CodApproved,
        Self::Rejected,
        Self::Cancelled,
        Self::Expired,
        Self::Paid,
        Self::PaymentMismatch,
        Self::RefundRequired,
        Self::Shipped,
        Self::Delivered,
        Self::Archived,
        Self::Undelivered,
        Self::CancelledAfterPayment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingVerification => "PENDING_VERIFICATION",
            Self::PendingReview => "PENDING_REVIEW",
            Self::Frozen => "FROZEN",
            Self::Received => "RECEIVED",
            Self::AwaitingPayment => "AWAITING_PAYMENT",
            Self::AwaitingReview => "AWAITING_REVIEW",
            Self::CodApproved => "COD_APPROVED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
            Self::Paid => "PAID",
            Self::PaymentMismatch => "PAYMENT_MISMATCH",
            Self::RefundRequired => "REFUND_REQUIRED",
            Self::Shipped => "SHIPPED",
            Self::Delivered => "DELIVERED",
            Self::Archived => "ARCHIVED",
            Self::Undelivered => "UNDELIVERED",
            Self::CancelledAfterPayment => "CANCELLED_AFTER_PAYMENT",
        }
    }

    /// The ways out of this status: each next status and what moves the order there.
    pub fn ways_out(self) -> &'static [(OrderStatus, Trigger)] {
        use OrderStatus::*;
        use Trigger::*;
        match self {
            PendingVerification => &[(Received, Customer), (Cancelled, Customer), (Cancelled, Sweeper)],
            PendingReview | Frozen => &[(Received, Staff), (Rejected, Staff)],
            Received => &[
                (AwaitingPayment, Reservation),
                (AwaitingReview, Reservation),
                (CodApproved, Reservation),
                (Rejected, Reservation),
                (Cancelled, Customer),
                (Cancelled, Sweeper),
            ],
            AwaitingPayment => &[
                (Paid, Payment),
                (PaymentMismatch, Payment),
                (Cancelled, Customer),
                (Cancelled, Payment),
                (Expired, Sweeper),
            ],
            AwaitingReview => &[(CodApproved, Staff), (Cancelled, Staff), (Cancelled, Customer), (Expired, Sweeper)],
            // Before its shipments exist a cancel releases the hold; after, fulfilment's cancel
            // returns their units (until one is handed over).
            // (A cash-on-delivery order is paid when the courier reports the cash collected: a
            // fact recorded on the order, not a status, since the parcel is on its way by then.)
            CodApproved => &[(Cancelled, Customer), (Cancelled, Staff), (Shipped, Fulfilment)],
            Paid => &[(Shipped, Fulfilment), (CancelledAfterPayment, Customer)],
            PaymentMismatch => &[(Paid, Staff), (Paid, Payment), (Cancelled, Staff)],
            // A payment that arrives after the hold ended: re-served, or refunded.
            Expired | Cancelled => &[(Paid, Payment), (RefundRequired, Payment)],
            // The couriers' reports move a shipped order on; staff may declare a parcel lost.
            Shipped => &[(Delivered, Courier), (Undelivered, Courier), (Undelivered, Staff)],
            // A parcel reported lost turns up and is delivered after all.
            Undelivered => &[(Delivered, Courier)],
            // After-sales ends when its window has passed with every ticket closed.
            Delivered => &[(Archived, Sweeper)],
            Rejected | RefundRequired | Archived | CancelledAfterPayment => &[],
        }
    }

    /// The transitions of the order state machine.
    pub fn can_become(self, next: OrderStatus) -> bool {
        self.ways_out().iter().any(|(to, _)| *to == next)
    }

    /// Whether `trigger` may move the order from this status to `next`.
    pub fn can_become_by(self, next: OrderStatus, trigger: Trigger) -> bool {
        self.ways_out().contains(&(next, trigger))
    }

    /// Statuses from which `next` can be reached: the write condition for that transition.
    pub fn sources_of(next: OrderStatus) -> Vec<OrderStatus> {
        Self::ALL.into_iter().filter(|s| s.can_become(next)).collect()
    }

    /// Whether stock is reserved for the order in this status.
    pub fn holds_stock(self) -> bool {
        matches!(self, Self::AwaitingPayment | Self::AwaitingReview | Self::CodApproved | Self::PaymentMismatch)
    }

    /// Whether the order's story has ended here: nothing more is expected of it. (An ended unpaid
    /// order can still be revived by a late payment, which is the payment's doing; an
    /// undelivered one by a parcel found and delivered.)
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Rejected
                | Self::Cancelled
                | Self::Expired
                | Self::RefundRequired
                | Self::Archived
                | Self::Undelivered
                | Self::CancelledAfterPayment
        )
    }
}

/// What moves an order from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The customer (or the shop for them): a code entered, a cancel.
    Customer,
    /// Staff on the staff API: a review decision, a payment accepted or refunded.
    Staff,
    /// The stock-reservation function, on OrderReceived.
    Reservation,
    /// The payment processor, on the provider's event.
    Payment,
    /// The scheduled sweeper: holds past their expiry, codes past theirs, orders past the
    /// reservation deadline, delivered orders past their after-sales window.
    Sweeper,
    /// Fulfilment: the last shipment handed over to its courier.
    Fulfilment,
    /// The courier's tracking reports (pushed or polled): the last parcel delivered or lost.
    Courier,
}

/// How long an order may wait in RECEIVED for reservation to decide it. Reservation takes
/// seconds; an order still RECEIVED this long after has had its message dead-lettered, and the
/// sweeper cancels it rather than leave it, and the customer, waiting for ever.
pub const RESERVATION_DEADLINE: time::Duration = time::Duration::hours(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Online,
    CashOnDelivery,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: Quantity,
    pub unit_price_minor: i64,
    /// The warehouse holding this line, once stock is reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<WarehouseId>,
    /// Which of the warehouse's stock items holds it, when the SKU's stock is split (0, the
    /// SKU's own item, is left out).
    #[serde(default, skip_serializing_if = "super::stock_shards::is_own_item")]
    pub stock_shard: u32,
}

impl OrderLine {
    /// What reservation holds for this line, once it has a warehouse.
    pub fn allocation(&self) -> Option<Allocation> {
        let warehouse = self.warehouse.clone()?;
        Some(Allocation { shard: self.stock_shard, ..Allocation::new(self.sku.clone(), warehouse, self.quantity) })
    }
}

/// A line that could not be served: what was asked and the most any single warehouse had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortLine {
    pub sku: Sku,
    pub requested: u32,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub currency: Currency,
    pub total_minor: i64,
    pub payment_method: PaymentMethod,
    pub channel: ChannelId,
    pub device_id: DeviceId,
    /// Where the parcel goes; who and which door are in `personal`.
    pub shipping_address: Destination,
    /// The phone's last four digits, for the customer and staff to recognise it.
    #[serde(default)]
    pub phone_hint: String,
    /// The recipient, phone, street, house number and client IP, sealed
    /// ([`crate::personal`]); none once erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<crate::personal::SealedPersonal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_note: Option<String>,
    /// When the channel says the customer placed the order; wins over `received_at` for ordering.
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub hold_expires_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub short_lines: Vec<ShortLine>,
    /// The provider's payment that paid (or was flagged on) this order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// What the order was paid, when staff accepted an amount other than its total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_minor: Option<i64>,
    /// The payment under review while the order is PAYMENT_MISMATCH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_under_review: Option<super::payment::PaymentUnderReview>,
    /// Payments ruled on while the order was PAYMENT_MISMATCH (accepted, or to be refunded): the
    /// provider re-reporting one under a new event id changes nothing and refunds nothing again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ruled_payments: Vec<String>,
    /// Payments that arrived while the order was still RECEIVED: kept in the inbox (PARKED) and
    /// applied once the order moves on (ParkedPaymentsDue).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parked_payments: Vec<super::payment::PaymentKey>,
    /// Why the last payment attempt failed, as the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_payment_failure: Option<String>,
    /// The risk score and the rules that fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<super::risk::Assessment>,
    /// The step-up verification in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The courier the customer chose at checkout, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_courier: Option<super::values::CourierId>,
    /// What is still to refund when a paid order is cancelled (the payment less shortage refunds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_due_minor: Option<i64>,
    /// How many shipments fulfilment made of it, once it has (their items sit beside the order's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipments: Option<u32>,
    /// When its personal data was erased (retention ran out, or the customer asked).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub personal_erased_at: Option<OffsetDateTime>,
    /// When its last parcel was delivered (DELIVERED): the after-sales window counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    /// Cash on delivery: when the couriers' collections reached the order's total (the order is
    /// paid; `paid_minor` is what they collected).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub cash_collected_at: Option<OffsetDateTime>,
    /// When after-sales ended (ARCHIVED).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub archived_at: Option<OffsetDateTime>,
    /// 1 when created; every write of the order adds one. Events name the version they describe.
    #[serde(default)]
    pub version: u64,
}

/// A verification code sent to the customer: only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub code_hash: String,
    pub attempts_left: u32,
    /// Unix seconds.
    pub expires_at: i64,
    /// Codes sent again at the customer's request.
    #[serde(default)]
    pub resends: u32,
    /// Unix seconds: when the last code went out.
    #[serde(default)]
    pub sent_at: i64,
}

/// How long a final order that could still move on (a late payment re-serves a cancelled or
/// expired order; a parcel reported lost turns up) keeps what it may need: then it is done with.
pub const REVIVAL_GRACE: time::Duration = time::Duration::days(30);

impl Order {
    /// Whether nothing will need the order's personal data any more: nothing can move it on, or
    /// what could has had [`REVIVAL_GRACE`] to happen.
    pub fn done_with(&self, now: OffsetDateTime) -> bool {
        self.status.ways_out().is_empty() || (self.status.is_final() && self.updated_at + REVIVAL_GRACE <= now)
    }

    /// Whether `payment_id` was already dealt with as this order's mismatched payment: under
    /// review now, or ruled on.
    pub fn has_reviewed_payment(&self, payment_id: &str) -> bool {
        self.payment_under_review.as_ref().is_some_and(|review| review.payment_id == payment_id)
            || self.ruled_payments.iter().any(|ruled| ruled == payment_id)
    }

    /// A validated draft becomes an order: its id, RECEIVED, stamped with when we got it.
    pub fn receive(
        draft: super::request::OrderDraft,
        order_id: OrderId,
        personal: crate::personal::SealedPersonal,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            order_id,
            customer_id: draft.customer_id,
            status: OrderStatus::Received,
            lines: draft.lines,
            currency: draft.currency,
            total_minor: draft.total.minor,
            payment_method: draft.payment_method,
            channel: draft.channel,
            device_id: draft.device_id,
            shipping_address: draft.shipping_address.destination,
            phone_hint: draft.phone.masked(),
            personal: Some(personal),
            customer_note: draft.customer_note,
            event_time: draft.event_time,
            received_at: now,
            updated_at: now,
            hold_expires_at: None,
            short_lines: Vec::new(),
            payment_id: None,
            paid_minor: None,
            payment_under_review: None,
            ruled_payments: Vec::new(),
            parked_payments: Vec::new(),
            last_payment_failure: None,
            risk: None,
            verification: None,
            preferred_courier: draft.preferred_courier,
            shipments: None,
            personal_erased_at: None,
            delivered_at: None,
            cash_collected_at: None,
            archived_at: None,
            refund_due_minor: None,
            version: 1,
        }
    }

    /// The lines that have a warehouse, i.e. what reservation put on hold for this order.
    pub fn reserved_allocations(&self) -> Vec<Allocation> {
        self.lines.iter().filter_map(OrderLine::allocation).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn received_orders_are_reserved_rejected_or_cancelled() {
        assert!(Received.can_become(AwaitingPayment));
        assert!(Received.can_become(AwaitingReview));
        assert!(Received.can_become(Rejected));
        assert!(Received.can_become(Cancelled));
        assert!(!Received.can_become(Paid));
        assert!(!Received.can_become(Expired));
    }

    #[test]
    fn ended_orders_go_nowhere_but_a_late_payment_can_revive_them() {
        for next in OrderStatus::ALL {
            assert!(!Rejected.can_become(next), "Rejected -> {next:?}");
            assert!(!RefundRequired.can_become(next), "RefundRequired -> {next:?}");
            assert!(!CancelledAfterPayment.can_become(next), "CancelledAfterPayment -> {next:?}");
            for end in [Cancelled, Expired] {
                assert_eq!(end.can_become(next), matches!(next, Paid | RefundRequired), "{end:?} -> {next:?}");
            }
        }
    }

    #[test]
    fn every_status_that_is_not_final_has_a_way_out_to_a_final_one() {
        use std::collections::BTreeSet;
        for start in OrderStatus::ALL.into_iter().filter(|s| !s.is_final()) {
            assert!(!start.ways_out().is_empty(), "{start:?} has no way out");
            // Walk the machine: some final status must be reachable.
            let mut seen = BTreeSet::from([start.as_str()]);
            let mut frontier = vec![start];
            let mut ends = false;
            while let Some(status) = frontier.pop() {
                for (next, _) in status.ways_out() {
                    ends |= next.is_final();
                    if seen.insert(next.as_str()) {
                        frontier.push(*next);
                    }
                }
            }
            assert!(ends, "{start:?} can never end");
        }
    }

    #[test]
    fn a_payment_under_review_is_settled_by_staff_or_a_correct_payment() {
        assert!(PaymentMismatch.can_become_by(Paid, Trigger::Staff));
        assert!(PaymentMismatch.can_become_by(Paid, Trigger::Payment));
        assert!(PaymentMismatch.can_become_by(Cancelled, Trigger::Staff));
        assert!(!PaymentMismatch.can_become_by(Cancelled, Trigger::Customer), "a customer cancel would keep the money");
    }

    #[test]
    fn only_an_order_awaiting_payment_can_be_flagged_for_a_mismatch() {
        assert_eq!(OrderStatus::sources_of(PaymentMismatch), vec![AwaitingPayment]);
    }

    #[test]
    fn a_paid_order_ships_or_is_cancelled_with_a_refund_but_never_expires() {
        assert!(!Paid.can_become(Cancelled), "a paid cancel refunds: it is its own status");
        assert!(!Paid.can_become(Expired));
        assert!(Paid.can_become_by(Shipped, Trigger::Fulfilment));
        assert!(Paid.can_become_by(CancelledAfterPayment, Trigger::Customer));
        assert_eq!(OrderStatus::sources_of(Shipped), vec![CodApproved, Paid]);
    }

    #[test]
    fn a_customer_may_cancel_every_unpaid_order_not_held_by_risk_or_staff() {
        let cancellable: Vec<_> =
            OrderStatus::ALL.into_iter().filter(|s| s.can_become_by(Cancelled, Trigger::Customer)).collect();
        assert_eq!(cancellable, vec![PendingVerification, Received, AwaitingPayment, AwaitingReview, CodApproved]);
    }

    #[test]
    fn only_review_releases_a_held_or_frozen_order() {
        assert_eq!(OrderStatus::sources_of(Received), vec![PendingVerification, PendingReview, Frozen]);
        assert!(!Frozen.can_become(Cancelled), "a frozen order waits for the risk team");
    }

    #[test]
    fn only_reserved_statuses_hold_stock() {
        let holding: Vec<_> = OrderStatus::ALL.into_iter().filter(|s| s.holds_stock()).collect();
        assert_eq!(holding, vec![AwaitingPayment, AwaitingReview, CodApproved, PaymentMismatch]);
    }

    #[test]
    fn statuses_serialise_as_their_wire_names() {
        for s in OrderStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
    }
}
