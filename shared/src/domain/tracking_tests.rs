//! The tracking model's rules: checkpoints once and in event order, DELIVERED kept, and each
//! alert raised at its threshold (not a second before), once, and cleared when its condition ends.

use super::*;
use time::macros::datetime;
use time::Duration;

const HANDED_OVER: OffsetDateTime = datetime!(2026-11-02 10:00 UTC);

fn at(hours: i64) -> OffsetDateTime {
    HANDED_OVER + Duration::hours(hours)
}

fn checkpoint(hours: i64, status: TrackingStatus, raw: &str) -> Checkpoint {
    Checkpoint {
        at: at(hours),
        status,
        raw_code: raw.into(),
        place: "Hangzhou hub".into(),
        signed_by: None,
        left_at: None,
    }
}

/// Handed over, and polled at once: the next poll is far off, so the thresholds decide when the
/// poller looks again.
fn handed_over() -> Tracking {
    let mut tracking = Tracking::default();
    tracking.hand_over(HANDED_OVER);
    assert_eq!((tracking.next_poll_at, tracking.next_check_at), (Some(HANDED_OVER), Some(HANDED_OVER)), "due at once");
    tracking.next_poll_at = Some(at(1_000));
    tracking
}

fn raised(tracking: &Tracking) -> Vec<(AlertKind, bool)> {
    tracking.alerts.iter().map(|a| (a.kind, a.cleared_at.is_none())).collect()
}

#[test]
fn a_checkpoint_pushed_and_polled_is_stored_once_and_late_ones_take_their_place_in_time() {
    let mut tracking = handed_over();
    assert_eq!(tracking.record(&[checkpoint(5, TrackingStatus::OutForDelivery, "OFD")]), 1);
    assert_eq!(
        tracking.record(&[
            checkpoint(1, TrackingStatus::InTransit, "ARR"),
            checkpoint(5, TrackingStatus::OutForDelivery, "OFD")
        ]),
        1
    );
    let times: Vec<_> = tracking.checkpoints.iter().map(|c| c.at).collect();
    assert_eq!(times, vec![at(1), at(5)]);
    assert_eq!(tracking.status, Some(TrackingStatus::OutForDelivery), "the latest by event time, not by arrival");
    assert_eq!(tracking.collected_at, Some(at(1)));
}

#[test]
fn a_delivered_parcel_never_falls_back_unless_the_courier_reports_a_return() {
    let mut tracking = handed_over();
    tracking.record(&[checkpoint(10, TrackingStatus::Delivered, "SIGNED")]);
    tracking.record(&[checkpoint(11, TrackingStatus::InTransit, "ARR")]);
    assert_eq!(tracking.status, Some(TrackingStatus::Delivered));
    assert_eq!(tracking.delivered_at, Some(at(10)));
    tracking.record(&[checkpoint(30, TrackingStatus::ReturnedToSender, "RTS")]);
    assert_eq!(tracking.status, Some(TrackingStatus::ReturnedToSender));
    assert_eq!(tracking.delivered_at, None);
}

#[test]
fn not_collected_is_raised_at_72_hours_not_a_second_before_and_cleared_by_the_collection() {
    let policy = LogisticsPolicy::default();
    let mut tracking = handed_over();
    tracking.evaluate(&policy, at(72) - Duration::seconds(1));
    assert!(tracking.alerts.is_empty());
    assert_eq!(tracking.next_check_at, Some(at(72)), "the poller looks again at the threshold");
    tracking.evaluate(&policy, at(72));
    assert_eq!(raised(&tracking), vec![(AlertKind::NotCollected, true)]);
    tracking.evaluate(&policy, at(80));
    assert_eq!(tracking.alerts.len(), 1, "raised once while the condition holds");
    tracking.record(&[checkpoint(81, TrackingStatus::InTransit, "PICKED_UP")]);
    tracking.evaluate(&policy, at(82));
    assert_eq!(raised(&tracking), vec![(AlertKind::NotCollected, false)]);
}

