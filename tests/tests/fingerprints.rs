//! Keyed fingerprints: the risk rules' lists of phones, addresses and IPs, the addresses a
//! customer used and the phone's code counter hold HMACs under the deployment's fingerprint key,
//! never the values nor a bare hash of them, and still match the orders they name.

use orderflow::clock::Clock;
use orderflow::personal::Purpose;
use orderflow_tests::fixtures::{one_warehouse, order_body, staff, submit, table_text};
use orderflow_tests::Stack;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PHONE: &str = "13800138000";
const IP: &str = "198.51.100.23"; // what the fixtures' API Gateway context gives as the source
const ADDRESS: &str = "CN|Zhejiang|Hangzhou||Wensan Road|88"; // order_body's, part by part

fn blacklist(id: &str, points: u32, field: &str, value: &str) -> Value {
    json!({"id": id, "points": points, "when": {"kind": "blacklist", "field": field, "values": [value]}})
}

async fn save_rules(stack: &Stack, rules: Value) -> (u16, Value) {
    let (_, current) = staff(&stack.staff(), "GET", "/admin/risk-rules", "/admin/risk-rules", None).await;
    let doc = json!({
        "version": current["rules"]["version"],
        "thresholds": {"verify": 80, "review": 100, "freeze": 120},
        "vip_min_tier": 4,
        "rules": rules,
    });
    staff(&stack.staff(), "PUT", "/admin/risk-rules", "/admin/risk-rules", Some(doc)).await
}

