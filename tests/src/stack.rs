//! The deployment template as the local stack's single source of truth: this module reads
//! `infra/template.yaml` and creates the table, queues, dead-letter queues, bus and rules it
//! declares on the emulators, and lists each function's triggers for the local runner.

use serde_json::Value as Json;
use serde_yaml_ng::Value;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot read the template: {0}")]
    Read(String),
    #[error("template: {0}")]
    Shape(String),
    #[error("provisioning {what} failed: {reason}")]
    Provision { what: String, reason: String },
}

fn shape(msg: impl Into<String>) -> StackError {
    StackError::Shape(msg.into())
}

#[derive(Debug, Clone)]
pub struct TableDef {
    pub logical_id: String,
    pub properties: Json,
}

#[derive(Debug, Clone)]
pub struct QueueDef {
    pub logical_id: String,
    pub visibility_timeout: Option<i64>,
    pub retention: Option<i64>,
    /// (dead-letter queue's logical id, maxReceiveCount)
    pub redrive: Option<(String, i64)>,
}

#[derive(Debug, Clone)]
pub struct RuleDef {
    pub logical_id: String,
    pub bus: String,
    pub pattern: Json,
    /// (target id, queue logical id)
    pub targets: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Http { method: String, path: String },
    Sqs { queue: String, batch_size: i32 },
    Schedule { expression: String },
}

#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The cargo binary (`BuildProperties.Binary`), which is also the function's name locally.
    pub binary: String,
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, Clone)]
pub struct StackDefinition {
    pub table: TableDef,
    pub bus: String,
    pub queues: Vec<QueueDef>,
    pub rules: Vec<RuleDef>,
    pub functions: Vec<FunctionDef>,
}

/// `!Ref X` or `{Ref: X}`.
fn ref_of(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_owned),
        Value::Mapping(m) => m.get("Ref").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// `!GetAtt X.Arn` or `{Fn::GetAtt: [X, Arn]}`: the logical id X.
