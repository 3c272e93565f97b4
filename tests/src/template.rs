//! The functions of `infra/template.yaml` and their triggers, read from the SAM source for the
//! local runner: which binary answers which HTTP route, consumes which queue, runs on which
//! schedule. (What LocalStack deploys of the same file is in [`crate::translate`].)

use serde_yaml_ng::Value;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the template: {0}")]
    Read(String),
    #[error("template: {0}")]
    Shape(String),
}

fn shape(msg: impl Into<String>) -> TemplateError {
    TemplateError::Shape(msg.into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An HTTP API route; `public` when it opts out of the JWT authorizer (`Authorizer: NONE`).
    Http {
        method: String,
        path: String,
        public: bool,
    },
    /// A queue, by its logical id.
    Sqs {
        queue: String,
        batch_size: i32,
    },
    Schedule {
        expression: String,
    },
    /// The table\'s stream, through an event source mapping.
    TableStream(crate::stream::TableStreamTrigger),
}

#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The cargo binary (`BuildProperties.Binary`), which is also the function's name locally.
    pub binary: String,
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, Clone)]
pub struct Functions {
    pub functions: Vec<FunctionDef>,
}

/// `!Ref X` or `{Ref: X}`: the logical id (or parameter) X.
pub fn ref_of(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_owned),
        Value::Mapping(m) => m.get("Ref").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// `!GetAtt X.Arn` or `{Fn::GetAtt: [X, Arn]}`: the logical id X.
pub fn get_att_of(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(t) if t.tag == "GetAtt" => t.value.as_str().and_then(|s| s.split('.').next()).map(str::to_owned),
        Value::Mapping(m) => m
            .get("Fn::GetAtt")
            .and_then(Value::as_sequence)
            .and_then(|s| s.first())
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

impl Functions {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| TemplateError::Read(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }

    pub fn from_repo() -> Result<Self, TemplateError> {
        Self::load(&crate::emulators::repo_root().join("infra/template.yaml"))
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| TemplateError::Read(e.to_string()))?;
        let resources = doc.get("Resources").and_then(Value::as_mapping).ok_or_else(|| shape("no Resources"))?;
        let mut functions = Vec::new();
        for (id, resource) in resources {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let id = id.as_str().ok_or_else(|| shape("resource id not a string"))?.to_owned();
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| shape(format!("{id}: Metadata.BuildProperties.Binary missing")))?
                .to_owned();
            let events = resource.get("Properties").and_then(|p| p.get("Events")).and_then(Value::as_mapping);
            let triggers =
                events.into_iter().flatten().map(|(_, event)| trigger(&id, event)).collect::<Result<_, _>>()?;
            functions.push(FunctionDef { logical_id: id, binary, triggers });
        }
        Ok(Self { functions })
    }
}

