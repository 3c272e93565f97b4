//! The operations dashboard's page in a real headless Chromium, on the local stack after a
//! scripted day of orders (delivered and returned, paid, failed, unpaid, out of stock): the page
//! is refused without an operations token, draws the day's figures with the numbers the script
//! implies, refreshes itself, answers a week by the hour and a month by the day, logs no error
//! and loads nothing from elsewhere. It saves the screenshot the README shows (`UPDATE_README=1`
//! writes it to docs/).

use orderflow_tests::browser::{browser_dir, Browser};
use orderflow_tests::fixtures::{from_own_customer, one_warehouse, order_body};
use orderflow_tests::journeys::{pay, pay_for, place, returned_checked_and_refunded, ship_and_deliver, until};
use orderflow_tests::local::{self, ApiClient, LocalOptions, Running};
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A customer of its own (so that the day's orders do not look like one customer's burst to
/// risk control): its `Authorization`, and an order body of two TEA for `channel`.
async fn customer(api: &ApiClient, channel: &str, sku: &str) -> (String, Value) {
    let mut body = from_own_customer(&order_body(&[(sku, 2)], "Zhejiang"));
    body["channel"] = json!(channel);
    let customer = api.bearer(json!({"kind": "customer", "customer_id": body["customer_id"]})).await.unwrap();
    (customer, body)
}

/// One order placed over HTTP on `channel`: its customer's `Authorization` and its location.
async fn order(api: &ApiClient, channel: &str, sku: &str) -> (String, String) {
    let (customer, body) = customer(api, channel, sku).await;
    let location = place(api, &customer, &ulid::Ulid::new().to_string(), &body).await;
    (customer, location)
}

/// The dashboard's figures for today once `done` holds of their totals (the stack counts in
/// the background), for at most 60 seconds.
async fn counted(api: &ApiClient, operations: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, figures) = api.call("GET", "/admin/dashboard", &[("authorization", operations)], None).await.unwrap();
        if done(&figures["total"]["counts"]) {
            return figures;
        }
        assert!(Instant::now() < deadline, "not counted in time: {figures}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A day: on the app, an order paid, shipped, delivered, returned and refunded, one whose
/// payment failed (never paid after), one paid; on the web, one reserved and never paid, one for
/// a SKU out of stock. Waits until the dashboard has counted all of it.
async fn scripted_day(api: &ApiClient, operations: &str) {
    let warehouse = api.bearer(json!({"kind": "staff", "subject": "wh-dan", "roles": ["warehouse"]})).await.unwrap();
    let (delivered_to, delivered) = order(api, "app", "TEA").await;
    let shipment = pay_for(api, &delivered_to, &delivered).await;
    let delivered_order = ship_and_deliver(api, &warehouse, &delivered_to, &delivered, &shipment).await;
    returned_checked_and_refunded(api, &delivered_to, &delivered_order, &shipment).await;
    let (failed_by, failed) = order(api, "app", "TEA").await;
    pay(api, &failed_by, &failed, "failed").await;
    let (paid_by, paid) = order(api, "app", "TEA").await;
    pay(api, &paid_by, &paid, "succeeded").await;
    let (unpaid_by, unpaid) = order(api, "web", "TEA").await;
    until(api, &unpaid, &unpaid_by, |o| o["status"] == "AWAITING_PAYMENT").await;
    order(api, "web", "MUG").await;
    counted(api, operations, |c| {
        c["orders_paid"] == 2
            && c["payments_failed"] == 1
            && c["orders_rejected"] == 1
            && c["refunds_issued"] == 1
            && c["tickets_resolved"] == 1
            && c["orders_reserved"] == 4
    })
    .await;
}

async fn running_stack() -> Running {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 20), ("MUG", 0)])).await.unwrap();
    // The mock courier's timer moves handed-over parcels a step every quarter second.
    let options = LocalOptions { courier_moves_every: Some(Duration::from_millis(250)), ..LocalOptions::default() };
    local::run(Arc::new(stack), options).await.unwrap()
}

/// A snapshot of the page, which must have logged no error and asked nothing of another origin.
async fn snapshot(browser: &mut Browser) -> Value {
    let shown = browser.snapshot().await.unwrap();
    assert_eq!((&shown["problems"], &shown["outside_requests"]), (&json!([]), &json!([])), "{shown}");
    shown
}

/// The tiles but the slowest stage's (its time is the wall clock's, so not known in advance).
fn tiles(shown: &Value) -> Value {
    let mut tiles = shown["tiles"].clone();
    tiles.as_object_mut().unwrap().remove("slowest_stage");
    tiles
}

