//! The sample logistics events in `events/` are what the functions read: a courier's push body
//! (signed now, as the courier would), the tracking queue's CourierPushReceived, the poller's
//! schedule, and the customer's tracking request, with the sample's ids swapped for this run's.

use super::seeded;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use orderflow::handlers::logistics::consumer::handle_batch;
use orderflow::handlers::logistics::routes;
use orderflow_tests::apigw::request_from_event;
use orderflow_tests::emulators::repo_root;
use orderflow_tests::fixtures::exchange;
use orderflow_tests::parcels::{handed_over, process_tracking_queue, push_raw, stored};

const SAMPLE_ORDER: &str = "01KAQZ3X5V7Y9B1D3F5H7K9M2P";
const SAMPLE_WAYBILL: &str = "STANDARDPOST00000001";

fn sample(name: &str, swaps: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(repo_root().join("events").join(name)).unwrap();
    swaps.iter().fold(text, |text, (from, to)| text.replace(from, to))
}

#[tokio::test]
async fn the_sample_logistics_events_are_handled_as_documented() {
    let (stack, clock) = seeded().await;
    let parcel = handed_over(&stack, 1).await;
    let order = parcel.order_id.to_string();
    // The samples' checkpoints must not lie in the future (a clock behind their dates).
    clock.set(stack.clock.now().max(time::macros::datetime!(2026-11-22 10:00 UTC)));
    let swaps = [(SAMPLE_ORDER, order.as_str()), (SAMPLE_WAYBILL, parcel.waybill.as_str())];

    let queued: SqsEvent = serde_json::from_str(&sample("tracking-sqs.json", &swaps)).unwrap();
    assert!(handle_batch(&stack.logistics_as("tracking"), queued).await.batch_item_failures.is_empty());
    let codes = |s: &orderflow::domain::Shipment| -> Vec<String> {
        s.tracking.as_ref().unwrap().checkpoints.iter().map(|c| c.raw_code.clone()).collect()
    };
    assert_eq!(codes(&stored(&stack, &parcel).await), vec!["ARRIVED_HUB"]);

    let body = sample("courier-push-body.json", &swaps);
    let now = stack.clock.now().unix_timestamp();
    let signature = orderflow::domain::payment::sign(
        orderflow_tests::courier::local_courier_secret(parcel.courier.as_str()).as_bytes(),
        now,
        body.as_bytes(),
    );
    let (status, answer) = push_raw(&stack, parcel.courier.as_str(), body, Some(signature)).await;
    assert_eq!(status, 200, "{answer}");
    process_tracking_queue(&stack).await;
    assert_eq!(codes(&stored(&stack, &parcel).await), vec!["PICKED_UP", "ARRIVED_HUB", "SIGNED"]);

    let schedule: EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(&sample("tracking-poller-schedule.json", &[])).unwrap();
    assert_eq!(schedule.detail_type, "Scheduled Event");

    let owner = stack.store().order(parcel.order_id).await.unwrap().unwrap().customer_id.to_string();
    let owner_claim = format!("\"{owner}\"");
    let request = sample("get-tracking.json", &[swaps[0], ("\"cust-42\"", owner_claim.as_str())]);
    let request = request_from_event(serde_json::from_str(&request).unwrap());
    let (status, tracking) =
        exchange(request, |r| async { routes::handle(&stack.logistics_as("logistics-api"), r).await }).await;
    assert_eq!((status, tracking["status"].as_str()), (200, Some("DELIVERED")), "{tracking}");
}
