//! `infra/template.yaml` as CloudFormation sees it: translated by SAM's own translator (the code
//! `sam deploy` and the AWS::Serverless transform run, pinned in tests/requirements.txt), and
//! the one filtering step that makes LocalStack's share of it: [`LocalStackTemplate`] leaves out
//! what runs elsewhere here (functions, HTTP API, table) and whatever depends on it.

use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot run SAM's translator ({0}): run tests/bin/setup first")]
    Run(String),
    #[error("SAM's translator rejected the template:\n{0}")]
    Rejected(String),
    #[error("the translated template is not what CloudFormation takes: {0}")]
    Shape(String),
}

/// Runs `tests/bin/sam-translate` (the project's pinned translator) on a SAM template.
pub fn translate(template: &Path) -> Result<Json, TranslateError> {
    let output = Command::new(crate::emulators::repo_root().join("tests/bin/sam-translate"))
        .arg(template)
        .output()
        .map_err(|e| TranslateError::Run(e.to_string()))?;
    if !output.status.success() {
        return Err(TranslateError::Rejected(String::from_utf8_lossy(&output.stderr).trim().to_owned()));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| TranslateError::Shape(e.to_string()))
}

/// The repository's template, translated once per process.
pub fn repo_template() -> Result<&'static Json, TranslateError> {
    static TRANSLATED: std::sync::OnceLock<Result<Json, TranslateError>> = std::sync::OnceLock::new();
    TRANSLATED
        .get_or_init(|| translate(&crate::emulators::repo_root().join("infra/template.yaml")))
        .as_ref()
        .map_err(Clone::clone)
}

/// Resource types of the translated template that do not go to LocalStack, and why.
pub const RUNS_ELSEWHERE: [(&str, &str); 4] = [
    ("AWS::Lambda::", "the functions run on the host; the local runner wires their triggers from the template"),
    ("AWS::IAM::", "roles only serve the functions; LocalStack does not enforce IAM"),
    ("AWS::ApiGatewayV2::", "the local runner serves the HTTP API's routes"),
    ("AWS::DynamoDB::Table", "the table lives in Dynoxide (LocalStack's DynamoDB needs a Java download)"),
];

/// The part of a translated template that LocalStack's CloudFormation deploys here.
#[derive(Debug, Clone)]
pub struct LocalStackTemplate {
    pub body: Json,
    /// Every resource left out, with the reason.
    pub left_out: BTreeMap<String, String>,
}

impl LocalStackTemplate {
    /// Leaves out the resources of a [`RUNS_ELSEWHERE`] type, then every resource that refers to
    /// one left out (transitively), the outputs that name one, and the parameters nothing kept
    /// uses any more. Rules, mappings and conditions stay as they are.
    pub fn from_translated(translated: &Json) -> Result<Self, TranslateError> {
        let resources =
            translated["Resources"].as_object().ok_or_else(|| TranslateError::Shape("no Resources".into()))?;
        let mut left_out = BTreeMap::new();
        for (id, resource) in resources {
            let kind = resource["Type"].as_str().unwrap_or_default();
            if let Some((_, why)) = RUNS_ELSEWHERE.iter().find(|(prefix, _)| kind.starts_with(prefix)) {
                left_out.insert(id.clone(), format!("{kind}: {why}"));
            }
        }
        loop {
            let newly: Vec<(String, String)> = resources
                .iter()
                .filter(|(id, _)| !left_out.contains_key(*id))
                .filter_map(|(id, resource)| {
                    let needs = references(resource).into_iter().find(|r| left_out.contains_key(r))?;
                    Some((id.clone(), format!("refers to {needs}, which is left out")))
                })
                .collect();
            if newly.is_empty() {
                break;
            }
            left_out.extend(newly);
        }
        let kept_resources: Map<String, Json> = resources
            .iter()
            .filter(|(id, _)| !left_out.contains_key(*id))
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        let outputs: Map<String, Json> = translated["Outputs"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, output)| references(output).iter().all(|r| !left_out.contains_key(r)))
            .map(|(id, output)| (id.clone(), output.clone()))
            .collect();
        let conditions = translated["Conditions"].as_object().cloned().unwrap_or_default();
        let used: BTreeSet<String> = [&kept_resources, &outputs, &conditions]
            .into_iter()
            .flat_map(|section| section.values().flat_map(references))
            .collect();
        let parameters: Map<String, Json> = translated["Parameters"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(id, _)| used.contains(*id))
            .map(|(id, value)| (id.clone(), value.clone()))
            .collect();
        let mut body = Map::new();
        body.insert("AWSTemplateFormatVersion".into(), "2010-09-09".into());
        if let Some(description) = translated.get("Description") {
            body.insert("Description".into(), description.clone());
        }
        for (section, content) in [
            ("Parameters", parameters),
            ("Conditions", conditions),
            ("Resources", kept_resources),
            ("Outputs", outputs),
        ] {
            if !content.is_empty() {
                body.insert(section.into(), Json::Object(content));
            }
        }
        Ok(Self { body: Json::Object(body), left_out })
    }

    pub fn resource_types(&self) -> BTreeMap<String, String> {
        self.body["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, r)| (id.clone(), r["Type"].as_str().unwrap_or_default().to_owned()))
            .collect()
    }
}