fn trigger(function: &str, event: &Value) -> Result<Trigger, TemplateError> {
    let properties = event.get("Properties").cloned().unwrap_or(Value::Null);
    let text = |key: &str| properties.get(key).and_then(Value::as_str).map(str::to_owned);
    let missing = |what: &str| shape(format!("{function}: {what}"));
    Ok(match event.get("Type").and_then(Value::as_str) {
        Some("HttpApi") => Trigger::Http {
            method: text("Method").ok_or_else(|| missing("HttpApi without Method"))?.to_uppercase(),
            path: text("Path").ok_or_else(|| missing("HttpApi without Path"))?,
            public: properties.get("Auth").and_then(|a| a.get("Authorizer")).and_then(Value::as_str) == Some("NONE"),
        },
        Some("SQS") => Trigger::Sqs {
            queue: properties
                .get("Queue")
                .and_then(get_att_of)
                .ok_or_else(|| missing("SQS Queue must be !GetAtt <queue>.Arn"))?,
            batch_size: properties.get("BatchSize").and_then(Value::as_i64).unwrap_or(10) as i32,
        },
        Some("Schedule" | "ScheduleV2") => Trigger::Schedule {
            expression: text("Schedule").or_else(|| text("ScheduleExpression")).unwrap_or_default(),
        },
        Some("DynamoDB") => {
            let number = |key: &str, default: i64| properties.get(key).and_then(Value::as_i64).unwrap_or(default);
            let reports_items = properties
                .get("FunctionResponseTypes")
                .and_then(Value::as_sequence)
                .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("ReportBatchItemFailures")));
            if !reports_items {
                return Err(missing("a stream consumer must report batch item failures"));
            }
            Trigger::TableStream(crate::stream::TableStreamTrigger {
                batch_size: number("BatchSize", 100) as i32,
                batching_window: std::time::Duration::from_secs(number("MaximumBatchingWindowInSeconds", 0) as u64),
                // Lambda's default is to retry until the records expire.
                max_retries: number("MaximumRetryAttempts", 10_000) as u32,
                bisect_on_error: properties.get("BisectBatchOnFunctionError").and_then(Value::as_bool).unwrap_or(false),
                on_failure_queue: properties
                    .get("DestinationConfig")
                    .and_then(|d| d.get("OnFailure"))
                    .and_then(|f| f.get("Destination"))
                    .and_then(get_att_of),
            })
        }
        other => return Err(shape(format!("{function}: event type {other:?} has no local emulation"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_binary_is_a_workspace_function() {
        let template = Functions::from_repo().unwrap();
        let binaries: Vec<&str> = template.functions.iter().map(|f| f.binary.as_str()).collect();
        let expected = [
            "order-intake",
            "stock-reservation",
            "staff-api",
            "hold-expiry",
            "payment-webhook",
            "payment-processor",
            "event-relay",
        ];
        for b in expected {
            assert!(binaries.contains(&b), "{b} missing from {binaries:?}");
        }
        for f in &template.functions {
            let manifest = crate::emulators::repo_root().join("functions").join(&f.binary).join("Cargo.toml");
            assert!(
                manifest.exists(),
                "{} names binary {} but {} is missing",
                f.logical_id,
                f.binary,
                manifest.display()
            );
        }
    }

    #[test]
    fn the_reservation_function_consumes_the_queue_the_order_received_rule_feeds() {
        let template = Functions::from_repo().unwrap();
        let reservation = template.functions.iter().find(|f| f.binary == "stock-reservation").unwrap();
        assert_eq!(reservation.triggers, [Trigger::Sqs { queue: "StockReservationQueue".into(), batch_size: 10 }]);
        let translated = crate::translate::repo_template().unwrap();
        let rule = translated["Resources"].as_object().unwrap().values().find(|r| {
            r["Type"] == "AWS::Events::Rule"
                && r["Properties"]["EventPattern"]["detail-type"] == serde_json::json!(["OrderReceived"])
        });
        let target = &rule.expect("an OrderReceived rule")["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0];
        assert_eq!(target, "StockReservationQueue");
    }

    #[test]
    fn the_event_relay_reads_the_table_stream_with_bounded_retries_and_a_failure_destination() {
        let template = Functions::from_repo().unwrap();
        let relay = template.functions.iter().find(|f| f.binary == "event-relay").unwrap();
        let [Trigger::TableStream(stream)] = relay.triggers.as_slice() else {
            panic!("the relay's one trigger is the table stream: {:?}", relay.triggers)
        };
        assert!(stream.bisect_on_error);
        assert!((1..=10).contains(&stream.max_retries), "{}", stream.max_retries);
        assert_eq!(stream.on_failure_queue.as_deref(), Some("UnpublishedChangesQueue"));
        let translated = crate::translate::repo_template().unwrap();
        assert_eq!(
            translated["Resources"]["OrdersTable"]["Properties"]["StreamSpecification"]["StreamViewType"],
            "NEW_AND_OLD_IMAGES"
        );
    }

    #[test]
    fn every_schedule_runs_locally() {
        let template = Functions::from_repo().unwrap();
        let schedules =
            template.functions.iter().flat_map(|f| &f.triggers).filter(|t| matches!(t, Trigger::Schedule { .. }));
        assert_eq!(schedules.count(), 2, "the hold-expiry sweeper's and the tracking poller's");
        for f in &template.functions {
            for t in &f.triggers {
                if let Trigger::Schedule { expression } = t {
                    assert_eq!(
                        crate::local::parse_rate(expression).unwrap(),
                        std::time::Duration::from_secs(60),
                        "{}",
                        f.logical_id
                    );
                }
            }
        }
        assert_eq!(crate::local::parse_rate("rate(2 hours)").unwrap().as_secs(), 7_200);
        assert!(crate::local::parse_rate("cron(0 12 * * ? *)").is_err());
    }

    #[test]
    fn every_consumed_queue_has_a_dead_letter_queue_and_six_function_timeouts_of_visibility() {
        let translated = crate::translate::repo_template().unwrap();
        let resources = translated["Resources"].as_object().unwrap();
        let template = Functions::from_repo().unwrap();
        let consumed: Vec<&String> = template
            .functions
            .iter()
            .flat_map(|f| &f.triggers)
            .filter_map(|t| match t {
                Trigger::Sqs { queue, .. } => Some(queue),
                _ => None,
            })
            .collect();
        assert_eq!(
            consumed.len(),
            6,
            "reservation, payment processing, fulfilment, tracking, refunds and the dashboard: {consumed:?}"
        );
        for queue in consumed {
            let consumer = resources
                .values()
                .find(|r| {
                    r["Type"] == "AWS::Lambda::EventSourceMapping"
                        && r["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] == **queue
                })
                .unwrap_or_else(|| panic!("no event source mapping for {queue}"));
            let function = consumer["Properties"]["FunctionName"]["Ref"].as_str().unwrap();
            let timeout = resources[function]["Properties"]["Timeout"].as_i64().unwrap();
            let properties = &resources[queue.as_str()]["Properties"];
            assert!(properties["VisibilityTimeout"].as_i64().unwrap_or(30) >= 6 * timeout, "{queue}");
            assert!(properties["RedrivePolicy"]["maxReceiveCount"].as_i64().unwrap() >= 5, "{queue}");
            let dlq = properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0].as_str().unwrap();
            assert_eq!(resources[dlq]["Type"], "AWS::SQS::Queue", "{queue}");
        }
    }
}
