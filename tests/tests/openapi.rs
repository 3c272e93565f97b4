//! The HTTP API's published contract (docs/openapi.yaml) against the deployment template and
//! against the check every answer of the suite goes through: every route of the template is
//! documented with its method, path parameters and authentication, nothing else is, and the
//! check refuses answers the document does not allow.

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::http::{HeaderMap, HeaderValue, StatusCode};
use orderflow::handlers::logistics::webhook as courier_webhook;
use orderflow::handlers::payment_webhook;
use orderflow_tests::contracts::api::ApiContract;
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

/// The one security requirement a route may document: the bearer token, or the signature of
/// the outside party whose webhook it is (the header the code reads).
fn expected_security(route: &str, public: bool) -> (&'static str, Option<&'static str>) {
    match (public, route) {
        (false, _) => ("bearerToken", None),
        (true, "POST /payments/webhook") => ("paymentSignature", Some(payment_webhook::SIGNATURE_HEADER)),
        (true, "POST /couriers/{courier}/webhook") => ("courierSignature", Some(courier_webhook::SIGNATURE_HEADER)),
        (true, other) => panic!("{other} skips the authorizer, and no signature is known for it"),
    }
}

#[test]
fn each_route_documents_exactly_its_own_authentication() {
    let contract = ApiContract::published();
    let document = contract.document();
    assert_eq!(document["security"], json!([{"bearerToken": []}]), "the bearer token is the default");
    for (route, public) in template_routes() {
        let operation = contract.operation(&route).unwrap();
        let (scheme, header) = expected_security(&route, public);
        let documented = operation.get("security").cloned().unwrap_or_else(|| document["security"].clone());
        assert_eq!(documented, json!([{ scheme: [] }]), "{route}: one requirement, its own");
        let defined = &document["components"]["securitySchemes"][scheme];
        if let Some(header) = header {
            assert_eq!(
                (defined["type"].as_str(), defined["in"].as_str()),
                (Some("apiKey"), Some("header")),
                "{scheme}"
            );
            assert!(defined["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(header)), "{scheme}: {defined}");
        } else {
            assert_eq!((defined["type"].as_str(), defined["scheme"].as_str()), (Some("http"), Some("bearer")));
        }
        assert!(operation["responses"]["401"].is_object(), "{route}: a caller without proof gets a 401");
    }
}

#[test]
fn every_route_documents_the_answers_api_gateway_gives_itself() {
    let contract = ApiContract::published();
    let json_type = HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static("application/json"))]);
    // Throttled (the template's default route throttling), over the body limit, no valid token,
    // the function failed or timed out: API Gateway answers with a message of its own.
    let answers = [(429, "Too Many Requests"), (413, "Request Entity Too Large"), (500, "Internal Server Error")];
    let answers = answers.into_iter().chain([(503, "Service Unavailable"), (401, "Unauthorized")]);
    let answers: Vec<(u16, &str)> = answers.collect();
    for route in template_routes().into_keys() {
        for (status, message) in &answers {
            let body = json!({ "message": message }).to_string();
            let checked = contract.check(&route, *status, &json_type, body.as_bytes());
            assert_eq!(checked, Ok(()), "{route} {status}");
        }
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
        for parameter in parameters.iter().filter(|p| p["in"] == "path") {
            let schema = contract.resolved(&parameter["schema"]).unwrap_or_else(|e| panic!("{route}: {e}"));
            assert_eq!(schema["type"], "string", "{route}: {parameter}");
        }
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{route}: no operationId"));
        assert!(operation_ids.insert(id.to_owned()), "{route}: operationId {id} twice");
    }
}

fn headers(media: &'static str) -> HeaderMap {
    HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static(media))])
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
    let problem_type = headers("application/problem+json");
    assert_eq!(contract.check(route, 404, &problem_type, &bytes(&problem)), Ok(()));
    let mut unknown_member = problem.clone();
    unknown_member["internal"] = json!("a stack trace");
    let refusals = [
        (route, 418, problem_type.clone(), bytes(&problem), "an undocumented status"),
        ("GET /nowhere", 404, problem_type.clone(), bytes(&problem), "an undocumented route"),
        (route, 404, headers("text/plain"), bytes(&problem), "the wrong media type"),
        (route, 404, problem_type.clone(), bytes(&json!({"code": "not-found"})), "a problem without its members"),
        (route, 404, problem_type.clone(), bytes(&unknown_member), "a problem with an undocumented member"),
        (route, 200, headers("application/json"), bytes(&json!({"order_id": 7})), "an order view without its fields"),
        (route, 404, problem_type.clone(), b"{not json".to_vec(), "a body that is not JSON"),
        ("POST /orders", 202, headers("application/json"), bytes(&json!({})), "an acceptance without Location"),
    ];
    for (route, status, headers, body, what) in refusals {
        assert!(contract.check(route, status, &headers, &body).is_err(), "{what} passed");
    }
}

/// What every test reads an answer through refuses one the document does not allow.
#[test]
#[should_panic(expected = "breaks docs/openapi.yaml")]
fn a_test_that_reads_an_answer_the_document_does_not_allow_fails() {
    let answer = orderflow::http::json_response(StatusCode::OK, &json!({"order_id": "not an order view"}));
    orderflow_tests::fixtures::read("GET /orders/{id}", &answer);
}