fn get_att_of(value: &Value) -> Option<String> {
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

fn to_json(value: &Value) -> Result<Json, StackError> {
    serde_json::to_value(value).map_err(|e| shape(format!("not plain data: {e}")))
}

impl StackDefinition {
    pub fn load(path: &Path) -> Result<Self, StackError> {
        let text = std::fs::read_to_string(path).map_err(|e| StackError::Read(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, StackError> {
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| StackError::Read(e.to_string()))?;
        let resources = doc.get("Resources").and_then(Value::as_mapping).ok_or_else(|| shape("no Resources"))?;
        let mut table = None;
        let mut bus = None;
        let mut queues = Vec::new();
        let mut rules = Vec::new();
        let mut functions = Vec::new();
        for (id, resource) in resources {
            let id = id.as_str().ok_or_else(|| shape("resource id not a string"))?.to_owned();
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default();
            let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
            match kind {
                "AWS::DynamoDB::Table" => {
                    if table.is_some() {
                        return Err(shape("more than one table; the single-table design expects one"));
                    }
                    table = Some(TableDef { logical_id: id, properties: to_json(&props)? });
                }
                "AWS::Events::EventBus" => bus = Some(id),
                "AWS::SQS::Queue" => {
                    let redrive = match props.get("RedrivePolicy") {
                        None => None,
                        Some(policy) => {
                            let dlq = policy.get("deadLetterTargetArn").and_then(get_att_of).ok_or_else(|| {
                                shape(format!("{id}: deadLetterTargetArn must be !GetAtt <queue>.Arn"))
                            })?;
                            let max = policy
                                .get("maxReceiveCount")
                                .and_then(Value::as_i64)
                                .ok_or_else(|| shape(format!("{id}: maxReceiveCount missing")))?;
                            Some((dlq, max))
                        }
                    };
                    queues.push(QueueDef {
                        logical_id: id,
                        visibility_timeout: props.get("VisibilityTimeout").and_then(Value::as_i64),
                        retention: props.get("MessageRetentionPeriod").and_then(Value::as_i64),
                        redrive,
                    });
                }
                "AWS::Events::Rule" => {
                    let bus = props
                        .get("EventBusName")
                        .and_then(ref_of)
                        .ok_or_else(|| shape(format!("{id}: EventBusName must be !Ref <bus>")))?;
                    let pattern =
                        to_json(props.get("EventPattern").ok_or_else(|| shape(format!("{id}: no EventPattern")))?)?;
                    let targets = props
                        .get("Targets")
                        .and_then(Value::as_sequence)
                        .ok_or_else(|| shape(format!("{id}: no Targets")))?
                        .iter()
                        .map(|t| {
                            let target_id = t.get("Id").and_then(Value::as_str).unwrap_or("target").to_owned();
                            let queue = t
                                .get("Arn")
                                .and_then(get_att_of)
                                .ok_or_else(|| shape(format!("{id}: target Arn must be !GetAtt <queue>.Arn")))?;
                            Ok((target_id, queue))
                        })
                        .collect::<Result<_, StackError>>()?;
                    rules.push(RuleDef { logical_id: id, bus, pattern, targets });
                }
                "AWS::Serverless::Function" => {
                    let binary = resource
                        .get("Metadata")
                        .and_then(|m| m.get("BuildProperties"))
                        .and_then(|b| b.get("Binary"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| shape(format!("{id}: Metadata.BuildProperties.Binary missing")))?
                        .to_owned();
                    let mut triggers = Vec::new();
                    for (_, event) in props.get("Events").and_then(Value::as_mapping).into_iter().flatten() {
                        let ep = event.get("Properties").cloned().unwrap_or(Value::Null);
                        let text = |key: &str| ep.get(key).and_then(Value::as_str).map(str::to_owned);
                        match event.get("Type").and_then(Value::as_str) {
                            Some("HttpApi") => triggers.push(Trigger::Http {
                                method: text("Method")
                                    .ok_or_else(|| shape(format!("{id}: HttpApi without Method")))?
                                    .to_uppercase(),
                                path: text("Path").ok_or_else(|| shape(format!("{id}: HttpApi without Path")))?,
                            }),
                            Some("SQS") => triggers.push(Trigger::Sqs {
                                queue: ep
                                    .get("Queue")
                                    .and_then(get_att_of)
                                    .ok_or_else(|| shape(format!("{id}: SQS Queue must be !GetAtt <queue>.Arn")))?,
                                batch_size: ep.get("BatchSize").and_then(Value::as_i64).unwrap_or(10) as i32,
                            }),
                            Some("Schedule" | "ScheduleV2") => triggers.push(Trigger::Schedule {
                                expression: text("Schedule").or_else(|| text("ScheduleExpression")).unwrap_or_default(),
                            }),
                            other => return Err(shape(format!("{id}: event type {other:?} has no local emulation"))),
                        }
                    }
                    functions.push(FunctionDef { logical_id: id, binary, triggers });
                }
                _ => {}
            }
        }
        Ok(Self {
            table: table.ok_or_else(|| shape("no AWS::DynamoDB::Table"))?,
            bus: bus.ok_or_else(|| shape("no AWS::Events::EventBus"))?,
            queues,
            rules,
            functions,
        })
    }

    pub fn from_repo() -> Result<Self, StackError> {
        Self::load(&crate::emulators::repo_root().join("infra/template.yaml"))
    }
}

/// Physical names of what was created, by logical id.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub table_name: String,
    pub bus_name: String,
    pub queue_urls: HashMap<String, String>,
    pub queue_arns: HashMap<String, String>,
}

impl Provisioned {
    pub fn queue_url(&self, logical_id: &str) -> &str {
        self.queue_urls.get(logical_id).unwrap_or_else(|| panic!("no queue {logical_id}"))
    }
}

/// Every SDK shares the smithy error type, so one mapper serves DynamoDB, SQS and EventBridge.
fn fail<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>) -> StackError
{
    let what = what.into();
    move |e| StackError::Provision {
        what,
        reason: aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
    }
}

/// Create everything the definition declares, every physical name prefixed with `prefix` so
/// several stacks can share one moto.
pub async fn provision(
    def: &StackDefinition,
    prefix: &str,
    dynamodb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    events: &aws_sdk_eventbridge::Client,
) -> Result<Provisioned, StackError> {
    let table_name = format!("{prefix}{}", def.table.logical_id);
    create_table(&def.table, &table_name, dynamodb).await?;

    // Dead-letter queues first: the queues that redrive into them need their ARNs.
    let mut queues = def.queues.clone();
    queues.sort_by_key(|q| q.redrive.is_some());
    let mut queue_urls = HashMap::new();
    let mut queue_arns = HashMap::new();
    for queue in &queues {
        let name = format!("{prefix}{}", queue.logical_id);
        let mut request = sqs.create_queue().queue_name(&name);
        use aws_sdk_sqs::types::QueueAttributeName as A;
        if let Some(v) = queue.visibility_timeout {
            request = request.attributes(A::VisibilityTimeout, v.to_string());
        }
        if let Some(v) = queue.retention {
            request = request.attributes(A::MessageRetentionPeriod, v.to_string());
        }
        if let Some((dlq, max)) = &queue.redrive {
            let arn = queue_arns
                .get(dlq)
                .ok_or_else(|| shape(format!("{}: unknown dead-letter queue {dlq}", queue.logical_id)))?;
            let policy = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max.to_string() });
            request = request.attributes(A::RedrivePolicy, policy.to_string());
        }
        let url = request.send().await.map_err(fail(&name))?.queue_url.unwrap_or_default();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(A::QueueArn)
            .send()
            .await
            .map_err(fail(&name))?;
        let arn = attrs.attributes.and_then(|mut a| a.remove(&A::QueueArn)).unwrap_or_default();
        queue_urls.insert(queue.logical_id.clone(), url);
        queue_arns.insert(queue.logical_id.clone(), arn);
    }

    let bus_name = format!("{prefix}{}", def.bus);
    events.create_event_bus().name(&bus_name).send().await.map_err(fail(bus_name.clone()))?;
    for rule in &def.rules {
        if rule.bus != def.bus {
            return Err(shape(format!("{}: rule on unknown bus {}", rule.logical_id, rule.bus)));
        }
        let name = format!("{prefix}{}", rule.logical_id);
        events
            .put_rule()
            .name(&name)
            .event_bus_name(&bus_name)
            .event_pattern(rule.pattern.to_string())
            .send()
            .await
            .map_err(fail(name.clone()))?;
        let mut targets = events.put_targets().rule(&name).event_bus_name(&bus_name);
        for (target_id, queue) in &rule.targets {
            let arn = queue_arns
                .get(queue)
                .ok_or_else(|| shape(format!("{}: unknown target queue {queue}", rule.logical_id)))?;
            targets = targets.targets(
                aws_sdk_eventbridge::types::Target::builder().id(target_id).arn(arn).build().expect("id and arn set"),
            );
        }
        let out = targets.send().await.map_err(fail(name.clone()))?;
        if out.failed_entry_count > 0 {
            return Err(StackError::Provision { what: name, reason: "target refused".into() });
        }
    }
    Ok(Provisioned { table_name, bus_name, queue_urls, queue_arns })
}

