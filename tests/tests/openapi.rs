//! The HTTP API's published contract (docs/openapi.yaml) against the deployment template and
//! against the check every answer of the suite goes through: every route of the template is
//! documented with its method, path parameters and authentication, nothing else is, and the
//! check refuses answers the document does not allow.

use orderflow_tests::contracts::api::{document_path, ApiContract};
use orderflow_tests::template::{Functions, Trigger};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Each HTTP route of the template, by route key, and whether it skips the JWT authorizer.
fn template_routes() -> BTreeMap<String, bool> {
    let mut routes = BTreeMap::new();
    for function in Functions::from_repo().unwrap().functions {
        for trigger in function.triggers {
            if let Trigger::Http { method, path, public } = trigger {
                routes.insert(format!("{} {path}", method.to_ascii_uppercase()), public);
            }
        }
    }
    routes
}

#[test]
fn every_route_of_the_template_is_documented_and_no_other() {
    let template: BTreeSet<String> = template_routes().into_keys().collect();
    let documented: BTreeSet<String> = ApiContract::published().route_keys().map(str::to_owned).collect();
    assert!(template.len() > 60, "the template's routes were read: {}", template.len());
    let missing: Vec<_> = template.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&template).collect();
    assert!(missing.is_empty() && extra.is_empty(), "not documented: {missing:?}; not in the template: {extra:?}");
}

#[test]
fn signed_webhooks_name_their_signature_and_every_other_route_the_bearer_token() {
    let contract = ApiContract::published();
    let document: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(document_path()).unwrap()).unwrap();
    assert_eq!(document["security"], json!([{"bearerToken": []}]), "the bearer token is the default");
    for (route, public) in template_routes() {
        let operation = contract.operation(&route).unwrap();
        let schemes: Vec<&str> = match operation["security"].as_array() {
            None => vec!["bearerToken"],
            Some(requirements) => {
                requirements.iter().flat_map(|r| r.as_object().unwrap().keys()).map(String::as_str).collect()
            }
        };
        let signed = schemes.iter().all(|s| s.ends_with("Signature")) && !schemes.is_empty();
        assert_eq!(signed, public, "{route}: {schemes:?}");
        for scheme in schemes {
            assert!(document["components"]["securitySchemes"][scheme].is_object(), "{route}: no scheme {scheme}");
        }
        assert!(operation["responses"]["401"].is_object(), "{route}: a caller without proof gets a 401");
    }
}

#[test]
fn every_path_parameter_is_documented_and_required() {
    let contract = ApiContract::published();
    let mut operation_ids = BTreeSet::new();
    for route in template_routes().into_keys() {
        let operation = contract.operation(&route).unwrap();
        let in_path: BTreeSet<&str> =
            route.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
        let documented: BTreeSet<&str> = parameters
            .iter()
            .filter(|p| p["in"] == "path")
            .inspect(|p| assert_eq!(p["required"], true, "{route}: {p}"))
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(documented, in_path, "{route}");
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{route}: no operationId"));
        assert!(operation_ids.insert(id.to_owned()), "{route}: operationId {id} twice");
    }
}

#[test]
fn the_check_refuses_answers_the_document_does_not_allow() {
    let contract = ApiContract::published();
    let problem = json!({
        "type": "https://orderflow.dev/problems/not-found", "title": "Not found", "status": 404,
        "code": "not-found", "detail": "no such order"
    });
    let bytes = |v: &Value| v.to_string().into_bytes();
    let route = "GET /orders/{id}";
    assert_eq!(contract.check(route, 404, Some("application/problem+json"), &bytes(&problem)), Ok(()));
    let refusals = [
        (route, 418, Some("application/problem+json"), bytes(&problem), "an undocumented status"),
        ("GET /nowhere", 404, Some("application/problem+json"), bytes(&problem), "an undocumented route"),
        (route, 404, Some("application/json"), bytes(&problem), "the wrong media type"),
        (
            route,
            404,
            Some("application/problem+json"),
            bytes(&json!({"code": "not-found"})),
            "a problem without its members",
        ),
        (route, 200, Some("application/json"), bytes(&json!({"order_id": 7})), "an order view without its fields"),
        (route, 404, Some("application/problem+json"), b"{not json".to_vec(), "a body that is not JSON"),
    ];
    for (route, status, media, body, what) in refusals {
        assert!(contract.check(route, status, media, &body).is_err(), "{what} passed");
    }
}
