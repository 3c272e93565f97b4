//! Courier KPIs from a scripted month of events (each counted once, in the month it happened),
//! the staff route that shows them, and the month-end review suspending the bottom courier.

use super::seeded;
use orderflow::domain::fulfilment_policy::Speed;
use orderflow::domain::logistics_policy::KpiScoring;
use orderflow::domain::tracking::TrackingStatus;
use orderflow::domain::{CourierId, LogisticsPolicy, OrderId, ShipmentId};
use orderflow::events::fulfilment::ShipmentDispatched;
use orderflow::events::logistics::{NotReceivedClaimOpened, ParcelDeliveryEnded, ParcelRef};
use orderflow::events::{Announcement, DomainEvent};
use orderflow::handlers::logistics::kpi::{month_of, REVIEWER};
use orderflow::handlers::logistics::poller::{run, PollerSettings};
use orderflow_tests::fixtures::operations;
use orderflow_tests::parcels::{announce_to_tracking, call};
use time::macros::datetime;
use time::OffsetDateTime;

/// One parcel's month, as its events tell it.
enum Fate {
    /// Still on its way when the month ends.
    InTransit,
    OnTime,
    Late,
    Lost,
    DeliveredThenClaimed,
}

fn parcel(courier: &str) -> ParcelRef {
    let order_id = OrderId::generate();
    ParcelRef {
        shipment_id: ShipmentId::parse(&format!("{order_id}-1")).unwrap(),
        order_id,
        courier: CourierId::parse(courier).unwrap(),
        waybill_number: format!("{}-{order_id}", courier.to_uppercase()),
    }
}

/// The events of one parcel of `courier`'s handed over at `at`.
fn script(courier: &str, fate: Fate, at: OffsetDateTime) -> Vec<Announcement> {
    let parcel = parcel(courier);
    let dispatched = DomainEvent::ShipmentDispatched(ShipmentDispatched {
        shipment_id: parcel.shipment_id.clone(),
        order_id: parcel.order_id,
        warehouse: orderflow::domain::WarehouseId::parse("HZ").unwrap(),
        courier: parcel.courier.clone(),
        speed: Speed::Standard,
        waybill_number: parcel.waybill_number.clone(),
        insured: false,
        handed_over_at: Some(at),
    });
    let ended = |status, on_time| {
        DomainEvent::ParcelDeliveryEnded(ParcelDeliveryEnded {
            parcel: parcel.clone(),
            status,
            at: at + time::Duration::days(2),
            on_time,
        })
    };
    let mut events = vec![Announcement::of_shipment(&parcel.shipment_id, 1, dispatched)];
    let end = match fate {
        Fate::InTransit => return events,
        Fate::OnTime | Fate::DeliveredThenClaimed => ended(TrackingStatus::Delivered, true),
        Fate::Late => ended(TrackingStatus::Delivered, false),
        Fate::Lost => ended(TrackingStatus::Lost, false),
    };
    events.push(Announcement::of_shipment(&parcel.shipment_id, 2, end));
    if let Fate::DeliveredThenClaimed = fate {
        let claim = DomainEvent::NotReceivedClaimOpened(NotReceivedClaimOpened {
            parcel: parcel.clone(),
            claim_id: format!("{}-claim", parcel.shipment_id),
            opened_at: at + time::Duration::days(3),
            resolve_by: at + time::Duration::days(5),
        });
        events.push(Announcement::of_shipment(&parcel.shipment_id, 3, claim));
    }
    events
}

#[tokio::test]
async fn a_scripted_month_gives_each_courier_its_rates_and_the_review_suspends_the_worst_once() {
    let (stack, clock) = seeded().await;
    let mut fulfilment = stack.store().fulfilment_policy().await.unwrap().unwrap_or_default();
    let template = fulfilment.couriers[0].clone();
    for id in ["sf", "zto"] {
        fulfilment.couriers.push(orderflow::domain::fulfilment_policy::CourierRule {
            id: CourierId::parse(id).unwrap(),
            ..template.clone()
        });
    }
    stack.store().save_policy(&fulfilment, "test", stack.clock.now()).await.unwrap();
    let scoring = KpiScoring { suspend_bottom_pct: 34, min_parcels: 4, ..LogisticsPolicy::default().scoring };
    let policy = LogisticsPolicy { scoring, ..Default::default() };
    stack.store().save_policy(&policy, "test", stack.clock.now()).await.unwrap();

    // October: sf delivers 4 of 4 on time; zto 3 on time, 1 late; standard-post delivers two
    // (one claimed as not received), loses one, and takes one at the month's last second.
    let october = datetime!(2026-10-10 09:00 UTC);
    let mut events = Vec::new();
    for fate in [Fate::OnTime, Fate::OnTime, Fate::OnTime, Fate::OnTime] {
        events.extend(script("sf", fate, october));
    }
    for fate in [Fate::OnTime, Fate::OnTime, Fate::OnTime, Fate::Late] {
        events.extend(script("zto", fate, october));
    }
    for fate in [Fate::OnTime, Fate::Lost, Fate::DeliveredThenClaimed] {
        events.extend(script("standard-post", fate, october));
    }
    events.extend(script("standard-post", Fate::InTransit, datetime!(2026-10-31 23:59:59 UTC)));
    let redelivered = events[0].clone();
    announce_to_tracking(&stack, &events).await;
    announce_to_tracking(&stack, &[redelivered]).await;

    clock.set(datetime!(2026-11-01 00:00:30 UTC));
    let (status, body) =
        call(&stack, &operations(), "GET", "/admin/courier-kpis?month=2026-10", "/admin/courier-kpis", None).await;
    assert_eq!(status, 200, "{body}");
    let kpi =
        |courier: &str| body["couriers"].as_array().unwrap().iter().find(|k| k["courier"] == courier).cloned().unwrap();
    assert_eq!(kpi("sf")["handed_over"], 4, "the redelivered hand-over counted once");
    assert_eq!(kpi("sf")["on_time_per_mille"], 1000);
    assert_eq!(kpi("zto")["on_time_per_mille"], 750);
    let post = kpi("standard-post");
    assert_eq!(post["handed_over"], 4, "the last second of October is October");
    assert_eq!((post["loss_per_mille"].as_u64(), post["complaint_per_mille"].as_u64()), (Some(333), Some(500)));
    assert!(
        stack.store().courier_months(&month_of(stack.clock.now())).await.unwrap().is_empty(),
        "nothing in November"
    );

    let poller = stack.logistics_as("tracking-poller");
    let report = run(&poller, &PollerSettings::default()).await.unwrap();
    assert_eq!(report.suspended, vec![CourierId::parse("standard-post").unwrap()]);
    let saved = stack.store().fulfilment_policy().await.unwrap().unwrap();
    let suspended: Vec<_> = saved.couriers.iter().filter(|c| c.suspended).map(|c| c.id.as_str()).collect();
    assert_eq!(suspended, vec!["standard-post"]);
    let audit = stack.store().audit_of_day(time::macros::date!(2026 - 11 - 01)).await.unwrap();
    assert!(audit.iter().any(|r| r.actor == REVIEWER), "an audited save by the review: {audit:?}");
    clock.set(datetime!(2026-11-01 00:01:30 UTC));
    assert!(run(&poller, &PollerSettings::default()).await.unwrap().suspended.is_empty(), "reviewed once");
}
