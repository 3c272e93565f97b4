//! The template's alarms, read from `infra/template.yaml`: every queue that failed messages land
//! in (a dead-letter queue, an on-failure destination) alarms on its first message, the relay
//! when it falls behind the table's stream, every function when it fails or is throttled; and
//! each of them notifies the operators' topic, the template's `AlarmTopicArn` parameter.

use orderflow_tests::template::{get_att_of, ref_of};
use serde_yaml_ng::Value;
use std::collections::BTreeSet;

fn template() -> Value {
    let path = orderflow_tests::emulators::repo_root().join("infra/template.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn resources_of_type<'a>(doc: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    let resources = doc["Resources"].as_mapping().unwrap();
    (resources.iter())
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), r))
        .collect()
}

/// Where failed messages land: queues' redrive targets, functions' on-failure destinations,
/// rule targets' dead-letter queues.
fn failure_queues(doc: &Value) -> BTreeSet<String> {
    let mut queues = BTreeSet::new();
    for (_, queue) in resources_of_type(doc, "AWS::SQS::Queue") {
        queues.extend(get_att_of(&queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]));
    }
    for (_, function) in resources_of_type(doc, "AWS::Serverless::Function") {
        for (_, event) in function["Properties"]["Events"].as_mapping().into_iter().flatten() {
            queues.extend(get_att_of(&event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]));
        }
    }
    for (_, rule) in resources_of_type(doc, "AWS::Events::Rule") {
        for target in rule["Properties"]["Targets"].as_sequence().into_iter().flatten() {
            queues.extend(get_att_of(&target["DeadLetterConfig"]["Arn"]));
        }
    }
    queues
}

/// The alarm notifies the topic whenever one is given: `!If [PagesOperators, [!Ref AlarmTopicArn], ...]`.
fn pages_operators(doc: &Value, alarm: &Value) -> bool {
    let Value::Tagged(choice) = &alarm["Properties"]["AlarmActions"] else { return false };
    let branches = choice.value.as_sequence().unwrap();
    let condition = &doc["Conditions"][branches[0].as_str().unwrap()];
    let tested = format!("{condition:?}");
    let topics: Vec<_> = branches[1].as_sequence().into_iter().flatten().filter_map(ref_of).collect();
    choice.tag == "If" && topics == ["AlarmTopicArn"] && tested.contains("AlarmTopicArn") && tested.contains("Not")
}

/// Metric `name` of the alarm (a plain one, or one of its metric-math inputs), on `dimension` =
/// what `of` reads from the dimension's value.
fn watches(alarm: &Value, name: &str, of: fn(&Value) -> Option<String>, target: &str) -> bool {
    let properties = &alarm["Properties"];
    let metrics = properties["Metrics"].as_sequence().into_iter().flatten().map(|m| &m["MetricStat"]["Metric"]);
    std::iter::once(properties).chain(metrics).any(|metric| {
        let dimensions = metric["Dimensions"].as_sequence().into_iter().flatten();
        metric["MetricName"].as_str() == Some(name)
            && dimensions.into_iter().any(|d| of(&d["Value"]).as_deref() == Some(target))
    })
}

fn alarms(doc: &Value) -> Vec<(String, &Value)> {
    resources_of_type(doc, "AWS::CloudWatch::Alarm")
}

#[test]
fn every_queue_failed_messages_land_in_pages_operators_at_its_first_message() {
    let doc = template();
    let queues = failure_queues(&doc);
    for known in ["UnpublishedChangesQueue", "RefundsDeadLetterQueue", "NotificationDeadLetterQueue"] {
        assert!(queues.contains(known), "{known} is found as a failure queue: {queues:?}");
    }
    for queue in &queues {
        let found = alarms(&doc).into_iter().find(|(_, a)| {
            let p = &a["Properties"];
            watches(a, "ApproximateNumberOfMessagesVisible", get_att_of, queue)
                && p["Threshold"].as_f64() == Some(0.0)
                && p["ComparisonOperator"].as_str() == Some("GreaterThanThreshold")
        });
        let (id, alarm) = found.unwrap_or_else(|| panic!("no alarm on {queue}'s first message"));
        assert!(pages_operators(&doc, alarm), "{id} notifies nobody");
    }
}

#[test]
fn every_function_pages_operators_when_it_fails_or_is_throttled() {
    let doc = template();
    let functions = resources_of_type(&doc, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 15);
    for (function, _) in functions {
        let found = alarms(&doc)
            .into_iter()
            .find(|(_, a)| watches(a, "Errors", ref_of, &function) && watches(a, "Throttles", ref_of, &function));
        let (id, alarm) = found.unwrap_or_else(|| panic!("no alarm on {function}'s errors and throttles"));
        assert!(pages_operators(&doc, alarm), "{id} notifies nobody");
        let expression = &alarm["Properties"]["Metrics"][0]["Expression"];
        assert_eq!(expression.as_str(), Some("FILL(errors, 0) + FILL(throttles, 0)"), "{id}: either counts");
    }
}

#[test]
fn the_relay_pages_operators_when_it_falls_a_minute_behind_the_tables_stream() {
    let doc = template();
    let found = alarms(&doc).into_iter().find(|(_, a)| watches(a, "IteratorAge", ref_of, "EventRelayFunction"));
    let (id, alarm) = found.expect("an alarm on the relay's iterator age");
    assert!(alarm["Properties"]["Threshold"].as_f64().unwrap() <= 60_000.0, "{id}: a minute at most");
    assert!(pages_operators(&doc, alarm), "{id} notifies nobody");
}
