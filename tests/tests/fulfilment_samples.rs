//! The sample fulfilment events in `events/` are what the functions read: the queue's OrderPaid
//! makes the shipment, and the wave, scan and shortage-answer requests act on it, with the
//! sample's ids swapped for the ones this run made.

use aws_lambda_events::event::sqs::SqsEvent;
use orderflow::handlers::fulfilment::{handle_batch, routes};
use orderflow_tests::apigw::request_from_event;
use orderflow_tests::emulators::repo_root;
use orderflow_tests::fixtures::{exchange, one_warehouse, warehouse_staff};
use orderflow_tests::warehouse::{paid, post, shipments};
use orderflow_tests::Stack;
use serde_json::{json, Value};

const SAMPLE_ORDER: &str = "01KAQZ3X5V7Y9B1D3F5H7K9M2P";
const SAMPLE_WAVE: &str = "01KAQZ9S2W4Y6A8C0E2G4J6M8P";
const SAMPLE_BARCODE: &str = "6901234567892";

/// A file of `events/` with each (sample, actual) pair swapped.
fn sample(name: &str, swaps: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(repo_root().join("events").join(name)).unwrap();
    swaps.iter().fold(text, |text, (from, to)| text.replace(from, to))
}

async fn api(stack: &Stack, name: &str, swaps: &[(&str, &str)]) -> (u16, Value) {
    let request = request_from_event(serde_json::from_str(&sample(name, swaps)).unwrap());
    exchange(request, |r| async { routes::handle(&stack.fulfilment_as("fulfilment-api"), r).await }).await
}

#[tokio::test]
async fn the_sample_fulfilment_events_are_handled_as_documented() {
    let (stack, _) = Stack::for_test().await;
    let mut seed = one_warehouse(&[("TEA", 10)]);
    seed.catalogue[0].barcode = Some(SAMPLE_BARCODE.into());
    stack.seed(&seed).await.unwrap();
    let id = paid(&stack, &[("TEA", 2)]).await;
    let order = id.to_string();

    let event: SqsEvent = serde_json::from_str(&sample("order-paid-sqs.json", &[(SAMPLE_ORDER, &order)])).unwrap();
    assert!(handle_batch(&stack.fulfilment_core("fulfilment"), event).await.batch_item_failures.is_empty());
    let shipment = shipments(&stack, id).await[0].shipment_id.to_string();

    let (status, wave) = api(&stack, "post-wave.json", &[]).await;
    assert_eq!(status, 201, "{wave}");
    let wave_id = wave["wave"]["wave_id"].as_str().unwrap().to_owned();
    let (status, scanned) = api(&stack, "post-scan.json", &[(SAMPLE_ORDER, &order), (SAMPLE_WAVE, &wave_id)]).await;
    assert_eq!(status, 200, "{scanned}");
    assert_eq!(scanned["lines"][0]["picked"], 1);

    let (status, _) =
        post(&stack, &warehouse_staff(), &shipment, "shortage", Some(json!({"reason": "bin empty"}))).await;
    assert_eq!(status, 200);
    let owner = stack.store().order(id).await.unwrap().unwrap().customer_id.to_string();
    let (status, answered) =
        api(&stack, "post-shortage-answer.json", &[(SAMPLE_ORDER, &order), ("\"cust-42\"", &format!("\"{owner}\""))])
            .await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["refunds"][0]["lines"][0]["missing"], 1);
}