/// The logical ids a piece of template names: `Ref`, `Fn::GetAtt`, `${X}` in `Fn::Sub`, and a
/// resource's `DependsOn`. Pseudo parameters (`AWS::Region`) are not logical ids and are skipped.
pub fn references(value: &Json) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    collect_references(value, &mut found);
    if let Some(depends_on) = value.get("DependsOn") {
        match depends_on {
            Json::String(id) => {
                found.insert(id.clone());
            }
            Json::Array(ids) => found.extend(ids.iter().filter_map(Json::as_str).map(str::to_owned)),
            _ => {}
        }
    }
    found.retain(|id| !id.starts_with("AWS::"));
    found
}

fn collect_references(value: &Json, found: &mut BTreeSet<String>) {
    match value {
        Json::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("Ref", Json::String(id)) => {
                        found.insert(id.clone());
                    }
                    ("Fn::GetAtt", Json::Array(parts)) => {
                        found.extend(parts.first().and_then(Json::as_str).map(str::to_owned))
                    }
                    ("Fn::GetAtt", Json::String(path)) => found.extend(path.split('.').next().map(str::to_owned)),
                    ("Fn::Sub", Json::String(text)) => found.extend(sub_names(text)),
                    ("Fn::Sub", Json::Array(parts)) => {
                        let local: BTreeSet<&str> = parts
                            .get(1)
                            .and_then(Json::as_object)
                            .into_iter()
                            .flatten()
                            .map(|(k, _)| k.as_str())
                            .collect();
                        let text = parts.first().and_then(Json::as_str).unwrap_or_default();
                        found.extend(sub_names(text).into_iter().filter(|name| !local.contains(name.as_str())));
                    }
                    _ => {}
                }
                collect_references(inner, found);
            }
        }
        Json::Array(items) => items.iter().for_each(|item| collect_references(item, found)),
        _ => {}
    }
}

