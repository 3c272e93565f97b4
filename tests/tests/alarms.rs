//! The template's alarms, read from `infra/template.yaml`: every queue that failed messages land
//! in (a dead-letter queue, an on-failure destination) alarms on its first message, the relay
//! when it falls behind the table's stream, every function when it fails or is throttled; and
//! each of them notifies the operators' topic, the template's `AlarmTopicArn` parameter. A
//! scheduled function that stops running pages too, and what the bus cannot deliver is kept.

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

/// Where failed messages land: queues' redrive targets, functions' dead-letter queues and
/// on-failure destinations (of asynchronous invocations and of stream triggers), rule targets'
/// dead-letter queues.
fn failure_queues(doc: &Value) -> BTreeSet<String> {
    let mut queues = BTreeSet::new();
    for (_, queue) in resources_of_type(doc, "AWS::SQS::Queue") {
        queues.extend(get_att_of(&queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]));
    }
    for (_, function) in resources_of_type(doc, "AWS::Serverless::Function") {
        let properties = &function["Properties"];
        queues.extend(get_att_of(&properties["DeadLetterQueue"]["TargetArn"]));
        queues.extend(get_att_of(&properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"]));
        for (_, event) in properties["Events"].as_mapping().into_iter().flatten() {
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

/// The alarm notifies the topic whenever one is given, when it fires and when it is over:
/// `!If [<condition>, [!Ref AlarmTopicArn], !Ref AWS::NoValue]`, the condition true exactly when
/// the parameter is not empty.
fn pages_operators(doc: &Value, alarm: &Value) -> bool {
    ["AlarmActions", "OKActions"].iter().all(|actions| notifies_topic(doc, &alarm["Properties"][*actions]))
}

fn notifies_topic(doc: &Value, actions: &Value) -> bool {
    let Value::Tagged(choice) = actions else { return false };
    let Some([condition, topics, otherwise]) = choice.value.as_sequence().map(Vec::as_slice) else { return false };
    let topics: Vec<_> = topics.as_sequence().into_iter().flatten().filter_map(ref_of).collect();
    let expected_condition: Value = serde_yaml_ng::from_str("!Not [!Equals [!Ref AlarmTopicArn, \"\"]]").unwrap();
    choice.tag == "If"
        && condition.as_str().is_some_and(|name| doc["Conditions"][name] == expected_condition)
        && topics == ["AlarmTopicArn"]
        && ref_of(otherwise).as_deref() == Some("AWS::NoValue")
}

/// The alarm's metric `name` in `namespace` (its own, or one of its metric-math inputs), with
/// dimension `dimension` naming `target` as `of` reads the dimension's value.
fn watches(alarm: &Value, (namespace, name): (&str, &str), (dimension, of): (&str, Reader), target: &str) -> bool {
    let properties = &alarm["Properties"];
    let metrics = properties["Metrics"].as_sequence().into_iter().flatten().map(|m| &m["MetricStat"]["Metric"]);
    std::iter::once(properties).chain(metrics).any(|metric| {
        let mut dimensions = metric["Dimensions"].as_sequence().into_iter().flatten();
        metric["Namespace"].as_str() == Some(namespace)
            && metric["MetricName"].as_str() == Some(name)
            && dimensions.any(|d| d["Name"].as_str() == Some(dimension) && of(&d["Value"]).as_deref() == Some(target))
    })
}

type Reader = fn(&Value) -> Option<String>;

/// `!GetAtt X.QueueName`: X (a queue's metrics are by name, not ARN).
fn queue_name_of(value: &Value) -> Option<String> {
    let Value::Tagged(t) = value else { return None };
    let (id, attribute) = t.value.as_str()?.split_once('.')?;
    (t.tag == "GetAtt" && attribute == "QueueName").then(|| id.to_owned())
}

/// Fires when the value goes above `threshold`.
fn above(alarm: &Value, threshold: f64) -> bool {
    let p = &alarm["Properties"];
    p["Threshold"].as_f64() == Some(threshold) && p["ComparisonOperator"].as_str() == Some("GreaterThanThreshold")
}

fn alarms(doc: &Value) -> Vec<(String, &Value)> {
    resources_of_type(doc, "AWS::CloudWatch::Alarm")
}

#[test]
fn every_queue_failed_messages_land_in_pages_operators_at_its_first_message() {
    let doc = template();
    let queues = failure_queues(&doc);
    assert_eq!(queues.len(), 9, "seven dead-letter queues, the relay's on-failure queue, the bus's: {queues:?}");
    for queue in &queues {
        let visible = ("AWS/SQS", "ApproximateNumberOfMessagesVisible");
        let found = (alarms(&doc).into_iter())
            .find(|(_, a)| watches(a, visible, ("QueueName", queue_name_of), queue) && above(a, 0.0));
        found.unwrap_or_else(|| panic!("no alarm on {queue}'s first message"));
    }
}

#[test]
fn every_function_pages_operators_when_it_fails_or_is_throttled() {
    let doc = template();
    let functions = resources_of_type(&doc, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 16);
    for (function, _) in functions {
        let of_function = ("FunctionName", ref_of as Reader);
        let found = alarms(&doc).into_iter().find(|(_, a)| {
            watches(a, ("AWS/Lambda", "Errors"), of_function, &function)
                && watches(a, ("AWS/Lambda", "Throttles"), of_function, &function)
                && above(a, 0.0)
        });
        let (id, alarm) = found.unwrap_or_else(|| panic!("no alarm on {function}'s errors and throttles"));
        let expression = &alarm["Properties"]["Metrics"][0]["Expression"];
        assert_eq!(expression.as_str(), Some("FILL(errors, 0) + FILL(throttles, 0)"), "{id}: either counts");
    }
}

#[test]
fn the_relay_pages_operators_when_it_falls_a_minute_behind_the_tables_stream() {
    let doc = template();
    let age = ("AWS/Lambda", "IteratorAge");
    let found = alarms(&doc).into_iter().find(|(_, a)| {
        watches(a, age, ("FunctionName", ref_of), "EventRelayFunction")
            && a["Properties"]["Statistic"].as_str() == Some("Maximum")
    });
    let (id, alarm) = found.expect("an alarm on the relay's iterator age (its maximum)");
    assert!(above(alarm, 60_000.0), "{id}: above a minute (milliseconds)");
}

#[test]
fn the_http_api_pages_operators_when_it_answers_server_errors() {
    // The functions answer an outage of what they call as a 503 problem, not as a failure of
    // the function: only the API's 5xx count sees it.
    let doc = template();
    let api = ("ApiId", ref_of as Reader);
    let found = alarms(&doc).into_iter().find(|(_, a)| watches(a, ("AWS/ApiGateway", "5xx"), api, "HttpApi"));
    let (id, alarm) = found.expect("an alarm on the HTTP API's 5xx answers");
    assert!(above(alarm, 0.0), "{id}");
}

#[test]
fn every_alarm_of_the_template_notifies_the_operators_topic() {
    let doc = template();
    let all = alarms(&doc);
    assert!(all.len() >= 24, "{} alarms", all.len());
    for (id, alarm) in all {
        assert!(pages_operators(&doc, alarm), "{id} notifies nobody");
    }
}

#[test]
fn what_the_bus_cannot_deliver_to_a_rules_queue_is_kept_not_dropped() {
    let doc = template();
    for (rule, resource) in resources_of_type(&doc, "AWS::Events::Rule") {
        for target in resource["Properties"]["Targets"].as_sequence().into_iter().flatten() {
            let queue = get_att_of(&target["DeadLetterConfig"]["Arn"]);
            let queue =
                queue.unwrap_or_else(|| panic!("{rule}'s target {:?} drops what it cannot deliver", target["Id"]));
            assert!(bus_may_send_to(&doc, &queue, &rule), "{queue}'s policy does not let {rule} send to it");
        }
    }
}

/// Some queue policy of `queue` lets EventBridge send to it on behalf of `rule` (else the bus
/// drops what it meant to keep there).
fn bus_may_send_to(doc: &Value, queue: &str, rule: &str) -> bool {
    resources_of_type(doc, "AWS::SQS::QueuePolicy").into_iter().any(|(_, policy)| {
        let properties = &policy["Properties"];
        let queues: Vec<String> = properties["Queues"].as_sequence().into_iter().flatten().filter_map(ref_of).collect();
        let statements = properties["PolicyDocument"]["Statement"].as_sequence().into_iter().flatten();
        queues.iter().any(|q| q == queue)
            && statements.into_iter().any(|s| {
                let sources = &s["Condition"]["ArnEquals"]["aws:SourceArn"];
                let sources: Vec<String> = match sources.as_sequence() {
                    Some(list) => list.iter().filter_map(get_att_of).collect(),
                    None => get_att_of(sources).into_iter().collect(),
                };
                s["Effect"].as_str() == Some("Allow")
                    && s["Principal"]["Service"].as_str() == Some("events.amazonaws.com")
                    && s["Action"].as_str() == Some("sqs:SendMessage")
                    && sources.iter().any(|source| source == rule)
            })
    })
}

#[test]
fn a_scheduled_function_that_stops_running_pages_operators() {
    let doc = template();
    let scheduled: Vec<String> = (resources_of_type(&doc, "AWS::Serverless::Function").into_iter())
        .filter(|(_, f)| {
            let mut events = f["Properties"]["Events"].as_mapping().into_iter().flatten();
            events.any(|(_, e)| e["Type"].as_str() == Some("Schedule"))
        })
        .map(|(id, _)| id)
        .collect();
    assert_eq!(scheduled, ["HoldExpiryFunction", "TrackingPollerFunction"]);
    for function in scheduled {
        let found = alarms(&doc)
            .into_iter()
            .find(|(_, a)| watches(a, ("AWS/Lambda", "Invocations"), ("FunctionName", ref_of), &function));
        let (id, alarm) = found.unwrap_or_else(|| panic!("no alarm on {function} not running"));
        let p = &alarm["Properties"];
        assert_eq!(p["ComparisonOperator"].as_str(), Some("LessThanThreshold"), "{id}");
        assert_eq!(p["Threshold"].as_f64(), Some(1.0), "{id}: not once");
        // No invocation means no data point: that is the very case to page for.
        assert_eq!(p["TreatMissingData"].as_str(), Some("breaching"), "{id}");
        assert!(p["Period"].as_u64().unwrap() * p["EvaluationPeriods"].as_u64().unwrap() <= 900, "{id}: soon");
    }
}