#[test]
fn no_update_counts_from_the_latest_event_and_a_second_silence_is_a_second_alert() {
    let policy = LogisticsPolicy::default();
    let mut tracking = handed_over();
    tracking.record(&[checkpoint(2, TrackingStatus::InTransit, "PICKED_UP")]);
    tracking.evaluate(&policy, at(26) - Duration::seconds(1));
    assert!(tracking.alerts.is_empty());
    tracking.evaluate(&policy, at(26));
    assert_eq!(raised(&tracking), vec![(AlertKind::NoUpdate, true)]);
    tracking.record(&[checkpoint(30, TrackingStatus::InTransit, "DEP")]);
    tracking.evaluate(&policy, at(31));
    tracking.evaluate(&policy, at(54));
    let ids: Vec<_> = tracking.alerts.iter().map(|a| (a.id.as_str(), a.cleared_at.is_some())).collect();
    assert_eq!(ids, vec![("NO_UPDATE-1", true), ("NO_UPDATE-2", false)]);
}

#[test]
fn a_parcel_signed_by_someone_else_or_left_where_not_chosen_is_abnormal_until_the_customer_confirms() {
    let policy = LogisticsPolicy::default();
    for (signed_by, left_at, abnormal) in [
        (Some(Recipient::Customer), Some(DeliveryPlace::Door), false),
        (Some(Recipient::Other), Some(DeliveryPlace::Door), true),
        (Some(Recipient::Customer), Some(DeliveryPlace::Neighbour), true),
    ] {
        let mut tracking = handed_over();
        tracking.record(&[Checkpoint { signed_by, left_at, ..checkpoint(20, TrackingStatus::Delivered, "SIGNED") }]);
        tracking.evaluate(&policy, at(20));
        assert_eq!(tracking.open_alert(AlertKind::AbnormalSignOff).is_some(), abnormal, "{signed_by:?} {left_at:?}");
        tracking.receipt_confirmed_at = Some(at(21));
        tracking.evaluate(&policy, at(21));
        assert!(tracking.open_alert(AlertKind::AbnormalSignOff).is_none());
        assert_eq!(tracking.next_check_at, None, "a delivered parcel with nothing open needs no look");
    }
}

#[test]
fn an_unresolved_claim_is_overdue_at_its_deadline_and_cleared_by_its_resolution() {
    let policy = LogisticsPolicy::default();
    let mut tracking = handed_over();
    tracking.record(&[checkpoint(20, TrackingStatus::Delivered, "SIGNED")]);
    tracking.claim = Some(NotReceivedClaim {
        claim_id: "c1".into(),
        opened_at: at(30),
        resolve_by: at(78),
        opened_by: "customer:c1".into(),
        note: None,
        resolution: None,
        resolved_by: None,
        resolved_at: None,
    });
    tracking.evaluate(&policy, at(78) - Duration::seconds(1));
    assert_eq!(tracking.next_check_at, Some(at(78)));
    assert!(tracking.alerts.is_empty());
    tracking.evaluate(&policy, at(78));
    assert_eq!(raised(&tracking), vec![(AlertKind::ClaimOverdue, true)]);
    tracking.claim.as_mut().unwrap().resolution = Some(ClaimResolution::Reship);
    tracking.evaluate(&policy, at(79));
    assert_eq!(raised(&tracking), vec![(AlertKind::ClaimOverdue, false)]);
}

#[test]
fn a_checkpoint_far_in_the_future_or_with_a_bad_code_is_refused() {
    let now = at(0);
    assert!(checkpoint(1, TrackingStatus::InTransit, "ARR").validate(now).is_err());
    assert!(checkpoint(0, TrackingStatus::InTransit, "").validate(now).is_err());
    assert!(checkpoint(0, TrackingStatus::InTransit, "ARR").validate(now).is_ok());
    let mut ahead = checkpoint(0, TrackingStatus::InTransit, "ARR");
    ahead.at = now + Duration::minutes(15);
    assert!(ahead.validate(now).is_ok(), "a courier's clock may run 15 minutes ahead");
    ahead.at += Duration::seconds(1);
    assert_eq!(ahead.validate(now).unwrap_err().code, "checkpoint-in-future");
}

