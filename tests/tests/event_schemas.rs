//! The events' published contract, docs/events: a schema for every detail-type the relay can
//! publish and none for one it cannot, each a valid JSON Schema that refuses what breaks it.
//! That every event the suite publishes conforms is checked on the way out, by the harness's
//! relay ([`orderflow_tests::contracts`]).

use orderflow::domain::{Currency, OrderId};
use orderflow::events::{Announcement, DomainEvent, OrderPaid};
use orderflow_tests::contracts::{events_dir, EventSchemas};
use orderflow_tests::emulators::repo_root;
use serde_json::Value;
use std::collections::BTreeSet;

/// The detail-types `DomainEvent::detail_type` can answer, read from its source: a variant added
/// there without a schema fails the test below.
fn announced_detail_types() -> BTreeSet<String> {
    let source = std::fs::read_to_string(repo_root().join("shared/src/events/mod.rs")).unwrap();
    let body =
        source.split("pub fn detail_type(&self) -> &'static str {").nth(1).expect("detail_type in events/mod.rs");
    let body = &body[..body.find("\n    }\n").expect("its end")];
    let types: BTreeSet<String> = body
        .lines()
        .filter_map(|line| line.split("=> \"").nth(1))
        .map(|rest| rest.trim_end_matches(['"', ',']).to_owned())
        .collect();
    assert!(types.len() > 30, "the match arms were read: {types:?}");
    types
}

#[test]
fn every_detail_type_the_relay_can_publish_has_a_schema_and_every_schema_is_of_one() {
    let documented: BTreeSet<String> = EventSchemas::published().detail_types().map(str::to_owned).collect();
    let announced = announced_detail_types();
    let undocumented: Vec<_> = announced.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&announced).collect();
    assert!(undocumented.is_empty(), "no schema in docs/events for {undocumented:?}");
    assert!(unknown.is_empty(), "schemas of no event the relay publishes: {unknown:?}");
}

/// What the breach is, and how to make it.
type Breach = (&'static str, fn(&mut Value));

fn order_paid() -> Value {
    let paid = OrderPaid {
        order_id: OrderId::generate(),
        payment_id: "pay_1".into(),
        amount_minor: 3980,
        currency: Currency::CNY,
        late: false,
    };
    let announcement = Announcement::of_order(paid.order_id, 7, DomainEvent::OrderPaid(paid));
    serde_json::from_str(&announcement.detail_json()).unwrap()
}

#[test]
fn an_event_as_the_relay_writes_it_conforms_and_each_kind_of_breach_is_refused() {
    let schemas = EventSchemas::published();
    let event = order_paid();
    schemas.check("OrderPaid", &event).unwrap();

    let breaches: [Breach; 6] = [
        ("a field the contract does not name", |e| e["payer_phone"] = "13800138000".into()),
        ("a required field missing", |e| drop(e.as_object_mut().unwrap().remove("amount_minor"))),
        ("the event id missing", |e| drop(e.as_object_mut().unwrap().remove("event_id"))),
        ("an order id that is not a ULID", |e| e["order_id"] = "order-1".into()),
        ("a currency the shops do not trade in", |e| e["currency"] = "XYZ".into()),
        ("an amount that is not an integer", |e| e["amount_minor"] = "3980".into()),
    ];
    for (breach, apply) in breaches {
        let mut broken = event.clone();
        apply(&mut broken);
        assert!(schemas.check("OrderPaid", &broken).is_err(), "{breach} was accepted: {broken}");
    }
    let elsewhere = schemas.check("OrderShipped", &event);
    assert!(elsewhere.is_err(), "an OrderPaid is not an OrderShipped");
    assert!(schemas.check("OrderTeleported", &event).unwrap_err().contains("no schema"));
}

/// The sample events a developer invokes functions with (events/*-sqs.json) carry bus events
/// as the queues deliver them: each conforms, so the samples teach the contract, not an old one.
#[test]
fn the_bus_events_in_the_sample_queue_messages_conform() {
    let schemas = EventSchemas::published();
    let samples = repo_root().join("events");
    let mut checked = 0;
    for entry in std::fs::read_dir(&samples).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with("-sqs.json") {
            continue;
        }
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for record in sample["Records"].as_array().unwrap() {
            let body: Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
            let detail_type = body["detail-type"].as_str().unwrap_or_else(|| panic!("{name}: a bus event"));
            schemas.check(detail_type, &body["detail"]).unwrap_or_else(|e| panic!("{name}: {e}"));
            checked += 1;
        }
    }
    assert!(checked >= 4, "the samples were found: {checked}");
}

/// Every object a schema describes names all its fields: an event that grows a field fails the
/// suite until its schema says so.
#[test]
fn every_object_of_every_schema_is_closed() {
    fn open_objects(node: &Value, at: String, found: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                let object = map.get("type").is_some_and(|t| t == "object") || map.contains_key("properties");
                if object && map.get("additionalProperties") != Some(&Value::Bool(false)) {
                    found.push(at.clone());
                }
                map.iter().for_each(|(key, child)| open_objects(child, format!("{at}/{key}"), found));
            }
            Value::Array(items) => {
                items.iter().enumerate().for_each(|(i, c)| open_objects(c, format!("{at}/{i}"), found))
            }
            _ => {}
        }
    }
    let mut open = Vec::new();
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            open_objects(&schema, path.file_name().unwrap().to_string_lossy().into_owned(), &mut open);
        }
    }
    assert!(open.is_empty(), "objects that accept fields they do not name: {open:?}");
}