async fn create_table(def: &TableDef, name: &str, client: &aws_sdk_dynamodb::Client) -> Result<(), StackError> {
    use aws_sdk_dynamodb::types::*;
    let p = &def.properties;
    let text = |v: &Json, key: &str| v.get(key).and_then(Json::as_str).unwrap_or_default().to_owned();
    let key_schema = |v: &Json| -> Vec<KeySchemaElement> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(text(k, "AttributeName"))
                    .key_type(KeyType::from(text(k, "KeyType").as_str()))
                    .build()
                    .expect("name and type set")
            })
            .collect()
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&p["KeySchema"])));
    for a in p["AttributeDefinitions"].as_array().into_iter().flatten() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(a, "AttributeName"))
                .attribute_type(ScalarAttributeType::from(text(a, "AttributeType").as_str()))
                .build()
                .expect("name and type set"),
        );
    }
    for g in p["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(text(&g["Projection"], "ProjectionType").as_str()))
            .set_non_key_attributes(
                g["Projection"]["NonKeyAttributes"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Json::as_str).map(str::to_owned).collect()),
            )
            .build();
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(g, "IndexName"))
                .set_key_schema(Some(key_schema(&g["KeySchema"])))
                .projection(projection)
                .build()
                .expect("index fields set"),
        );
    }
    request.send().await.map_err(fail(name))?;
    if let Some(ttl) = p.get("TimeToLiveSpecification") {
        if ttl["Enabled"].as_bool() == Some(true) {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(text(ttl, "AttributeName"))
                        .enabled(true)
                        .build()
                        .expect("name and flag set"),
                )
                .send()
                .await
                .map_err(fail(name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_template_declares_the_first_slice() {
        let def = StackDefinition::from_repo().unwrap();
        assert_eq!(def.table.logical_id, "OrdersTable");
        let reservation = def.queues.iter().find(|q| q.logical_id == "StockReservationQueue").unwrap();
        let (dlq, max) = reservation.redrive.clone().unwrap();
        assert!(max >= 5, "maxReceiveCount {max}");
        assert!(def.queues.iter().any(|q| q.logical_id == dlq));
        let rule = def.rules.iter().find(|r| r.pattern["detail-type"][0] == "OrderReceived").unwrap();
        assert_eq!(rule.targets[0].1, "StockReservationQueue");
        let binaries: Vec<&str> = def.functions.iter().map(|f| f.binary.as_str()).collect();
        for b in
            ["order-intake", "stock-reservation", "staff-api", "hold-expiry", "payment-webhook", "payment-processor"]
        {
            assert!(binaries.contains(&b), "{b} missing from {binaries:?}");
        }
    }

    #[test]
    fn every_template_binary_is_a_workspace_function() {
        let def = StackDefinition::from_repo().unwrap();
        for f in &def.functions {
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
    fn every_schedule_runs_locally() {
        let def = StackDefinition::from_repo().unwrap();
        for f in &def.functions {
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
    fn visibility_timeout_is_at_least_six_function_timeouts() {
        let text = std::fs::read_to_string(crate::emulators::repo_root().join("infra/template.yaml")).unwrap();
        let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
        let timeout = doc["Globals"]["Function"]["Timeout"].as_i64().unwrap();
        for q in StackDefinition::parse(&text).unwrap().queues.iter().filter(|q| q.redrive.is_some()) {
            assert!(q.visibility_timeout.unwrap_or(30) >= 6 * timeout, "{}", q.logical_id);
        }
    }
}