#[test]
fn a_place_the_customer_chose_is_normal_and_one_they_did_not_is_abnormal() {
    for (chosen, left_at, abnormal) in [
        (vec![DeliveryPlace::PickupPoint], DeliveryPlace::PickupPoint, false),
        (vec![DeliveryPlace::PickupPoint], DeliveryPlace::Door, true),
        (vec![], DeliveryPlace::Door, false),
        (vec![], DeliveryPlace::Locker, true),
    ] {
        assert_eq!(abnormal_sign_off(chosen.clone(), Recipient::Customer, left_at), abnormal, "{chosen:?} {left_at:?}");
    }
    // A neighbour the customer chose signs for it: that is the choice, not an anomaly.
    assert!(!abnormal_sign_off(vec![DeliveryPlace::Neighbour], Recipient::Other, DeliveryPlace::Neighbour));
    assert!(abnormal_sign_off(vec![DeliveryPlace::Door], Recipient::Other, DeliveryPlace::Door));
    assert!(abnormal_sign_off(vec![DeliveryPlace::Neighbour], Recipient::Other, DeliveryPlace::Door));
}

/// Whether a delivery signed by `signed_by` and left at `left_at` is abnormal when the customer
/// chose `chosen` (none: the policy's door).
fn abnormal_sign_off(chosen: Vec<DeliveryPlace>, signed_by: Recipient, left_at: DeliveryPlace) -> bool {
    let mut tracking = handed_over();
    tracking.chosen_places = chosen;
    let delivered = Checkpoint {
        signed_by: Some(signed_by),
        left_at: Some(left_at),
        ..checkpoint(20, TrackingStatus::Delivered, "SIGNED")
    };
    tracking.record(&[delivered]);
    tracking.evaluate(&LogisticsPolicy::default(), at(20));
    tracking.open_alert(AlertKind::AbnormalSignOff).is_some()
}

#[test]
fn a_parcel_staff_declared_lost_stays_lost_whatever_the_courier_reports_after() {
    let mut tracking = handed_over();
    tracking.record(&[checkpoint(1, TrackingStatus::InTransit, "PICKED_UP")]);
    tracking.declare_lost(at(100));
    assert_eq!(tracking.status, Some(TrackingStatus::Lost));
    tracking.record(&[checkpoint(120, TrackingStatus::InTransit, "FOUND_AT_HUB")]);
    tracking.record(&[checkpoint(130, TrackingStatus::Delivered, "SIGNED")]);
    assert_eq!(tracking.status, Some(TrackingStatus::Lost));
    assert_eq!(tracking.delivered_at, None);
    assert_eq!(tracking.checkpoints.len(), 4, "what the courier reported is kept");
}

#[test]
fn trimming_past_the_cap_keeps_the_collection_the_delivery_and_the_status() {
    let mut tracking = handed_over();
    tracking.record(&[checkpoint(1, TrackingStatus::InTransit, "PICKED_UP")]);
    tracking.record(&[checkpoint(2, TrackingStatus::Delivered, "SIGNED")]);
    let scans: Vec<Checkpoint> =
        (0..MAX_CHECKPOINTS as i64 + 20).map(|i| checkpoint(3 + i, TrackingStatus::InTransit, "SCAN")).collect();
    tracking.record(&scans);
    assert_eq!(tracking.checkpoints.len(), MAX_CHECKPOINTS);
    assert_eq!(tracking.collected_at, Some(at(1)));
    assert_eq!((tracking.status, tracking.delivered_at), (Some(TrackingStatus::Delivered), Some(at(2))));
    assert_eq!(tracking.last_update_at(), Some(at(2 + MAX_CHECKPOINTS as i64 + 20)));
}
