//! No personal data in logs or events: an order is taken, reserved, paid, made into a shipment,
//! picked, packed, labelled, handed over and delivered, with every log line of the run (debug
//! and up) and every event on the bus captured; neither the order's phone, its recipient, its
//! street nor the client's IP shows in any of them. (A test binary of its own: it installs the
//! process's log subscriber.)

use orderflow_tests::after_sales::delivered;
use orderflow_tests::fixtures::one_warehouse;
use orderflow_tests::Stack;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where every log line of the run goes, as JSON lines, as Lambda would ship them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const CLEAR: [&str; 5] = ["13800138000", "Li Lei", "Wensan Road", "Wensan", "198.51.100.23"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_whole_life_logs_and_announces_no_personal_value() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("this binary's only subscriber");
    let (stack, clock) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    let bus = stack.observe_bus().await;

    let parcel = delivered(&stack, &clock, 1).await;
    stack.relay().await;

    let events = bus.events_until_quiet(Duration::from_secs(2)).await;
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(events.len() >= 6, "the run's events were seen: {}", events.len());
    assert!(logs.lines().count() >= 10, "the run's logs were captured:\n{logs}");
    assert!(logs.contains(&parcel.order_id.to_string()), "the logs name the order");
    let events = serde_json::to_string(&events).unwrap();
    for clear in CLEAR {
        assert!(!logs.contains(clear), "{clear} in a log line:\n{logs}");
        assert!(!events.contains(clear), "{clear} in an event: {events}");
    }
}
