//! One stack of the template on the emulators: LocalStack's share of the translated template
//! ([`LocalStackTemplate`]) deployed as a real CloudFormation stack, and the template's table
//! created on Dynoxide from the same translated resource. The result names every physical
//! resource by its logical id.

use crate::translate::LocalStackTemplate;
use aws_sdk_cloudformation::types::StackStatus;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Translate(#[from] crate::translate::TranslateError),
    #[error("{what} failed: {reason}")]
    Call { what: String, reason: String },
    #[error("stack {stack} ended {status}: {reasons}")]
    Failed { stack: String, status: String, reasons: String },
    #[error("template: {0}")]
    Shape(String),
}

/// Every SDK shares the smithy error type, so one mapper serves them all.
fn fail<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>) -> DeployError
{
    let what = what.into();
    move |e| DeployError::Call { what, reason: aws_smithy_types::error::display::DisplayErrorContext(e).to_string() }
}

/// Physical names of what was created, by logical id.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub stack_name: String,
    pub table_name: String,
    pub bus_name: String,
    pub queue_urls: HashMap<String, String>,
    pub queue_arns: HashMap<String, String>,
    /// S3 buckets by logical id.
    pub buckets: HashMap<String, String>,
    /// KMS key ids by logical id.
    pub keys: HashMap<String, String>,
}

impl Provisioned {
    pub fn queue_url(&self, logical_id: &str) -> &str {
        self.queue_urls.get(logical_id).unwrap_or_else(|| panic!("no queue {logical_id}"))
    }
}

pub struct Clients<'a> {
    pub cloudformation: &'a aws_sdk_cloudformation::Client,
    pub sqs: &'a aws_sdk_sqs::Client,
    pub dynamodb: &'a aws_sdk_dynamodb::Client,
}

/// Deploys the repository's template as stack `stack_name`: LocalStack's share through its
/// CloudFormation, the table on Dynoxide (named after its logical id: each stack has its own).
pub async fn deploy(stack_name: &str, clients: Clients<'_>) -> Result<Provisioned, DeployError> {
    let translated = crate::translate::repo_template()?;
    let (table_id, table) = translated["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(_, r)| r["Type"] == "AWS::DynamoDB::Table")
        .ok_or_else(|| DeployError::Shape("no AWS::DynamoDB::Table".into()))?;
    create_table(&table["Properties"], table_id, clients.dynamodb).await?;
    let local = LocalStackTemplate::from_translated(translated)?;
    let resources = create_stack(clients.cloudformation, stack_name, &local).await?;

    let mut queue_urls = HashMap::new();
    let mut queue_arns = HashMap::new();
    let mut bus_name = None;
    let mut buckets = HashMap::new();
    let mut keys = HashMap::new();
    for (logical_id, (kind, physical_id)) in resources {
        match kind.as_str() {
            "AWS::SQS::Queue" => {
                use aws_sdk_sqs::types::QueueAttributeName as A;
                let attributes = clients
                    .sqs
                    .get_queue_attributes()
                    .queue_url(&physical_id)
                    .attribute_names(A::QueueArn)
                    .send()
                    .await
                    .map_err(fail(format!("reading {logical_id}'s ARN")))?;
                let arn = attributes
                    .attributes
                    .and_then(|mut a| a.remove(&A::QueueArn))
                    .ok_or_else(|| DeployError::Shape(format!("{logical_id} has no QueueArn")))?;
                queue_arns.insert(logical_id.clone(), arn);
                queue_urls.insert(logical_id, physical_id);
            }
            "AWS::Events::EventBus" => bus_name = Some(physical_id),
            "AWS::S3::Bucket" => {
                buckets.insert(logical_id, physical_id);
            }
            "AWS::KMS::Key" => {
                keys.insert(logical_id, physical_id);
            }
            _ => {}
        }
    }
    Ok(Provisioned {
        stack_name: stack_name.to_owned(),
        table_name: table_id.clone(),
        bus_name: bus_name.ok_or_else(|| DeployError::Shape("no AWS::Events::EventBus deployed".into()))?,
        queue_urls,
        queue_arns,
        buckets,
        keys,
    })
}

/// CreateStack, then wait for CREATE_COMPLETE; the stack's resources as logical id →
/// (type, physical id). A failure names the resources that failed and why.
async fn create_stack(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack_name: &str,
    template: &LocalStackTemplate,
) -> Result<HashMap<String, (String, String)>, DeployError> {
    cloudformation
        .create_stack()
        .stack_name(stack_name)
        .template_body(template.body.to_string())
        .send()
        .await
        .map_err(fail(format!("CreateStack {stack_name}")))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let described = cloudformation
            .describe_stacks()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(fail(format!("DescribeStacks {stack_name}")))?;
        let status = described.stacks().first().and_then(|s| s.stack_status().cloned());
        match status {
            Some(StackStatus::CreateComplete) => break,
            Some(StackStatus::CreateInProgress) | None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await
            }
            other => {
                return Err(DeployError::Failed {
                    stack: stack_name.to_owned(),
                    status: other.map(|s| s.as_str().to_owned()).unwrap_or_else(|| "nowhere after 120 s".into()),
                    reasons: failure_reasons(cloudformation, stack_name).await,
                })
            }
        }
    }
    let resources = cloudformation
        .describe_stack_resources()
        .stack_name(stack_name)
        .send()
        .await
        .map_err(fail(format!("DescribeStackResources {stack_name}")))?;
    Ok(resources
        .stack_resources()
        .iter()
        .filter_map(|r| {
            let physical = r.physical_resource_id()?.to_owned();
            Some((r.logical_resource_id()?.to_owned(), (r.resource_type()?.to_owned(), physical)))
        })
        .collect())
}

async fn failure_reasons(cloudformation: &aws_sdk_cloudformation::Client, stack_name: &str) -> String {
    let Ok(events) = cloudformation.describe_stack_events().stack_name(stack_name).send().await else {
        return "no stack events".into();
    };
    let reasons: Vec<String> = events
        .stack_events()
        .iter()
        .filter(|e| e.resource_status().is_some_and(|s| s.as_str().ends_with("FAILED")))
        .map(|e| {
            format!("{}: {}", e.logical_resource_id().unwrap_or("?"), e.resource_status_reason().unwrap_or("no reason"))
        })
        .collect();
    reasons.join("; ")
}

/// CreateTable from the template's `AWS::DynamoDB::Table` properties (keys, indexes, stream),
/// then its TTL.
async fn create_table(p: &Json, name: &str, client: &aws_sdk_dynamodb::Client) -> Result<(), DeployError> {
    use aws_sdk_dynamodb::types::*;
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
    if let Some(view) = p["StreamSpecification"]["StreamViewType"].as_str() {
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::from(view))
            .build()
            .expect("flag and view set");
        request = request.stream_specification(stream);
    }
    request.send().await.map_err(fail(format!("CreateTable {name}")))?;
    if let Some(ttl) = p.get("TimeToLiveSpecification").filter(|ttl| ttl["Enabled"].as_bool() == Some(true)) {
        let specification = TimeToLiveSpecification::builder()
            .attribute_name(text(ttl, "AttributeName"))
            .enabled(true)
            .build()
            .expect("name and flag set");
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(specification)
            .send()
            .await
            .map_err(fail(format!("UpdateTimeToLive {name}")))?;
    }
    Ok(())
}