/// Every stage of the day's orders was timed, and the tile names the one with the longest bar.
fn slowest_stage_is_the_longest_bar(shown: &Value) {
    let stages = &shown["charts"]["chart-stages"];
    let labels: Vec<&str> = stages["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(labels, ["Reserving", "Awaiting payment", "Fulfilling", "In transit"]);
    let hours: Vec<f64> =
        stages["datasets"][0]["data"].as_array().unwrap().iter().map(|h| h.as_f64().unwrap()).collect();
    let most = hours.iter().copied().fold(f64::MIN, f64::max);
    let tile = shown["tiles"]["slowest_stage"].as_str().unwrap();
    let named = labels.iter().position(|l| tile.starts_with(&format!("{l} · ")));
    assert!(named.is_some_and(|i| hours[i] == most), "{tile} against {hours:?}");
}

/// A chart's values per dataset label, and whether each bar or arc drawn is as large as its value
/// says: none for a zero, and larger for a larger value.
fn chart(shown: &Value, id: &str) -> Vec<(String, Vec<f64>)> {
    let chart = &shown["charts"][id];
    let datasets = chart["datasets"].as_array().unwrap_or_else(|| panic!("no chart {id}: {shown}"));
    let drawn = chart["drawn"].as_array().unwrap();
    let mut all: Vec<(f64, f64)> = Vec::new();
    let series = datasets
        .iter()
        .zip(drawn)
        .map(|(dataset, sizes)| {
            // A null (a rate of nothing) is drawn as nothing, as a zero is.
            let values: Vec<f64> =
                dataset["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap_or(0.0)).collect();
            let sizes: Vec<f64> = sizes.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            all.extend(values.iter().copied().zip(sizes.iter().copied()));
            (dataset["label"].as_str().unwrap_or_default().to_owned(), values)
        })
        .collect();
    for &(value, size) in &all {
        assert_eq!(value == 0.0, size < 0.5, "{id}: a value of {value} drawn {size} large");
        for &(other, other_size) in &all {
            assert!(value <= other || size > other_size, "{id}: {value} drawn no larger than {other}");
        }
    }
    series
}

/// The sum of a chart's dataset called `label`.
fn total_of(series: &[(String, Vec<f64>)], label: &str) -> f64 {
    series.iter().find(|(l, _)| l == label).unwrap_or_else(|| panic!("no {label} in {series:?}")).1.iter().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_draws_the_days_figures_and_refreshes_itself_for_operations_only() {
    let running = running_stack().await;
    let api = ApiClient::new(running.api_url());
    let operations =
        api.bearer(json!({"kind": "staff", "subject": "ops-olga", "roles": ["operations"]})).await.unwrap();
    let warehouse = api.bearer(json!({"kind": "staff", "subject": "wh-dan", "roles": ["warehouse"]})).await.unwrap();
    let (status, _) = api.call("GET", "/admin/dashboard/page", &[], None).await.unwrap();
    assert_eq!(status, 401, "no token, no page");
    let (status, refused) =
        api.call("GET", "/admin/dashboard/page", &[("authorization", &warehouse)], None).await.unwrap();
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")), "{refused}");
    scripted_day(&api, &operations).await;

    let url = format!("{}/admin/dashboard/page?refresh=1", running.api_url());
    let (mut browser, opened) = Browser::open(&url, Some(&operations)).await.unwrap();
    assert_eq!(opened["status"], 200, "{opened}");
    let policy = opened["headers"]["content-security-policy"].as_str().unwrap_or_default();
    assert!(policy.starts_with("default-src 'none'") && policy.contains("connect-src 'self'"), "{policy}");
    let shown = snapshot(&mut browser).await;
    slowest_stage_is_the_longest_bar(&shown);
    assert_eq!(
        tiles(&shown),
        json!({"orders_received": "5", "orders_converted": "2", "conversion": "40.0%", "payment_success": "66.7%",
            "refund": "50.0%", "after_sales": "100.0%", "on_time_delivery": "100.0%", "average_delivery_hours": "0.0 h",
            "orders_flagged": "0", "parcels_stuck": "0", "parcel_alerts_cleared": "0", "slas_breached": "0",
            "review_queue": "0", "open_alerts": "0"}),
        "{shown}"
    );
    assert_eq!(
        shown["rows"],
        json!([["app", "3", "2", "66.7%", "66.7%", "50.0%", "100.0%"], ["web", "2", "0", "0.0%", "—", "—", "—"]])
    );
    assert_eq!(shown["charts"]["chart-volume"]["labels"].as_array().map(Vec::len), Some(24), "every hour of the day");
    let totals = |shown: &Value, id: &str, labels: &[&str]| -> Vec<f64> {
        let series = chart(shown, id);
        labels.iter().map(|l| total_of(&series, l)).collect()
    };
    assert_eq!(totals(&shown, "chart-volume", &["Received", "Converted", "Rejected", "Expired"]), [5.0, 2.0, 1.0, 0.0]);
    assert_eq!(
        totals(&shown, "chart-logistics", &["Dispatched", "Delivered", "On time", "Stuck"]),
        [1.0, 1.0, 1.0, 0.0]
    );
    assert_eq!(totals(&shown, "chart-after-sales", &["Tickets opened", "Resolved", "SLAs breached"]), [1.0, 1.0, 0.0]);
    let conversion = chart(&shown, "chart-conversion");
    assert_eq!(
        (shown["charts"]["chart-conversion"]["labels"].clone(), conversion[0].1.clone()),
        (json!(["app", "web"]), vec![66.7, 0.0])
    );
    assert_eq!(chart(&shown, "chart-payments")[0].1, vec![2.0, 1.0, 1.0, 1.0], "succeeded, failed, refunds");

    // Another web order, paid: the page shows it on its own, without being reloaded.
    let (late_by, late) = order(&api, "web", "TEA").await;
    pay(&api, &late_by, &late, "succeeded").await;
    counted(&api, &operations, |c| c["orders_paid"] == 3).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let refreshed = loop {
        let shown = snapshot(&mut browser).await;
        if shown["tiles"]["orders_converted"] == "3" || Instant::now() > deadline {
            break shown;
        }
    };
    assert_eq!(
        [&refreshed["tiles"]["orders_received"], &refreshed["tiles"]["conversion"]],
        [&json!("6"), &json!("50.0%")],
        "{refreshed}"
    );
    browser.choose_range(7).await.unwrap();
    let week = snapshot(&mut browser).await;
    assert_eq!(week["charts"]["chart-volume"]["labels"].as_array().map(Vec::len), Some(7 * 24), "a week hour by hour");
    assert_eq!(totals(&week, "chart-volume", &["Received"]), [6.0]);
    browser.choose_range(30).await.unwrap();
    let month = snapshot(&mut browser).await;
    let days = month["charts"]["chart-volume"]["labels"].as_array().unwrap();
    assert_eq!(days.len(), 30, "a month day by day");
    assert!(days.iter().all(|d| d.as_str().is_some_and(|d| d.len() == 10)), "{days:?}");
    assert_eq!(totals(&month, "chart-volume", &["Received", "Converted"]), [6.0, 3.0]);
    browser.choose_range(1).await.unwrap();
    snapshot(&mut browser).await;
    save_screenshot(&mut browser).await;
    browser.close().await;
    assert_eq!(running.contract_breaches(), Vec::<String>::new(), "every answer and event as its contract says");
    running.stop().await;
}

/// Into target/ always; into docs/ for the README with `UPDATE_README=1`.
async fn save_screenshot(browser: &mut Browser) {
    let root = browser_dir().join("../..");
    let target = root.join("target/browser");
    std::fs::create_dir_all(&target).unwrap();
    let shot = target.join("dashboard.png");
    browser.screenshot(&shot).await.unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG", "a PNG of the page");
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::copy(&shot, root.join("docs/images/dashboard.png")).unwrap();
    }
}

#[test]
fn the_page_serves_chart_js_exactly_as_npm_publishes_the_pinned_version() {
    let vendored = browser_dir().join("../../shared/assets/vendor/chart.js/chart.umd.min.js");
    let published = browser_dir().join("node_modules/chart.js/dist/chart.umd.min.js");
    let pinned: Value = serde_json::from_slice(&std::fs::read(browser_dir().join("package.json")).unwrap()).unwrap();
    let installed: Value =
        serde_json::from_slice(&std::fs::read(browser_dir().join("node_modules/chart.js/package.json")).unwrap())
            .unwrap();
    assert_eq!(installed["version"], pinned["dependencies"]["chart.js"]);
    assert!(std::fs::read(vendored).unwrap() == std::fs::read(published).unwrap(), "the vendored file is npm's");
    assert!(Path::new(&browser_dir().join("../../shared/assets/vendor/chart.js/LICENSE.md")).exists());
}