/// The ids of the rules that fired for the order `body` makes.
async fn fired(stack: &Stack, key: &str, body: &Value) -> Vec<String> {
    let (status, accepted) = submit(&stack.intake(), key, body).await;
    assert_eq!(status, 202, "{accepted}");
    let path = format!("/admin/orders/{}", accepted["order_id"].as_str().unwrap());
    let (_, view) = staff(&stack.staff(), "GET", &path, "/admin/orders/{id}", None).await;
    let fired = view["risk"]["fired"].as_array().unwrap_or_else(|| panic!("{view}"));
    fired.iter().map(|f| f["rule_id"].as_str().unwrap_or_else(|| panic!("{f}")).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blacklisted_phones_addresses_and_ips_are_stored_as_keyed_fingerprints_and_still_match() {
    let (stack, clock) = Stack::for_test().await;
    clock.set(clock.now().replace_time(time::macros::time!(04:00))); // noon in China: no night rule
    stack.seed(&one_warehouse(&[("TEA", 100)])).await.unwrap();
    // The phone's 90 points alone ask for a code, so the phone's day counter is written too.
    let lists = json!([
        blacklist("phone", 90, "phone", PHONE),
        blacklist("ip", 5, "ip", IP),
        blacklist("home", 3, "address", ADDRESS)
    ]);
    let (status, saved) = save_rules(&stack, lists).await;
    assert_eq!(status, 200, "{saved}");
    let values: Vec<&str> =
        saved["rules"]["rules"].as_array().unwrap().iter().map(|r| r["when"]["values"][0].as_str().unwrap()).collect();
    assert!(values.iter().all(|v| v.starts_with("fp:") && v.len() == 35), "{values:?}");

    let body = order_body(&[("TEA", 1)], "Zhejiang");
    assert_eq!(fired(&stack, "listed", &body).await, ["phone", "ip", "home"]);
    let mut elsewhere = body.clone();
    elsewhere["phone"] = json!("13900139000");
    elsewhere["shipping_address"]["house_number"] = json!("89");
    assert_eq!(fired(&stack, "elsewhere", &elsewhere).await, ["ip"], "another phone and house are not listed");

    // Read back and saved again, the lists are kept as they are and still match.
    let (_, current) = staff(&stack.staff(), "GET", "/admin/risk-rules", "/admin/risk-rules", None).await;
    let (status, again) = save_rules(&stack, current["rules"]["rules"].clone()).await;
    assert_eq!((status, &again["rules"]["rules"]), (200, &saved["rules"]["rules"]), "{again}");
    assert_eq!(fired(&stack, "listed-again", &body).await, ["phone", "ip", "home"]);

    let table = table_text(&stack).await;
    assert!(table.contains("RISK#PHONE#fp:"), "the phone's code counter is keyed by its fingerprint");
    let bare_hash = hex::encode(Sha256::digest(b"+8613800138000"));
    for clear in [PHONE, IP, "Wensan Road", &bare_hash] {
        assert!(!table.contains(clear), "{clear} in the table");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_value_that_is_neither_a_fingerprint_nor_valid_is_refused_by_its_place() {
    let (stack, _) = Stack::for_test().await;
    for (field, value) in
        [("phone", "not a phone"), ("ip", "300.1.1.1"), ("address", "CN|Zhejiang|Hangzhou"), ("phone", "fp:12")]
    {
        let rules = json!([blacklist("ok", 5, "customer", "cust-1"), blacklist("bad", 5, field, value)]);
        let (status, problem) = save_rules(&stack, rules).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some("rules[1].when.values[0]")), "{value}: {problem}");
    }
    let (_, current) = staff(&stack.staff(), "GET", "/admin/risk-rules", "/admin/risk-rules", None).await;
    assert_eq!(current["saved"], false, "nothing was saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_derives_the_same_fingerprints_from_one_key_made_once() {
    let (stack, _, calls) = Stack::for_test_counting_calls().await;
    let store = stack.store();
    let first = stack.personal_keys_for("order-intake");
    let second = stack.personal_keys_for("staff-api");
    // Both start cold at once: one key is stored, and both end up with it.
    let (a, b) = tokio::join!(first.fingerprints.fingerprinter(&store), second.fingerprints.fingerprinter(&store));
    let phone = orderflow::domain::Phone::parse(PHONE).unwrap();
    assert_eq!(a.unwrap().phone(&phone), b.unwrap().phone(&phone));
    let stored = store.fingerprint_key().await.unwrap().expect("the key is stored");
    let kms = |calls: &orderflow_tests::calls::CallCounter| -> u64 {
        calls.snapshot().into_iter().filter(|(k, _)| k.contains("KMS.")).map(|(_, n)| n).sum()
    };
    let made = kms(&calls);
    assert!((2..=3).contains(&made), "each made a key or unwrapped the stored one: {:?}", calls.snapshot());

    // A warm instance asks KMS nothing more; a new one unwraps the stored key, once.
    let again = first.fingerprints.fingerprinter(&store).await.unwrap().phone(&phone);
    assert_eq!(kms(&calls), made);
    let later =
        orderflow::personal::FingerprintKey::new(std::sync::Arc::new(stack.vault_for("later", Purpose::Fingerprint)));
    assert_eq!(later.fingerprinter(&store).await.unwrap().phone(&phone), again);
    assert_eq!(
        calls.snapshot().into_iter().filter(|(k, _)| k.starts_with("later ")).collect::<Vec<_>>(),
        [("later KMS.Decrypt".to_owned(), 1)]
    );
    assert_eq!(store.fingerprint_key().await.unwrap(), Some(stored), "the stored key is never replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_fingerprint_key_stored_is_the_one_every_instance_keeps() {
    let (stack, _) = Stack::for_test().await;
    let store = stack.store();
    assert_eq!(store.fingerprint_key().await.unwrap(), None);
    assert_eq!(store.keep_fingerprint_key(b"first").await.unwrap(), None, "stored");
    // An instance that generated its own meanwhile is handed the first, which stays.
    assert_eq!(store.keep_fingerprint_key(b"second").await.unwrap().as_deref(), Some(&b"first"[..]));
    assert_eq!(store.fingerprint_key().await.unwrap().as_deref(), Some(&b"first"[..]));
}
