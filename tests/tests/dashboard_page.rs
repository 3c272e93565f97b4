//! The operations dashboard's page in a real headless Chromium, on the local stack after a
//! scripted day of orders: the page is refused without an operations token, draws the day's
//! figures with the numbers the script implies, refreshes itself, and loads nothing from
//! elsewhere. It saves the screenshot the README shows (`UPDATE_README=1` writes it to docs/).

use orderflow_tests::browser::{browser_dir, Browser};
use orderflow_tests::fixtures::{from_own_customer, one_warehouse, order_body};
use orderflow_tests::local::{self, ApiClient, LocalOptions, Running};
use orderflow_tests::Stack;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One order over HTTP by a customer of its own; its id once intake has taken it.
async fn order(api: &ApiClient, channel: &str, sku: &str) -> String {
    let mut body = from_own_customer(&order_body(&[(sku, 1)], "Zhejiang"));
    body["channel"] = json!(channel);
    let customer = api.bearer(json!({"kind": "customer", "customer_id": body["customer_id"]})).await.unwrap();
    body.as_object_mut().unwrap().remove("customer_id");
    let key = ulid::Ulid::new().to_string();
    let headers = [("content-type", "application/json"), ("idempotency-key", &key), ("authorization", &customer)];
    let (status, accepted) = api.call("POST", "/orders", &headers, Some(body.to_string())).await.unwrap();
    assert_eq!(status, 202, "{accepted}");
    accepted["order_id"].as_str().unwrap().to_owned()
}

async fn pay(api: &ApiClient, order_id: &str, outcome: &str) {
    let payment = json!({"order_id": order_id, "outcome": outcome}).to_string();
    let (status, answer) = api.call("POST", "/_mock-provider/payments", &[], Some(payment)).await.unwrap();
    assert_eq!(status, 200, "{answer}");
}

/// The dashboard's figures for today once `done` holds of them (the stack counts in the
/// background), for at most 60 seconds.
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

/// A day: three app orders (two paid, one whose payment failed first and then stayed unpaid),
/// one web order reserved and never paid, one web order for a SKU out of stock.
async fn scripted_day(api: &ApiClient, operations: &str) {
    let (first, second, third) =
        (order(api, "app", "TEA").await, order(api, "app", "TEA").await, order(api, "app", "TEA").await);
    order(api, "web", "TEA").await;
    order(api, "web", "MUG").await;
    // The reservations first: a payment before its order's hold would be one for no order.
    counted(api, operations, |c| c["orders_reserved"] == 4 && c["orders_rejected"] == 1).await;
    pay(api, &first, "succeeded").await;
    pay(api, &second, "failed").await;
    pay(api, &third, "succeeded").await;
    counted(api, operations, |c| c["orders_paid"] == 2 && c["payments_failed"] == 1).await;
}

async fn running_stack() -> Running {
    let (stack, _) = Stack::for_test().await;
    stack.seed(&one_warehouse(&[("TEA", 10), ("MUG", 0)])).await.unwrap();
    local::run(Arc::new(stack), LocalOptions::default()).await.unwrap()
}

fn tiles(shown: &Value) -> Value {
    shown["tiles"].clone()
}

/// A chart's values per dataset label, and whether each bar or arc drawn is as large as its value
/// says: none for a zero, and larger for a larger value.
fn chart(shown: &Value, id: &str) -> Vec<(String, Vec<f64>)> {
    let chart = &shown["charts"][id];
    assert!(chart["painted"].as_u64().unwrap_or(0) > 0, "{id} painted nothing: {chart}");
    let datasets = chart["datasets"].as_array().unwrap_or_else(|| panic!("no chart {id}: {shown}"));
    let drawn = chart["drawn"].as_array().unwrap();
    let mut all: Vec<(f64, f64)> = Vec::new();
    let series = datasets
        .iter()
        .zip(drawn)
        .map(|(dataset, sizes)| {
            let values: Vec<f64> = dataset["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
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
    let shown = browser.snapshot().await.unwrap();
    assert_eq!(
        tiles(&shown),
        json!({"orders_received": "5", "orders_converted": "2", "conversion": "40.0%", "payment_success": "66.7%",
            "refund": "0.0%", "after_sales": "—", "on_time_delivery": "—", "average_delivery_hours": "—",
            "orders_flagged": "0", "parcels_stuck": "0", "parcel_alerts_cleared": "0", "slas_breached": "0"}),
        "{shown}"
    );
    assert_eq!(
        shown["rows"],
        json!([["app", "3", "2", "66.7%", "66.7%", "0.0%", "—"], ["web", "2", "0", "0.0%", "—", "—", "—"]])
    );
    let volume = chart(&shown, "chart-volume");
    assert_eq!(shown["charts"]["chart-volume"]["labels"].as_array().map(Vec::len), Some(24), "every hour of the day");
    let volume_totals: Vec<f64> =
        ["Received", "Converted", "Rejected", "Expired"].iter().map(|l| total_of(&volume, l)).collect();
    assert_eq!(volume_totals, [5.0, 2.0, 1.0, 0.0]);
    let conversion = chart(&shown, "chart-conversion");
    assert_eq!(
        (shown["charts"]["chart-conversion"]["labels"].clone(), conversion[0].1.clone()),
        (json!(["app", "web"]), vec![66.7, 0.0])
    );
    assert_eq!(chart(&shown, "chart-payments")[0].1, vec![2.0, 1.0, 0.0, 0.0], "succeeded, failed, refunds");
    chart(&shown, "chart-logistics");
    chart(&shown, "chart-after-sales");
    assert_eq!((shown["problems"].clone(), shown["outside_requests"].clone()), (json!([]), json!([])), "{shown}");

    // Another web order, paid: the page shows it on its own, without being reloaded.
    let late = order(&api, "web", "TEA").await;
    counted(&api, &operations, |c| c["orders_reserved"] == 5).await;
    pay(&api, &late, "succeeded").await;
    counted(&api, &operations, |c| c["orders_paid"] == 3).await;
    let refreshed = loop {
        let shown = browser.snapshot().await.unwrap();
        if shown["tiles"]["orders_converted"] == "3" {
            break shown;
        }
    };
    assert_eq!(
        [&refreshed["tiles"]["orders_received"], &refreshed["tiles"]["conversion"]],
        [&json!("6"), &json!("50.0%")]
    );
    assert!(refreshed["reads"].as_u64() > shown["reads"].as_u64(), "read again: {refreshed}");
    browser.choose_range(7).await.unwrap();
    let week = browser.snapshot().await.unwrap();
    assert_eq!(week["charts"]["chart-volume"]["labels"].as_array().map(Vec::len), Some(7 * 24), "a week hour by hour");
    assert_eq!(total_of(&chart(&week, "chart-volume"), "Received"), 6.0);
    browser.choose_range(1).await.unwrap();
    browser.snapshot().await.unwrap();
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