/// `${Name}` and `${Name.Attribute}` in a `Fn::Sub` string; `${!Literal}` is not a reference.
fn sub_names(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(name, _)| name)
        .filter(|name| !name.starts_with('!'))
        .map(|name| name.split('.').next().unwrap_or(name).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_repository_template_passes_sams_translator() {
        let translated = repo_template().unwrap();
        assert!(translated["Resources"]["HttpApi"]["Type"] == "AWS::ApiGatewayV2::Api", "{translated}");
    }

    #[test]
    fn a_template_sam_rejects_fails_with_sams_own_message() {
        let source = std::fs::read_to_string(crate::emulators::repo_root().join("infra/template.yaml")).unwrap();
        // The template with its routes' default authorizer named but not defined.
        let authorizers = "        Authorizers:\n          BearerToken:\n            IdentitySource: $request.header.Authorization\n            JwtConfiguration:\n              issuer: !Ref JwtIssuer\n              audience: !Ref JwtAudience\n";
        let broken = source.replace(authorizers, "");
        assert_ne!(source, broken, "the template defines the JWT authorizer its routes use by default");
        let path = std::env::temp_dir().join(format!("orderflow-broken-{}.yaml", ulid::Ulid::new()));
        std::fs::write(&path, broken).unwrap();
        let error = translate(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(error.contains("Unable to set DefaultAuthorizer"), "{error}");
    }

    #[test]
    fn localstack_gets_the_queues_bus_and_rules_of_the_repository_template_and_nothing_that_runs_elsewhere() {
        let local = LocalStackTemplate::from_translated(repo_template().unwrap()).unwrap();
        let types = local.resource_types();
        for (id, kind) in &types {
            assert!(RUNS_ELSEWHERE.iter().all(|(prefix, _)| !kind.starts_with(prefix)), "{id} {kind}");
        }
        let kept: Vec<&str> = types.keys().map(String::as_str).collect();
        assert_eq!(
            kept,
            [
                "BusDeliveryDeadLetterAlarm",
                "BusDeliveryDeadLetterQueue",
                "BusDeliveryDeadLetterQueuePolicy",
                "DashboardDeadLetterAlarm",
                "DashboardDeadLetterQueue",
                "DashboardQueue",
                "DashboardQueuePolicy",
                "DashboardRule",
                "DispatchPhotoBucket",
                "EvidencePhotoBucket",
                "FulfilmentDeadLetterAlarm",
                "FulfilmentDeadLetterQueue",
                "FulfilmentQueue",
                "FulfilmentQueuePolicy",
                "FulfilmentRule",
                "NotificationDeadLetterAlarm",
                "NotificationDeadLetterQueue",
                "NotificationQueue",
                "OrderEventBus",
                "OrderReceivedRule",
                "ParkedPaymentsDueRule",
                "PaymentEventReceivedRule",
                "PaymentEventsDeadLetterAlarm",
                "PaymentEventsDeadLetterQueue",
                "PaymentEventsQueue",
                "PaymentEventsQueuePolicy",
                "PersonalDataKey",
                "RefundsDeadLetterAlarm",
                "RefundsDeadLetterQueue",
                "RefundsQueue",
                "RefundsQueuePolicy",
                "RefundsRule",
                "StockReservationDeadLetterAlarm",
                "StockReservationDeadLetterQueue",
                "StockReservationQueue",
                "StockReservationQueuePolicy",
                "TrackingDeadLetterAlarm",
                "TrackingDeadLetterQueue",
                "TrackingQueue",
                "TrackingQueuePolicy",
                "TrackingRule",
                "UnpublishedChangesAlarm",
                "UnpublishedChangesQueue",
            ],
            "what LocalStack deploys of the template"
        );
        assert!(local.left_out["OrdersTable"].contains("Dynoxide"));
        assert!(local.left_out["StockReservationFunction"].starts_with("AWS::Lambda::Function"));
        // The schedule's rule targets the function, so it goes with it: the local runner fires it.
        assert!(local.left_out["HoldExpiryFunctionEveryMinute"].contains("HoldExpiryFunction"));
        let parameters: Vec<_> = local.body["Parameters"].as_object().unwrap().keys().collect();
        assert_eq!(parameters, ["AlarmTopicArn"], "the queues' alarms use it; only the functions used the rest");
        assert!(local.body["Outputs"].get("ApiUrl").is_none() && local.body["Outputs"].get("TableName").is_none());
        assert!(local.body["Outputs"].get("EventBusName").is_some());
    }

    #[test]
    fn whatever_refers_to_a_left_out_resource_goes_too_by_any_kind_of_reference() {
        let template = json!({
            "Parameters": {"Size": {"Type": "Number"}, "Unused": {"Type": "String"}},
            "Resources": {
                "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": {"Ref": "Size"}}},
                "ByRef": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Fn"}}},
                "ByGetAtt": {"Type": "AWS::SQS::Queue", "Properties": {"Tags": [{"Value": {"Fn::GetAtt": "ByRef.Arn"}}]}},
                "BySub": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "${ByGetAtt.QueueName}-x"}}},
                "ByDependsOn": {"Type": "AWS::SQS::Queue", "DependsOn": ["BySub"]},
                "SubLocalName": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": ["${Fn}-${AWS::Region}-${!Literal}", {"Fn": "local"}]}}},
                "Kept": {"Type": "AWS::SQS::Queue", "Properties": {"DelaySeconds": {"Ref": "Size"}}}
            },
            "Outputs": {"FnArn": {"Value": {"Fn::GetAtt": ["Fn", "Arn"]}}, "KeptUrl": {"Value": {"Ref": "Kept"}}}
        });
        let local = LocalStackTemplate::from_translated(&template).unwrap();
        assert_eq!(
            local.left_out.keys().collect::<Vec<_>>(),
            ["ByDependsOn", "ByGetAtt", "ByRef", "BySub", "Fn"],
            "{:?}",
            local.left_out
        );
        assert_eq!(local.resource_types().keys().collect::<Vec<_>>(), ["Kept", "SubLocalName"]);
        assert_eq!(local.body["Outputs"].as_object().unwrap().keys().collect::<Vec<_>>(), ["KeptUrl"]);
        assert_eq!(local.body["Parameters"].as_object().unwrap().keys().collect::<Vec<_>>(), ["Size"]);
    }
}
