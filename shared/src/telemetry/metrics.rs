//! Business metrics in CloudWatch Embedded Metric Format: what they are called, who counts them,
//! and when they are written out.
//!
//! The counts come from committed facts, not from attempts:
//! - the event relay counts what it published ([`relayed`]): every event by detail-type, and the
//!   order and parcel milestones among them (received, reserved, rejected, paid, expired; alerts);
//! - payment processing counts each payment event it resolved, by outcome ([`payment_resolved`]).
//!
//! A function that calls [`init`] writes its counts to stdout after each invocation
//! ([`flushing`]), one JSON document per label set; CloudWatch Logs turns them into metrics of the
//! namespace [`NAMESPACE`]. Without [`init`] (tests, benchmarks) counting costs nothing.
//!
//! A batch the stream retries after a partial failure publishes some events again, and they are
//! counted again: the relay's counts can run slightly high. An invocation that dies before it
//! returns (a timeout) never writes what it counted.

use crate::events::{Announcement, ApprovedBy, DomainEvent};
use crate::store::Resolution;
use metrics_cloudwatch_embedded::Collector;
use std::future::Future;
use std::sync::OnceLock;

/// The CloudWatch namespace of every Orderflow metric.
pub const NAMESPACE: &str = "Orderflow";

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Install the EMF recorder for this process, named after the function (a property of every
/// document, for searching the logs; not a dimension, so a metric sums over functions).
pub fn init() -> Result<(), metrics_cloudwatch_embedded::Error> {
    if COLLECTOR.get().is_some() {
        return Ok(());
    }
    let collector = metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace(NAMESPACE).init()?;
    if let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        collector.set_property("function", function);
    }
    let _ = COLLECTOR.set(collector);
    Ok(())
}

/// Write the counts since the last flush to `writer`, one line per label set; nothing when
/// [`init`] was not called or nothing was counted.
pub fn flush_to(writer: impl std::io::Write) -> std::io::Result<()> {
    match COLLECTOR.get() {
        Some(collector) => collector.flush(writer),
        None => Ok(()),
    }
}

/// Run one invocation, then write its counts to stdout, where the Lambda log agent picks them up.
pub async fn flushing<F: Future>(invocation: F) -> F::Output {
    let output = invocation.await;
    if let Err(err) = flush_to(std::io::stdout().lock()) {
        tracing::warn!(error = %err, "metrics not written");
    }
    output
}

/// Count an event the relay published, and the milestone it marks, if any.
pub fn relayed(announcement: &Announcement) {
    metrics::counter!("EventsRelayed", "DetailType" => announcement.detail_type()).increment(1);
    match milestone(&announcement.event) {
        Some(Milestone::Plain(name)) => metrics::counter!(name).increment(1),
        Some(Milestone::Labelled(name, label, value)) => metrics::counter!(name, label => value).increment(1),
        None => {}
    }
}

/// Count a payment event resolved, by its outcome.
pub fn payment_resolved(resolution: &Resolution) {
    metrics::counter!("PaymentsResolved", "Outcome" => outcome(resolution)).increment(1);
}

enum Milestone {
    Plain(&'static str),
    Labelled(&'static str, &'static str, &'static str),
}

fn milestone(event: &DomainEvent) -> Option<Milestone> {
    use Milestone::{Labelled, Plain};
    Some(match event {
        DomainEvent::OrderReceived(_) => Plain("OrdersReceived"),
        DomainEvent::StockReserved(_) => Plain("OrdersReserved"),
        // A cash-on-delivery order the policy approves goes from RECEIVED straight to approved:
        // that is its reservation. One staff approve was reserved (AWAITING_REVIEW) before.
        DomainEvent::CashOnDeliveryApproved(approved) if approved.approved_by == ApprovedBy::Policy => {
            Plain("OrdersReserved")
        }
        DomainEvent::OrderRejected(rejected) => Labelled("OrdersRejected", "Reason", rejected.reason.as_str()),
        DomainEvent::OrderPaid(_) => Plain("OrdersPaid"),
        DomainEvent::OrderExpired(_) => Plain("OrdersExpired"),
        DomainEvent::ParcelStuck(_) => Labelled("AlertsRaised", "Alert", "ParcelStuck"),
        DomainEvent::SlaBreached(_) => Labelled("AlertsRaised", "Alert", "SlaBreached"),
        _ => return None,
    })
}

fn outcome(resolution: &Resolution) -> &'static str {
    match resolution {
        Resolution::Paid => "Paid",
        Resolution::LatePaid => "LatePaid",
        Resolution::Mismatched { .. } => "Mismatched",
        Resolution::AlreadyApplied => "AlreadyApplied",
        Resolution::DuplicateCharge => "DuplicateCharge",
        Resolution::RefundRequired { .. } => "RefundRequired",
        Resolution::UnknownOrder => "UnknownOrder",
        Resolution::Failed => "Failed",
    }
}
