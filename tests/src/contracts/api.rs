//! The HTTP API's published contract (docs/openapi.yaml, OpenAPI 3.1), loaded once per test
//! process, and the check every answer the suite sees goes through: its status must be one the
//! operation documents, its media type the documented one, and its body valid against the
//! documented schema.
//!
//! OpenAPI 3.1 schemas are JSON Schema 2020-12, so the `jsonschema` crate validates them: the
//! whole document is one registered resource, and each documented response body is compiled as a
//! reference into it, so its `#/components/...` references resolve as a client generator's would.

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::http::HeaderMap;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the document is registered; a response's schema is reached from here by pointer.
const BASE: &str = "https://orderflow.example/openapi.json";
/// The document member the compiled response schemas are collected under (never published).
const CHECKED: &str = "x-checked-responses";
/// Every method an OpenAPI path item may hold, so an operation the template lacks is seen.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

pub fn document_path() -> PathBuf {
    crate::emulators::repo_root().join("docs/openapi.yaml")
}

/// What one documented response allows: a schema per media type, or (none) no body at all,
/// and the headers it must carry.
struct Documented {
    bodies: BTreeMap<String, jsonschema::Validator>,
    required_headers: Vec<String>,
}

pub struct ApiContract {
    document: Value,
    /// By route key (`POST /orders/{id}/cancel`, as API Gateway names routes), then status.
    operations: BTreeMap<String, BTreeMap<u16, Documented>>,
}

impl ApiContract {
    /// docs/openapi.yaml, compiled; the process's one copy.
    pub fn published() -> &'static ApiContract {
        static CONTRACT: OnceLock<ApiContract> = OnceLock::new();
        CONTRACT.get_or_init(|| Self::load(&document_path()).unwrap_or_else(|e| panic!("docs/openapi.yaml: {e}")))
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let document: Value = serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())?;
        if document["openapi"].as_str().is_none_or(|v| !v.starts_with("3.1.")) {
            return Err("not an OpenAPI 3.1 document".into());
        }
        let mut bodies = Vec::new();
        let mut shapes = BTreeMap::new();
        for (route, method, operation) in operations_of(&document) {
            let responses = operation["responses"].as_object().ok_or(format!("{method} {route}: no responses"))?;
            let mut by_status = BTreeMap::new();
            for (status, response) in responses {
                let status: u16 = status.parse().map_err(|_| format!("{method} {route}: status {status}"))?;
                let response = resolve(&document, response)?;
                let required_headers = required_headers(&document, response)?;
                let mut media_types = Vec::new();
                for (media, media_type) in response["content"].as_object().into_iter().flatten() {
                    bodies.push(media_type["schema"].clone());
                    media_types.push((media.clone(), bodies.len() - 1));
                }
                by_status.insert(status, (media_types, required_headers));
            }
            shapes.insert(format!("{} {route}", method.to_ascii_uppercase()), by_status);
        }
        let mut registered = document.clone();
        registered[CHECKED] = Value::Array(bodies);
        // The registry outlives every validator built from it: one per process, leaked.
        let registry = jsonschema::Registry::new().add(BASE, registered).and_then(|r| r.prepare());
        let registry: &'static jsonschema::Registry<'static> =
            Box::leak(Box::new(registry.map_err(|e| e.to_string())?));
        let compile = |pointer: String| {
            jsonschema::options()
                .with_registry(registry)
                .should_validate_formats(true)
                .build(&serde_json::json!({ "$ref": format!("{BASE}#{pointer}") }))
                .map_err(|e| format!("{pointer}: {e}"))
        };
        // Every component compiles, used by a checked answer or not.
        for name in document["components"]["schemas"].as_object().into_iter().flat_map(|s| s.keys()) {
            compile(format!("/components/schemas/{name}"))?;
        }
        let mut operations = BTreeMap::new();
        for (route, by_status) in shapes {
            let mut documented = BTreeMap::new();
            for (status, (media_types, required_headers)) in by_status {
                let mut bodies = BTreeMap::new();
                for (media, index) in media_types {
                    bodies.insert(media, compile(format!("/{CHECKED}/{index}"))?);
                }
                documented.insert(status, Documented { bodies, required_headers });
            }
            operations.insert(route, documented);
        }
        Ok(Self { document, operations })
    }

    /// Every documented operation's route key (`GET /orders/{id}`).
    pub fn route_keys(&self) -> impl Iterator<Item = &str> {
        self.operations.keys().map(String::as_str)
    }

    /// The whole document, as written.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// `value`, or what its local `$ref`s lead to, followed to the end.
    pub fn resolved<'a>(&'a self, mut value: &'a Value) -> Result<&'a Value, String> {
        while value["$ref"].is_string() {
            value = resolve(&self.document, value)?;
        }
        Ok(value)
    }

    /// The operation object of `route_key`, as written.
    pub fn operation(&self, route_key: &str) -> Option<&Value> {
        let (method, route) = route_key.split_once(' ')?;
        Some(&self.document["paths"][route][method.to_ascii_lowercase()]).filter(|o| o.is_object())
    }

    /// Whether an answer to `route_key` of `status`, `headers` and `body` is one the document
    /// allows; every way it is not, when it is not.
    pub fn check(&self, route_key: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let operation = self.operations.get(route_key).ok_or_else(|| format!("{route_key}: not documented"))?;
        let documented =
            operation.get(&status).ok_or_else(|| format!("{route_key}: status {status} is not documented"))?;
        if let Some(missing) = documented.required_headers.iter().find(|h| !headers.contains_key(h.as_str())) {
            return Err(format!("{route_key} {status}: no {missing} header, which the document requires"));
        }
        let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if documented.bodies.is_empty() {
            return match body.is_empty() {
                true => Ok(()),
                false => Err(format!("{route_key} {status}: documented without a body, answered with one")),
            };
        }
        let answered = content_type.map(|c| c.split(';').next().unwrap_or("").trim()).unwrap_or("");
        let Some(validator) = documented.bodies.get(answered) else {
            let documented: Vec<&String> = documented.bodies.keys().collect();
            return Err(format!("{route_key} {status}: documented as {documented:?}, answered as {content_type:?}"));
        };
        let value = body_value(answered, body).map_err(|e| format!("{route_key} {status}: {e}"))?;
        let errors: Vec<String> =
            validator.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
        match errors.is_empty() {
            true => Ok(()),
            false => Err(format!("{route_key} {status} {value}: {}", errors.join("; "))),
        }
    }
}

/// A body as the document's schemas see it: JSON parsed for a JSON media type, else its text as
/// one string (an HTML page, say).
pub fn body_value(media_type: &str, body: &[u8]) -> Result<Value, String> {
    match media_type.ends_with("json") {
        true => serde_json::from_slice(body).map_err(|e| e.to_string()),
        false => String::from_utf8(body.to_vec()).map(Value::String).map_err(|e| e.to_string()),
    }
}

/// Each operation of the document: its path template, its method and the operation object.
fn operations_of(document: &Value) -> Vec<(&str, &'static str, &Value)> {
    let paths = document["paths"].as_object().into_iter().flatten();
    paths
        .flat_map(|(route, item)| {
            METHODS.iter().filter(|m| item[**m].is_object()).map(move |m| (route.as_str(), *m, &item[*m]))
        })
        .collect()
}

/// The names of the headers `response` documents as required (lower case, as HTTP compares them).
fn required_headers(document: &Value, response: &Value) -> Result<Vec<String>, String> {
    let mut required = Vec::new();
    for (name, header) in response["headers"].as_object().into_iter().flatten() {
        if resolve(document, header)?["required"] == true {
            required.push(name.to_ascii_lowercase());
        }
    }
    Ok(required)
}

/// A response or header, or the component a `$ref` names.
fn resolve<'a>(document: &'a Value, response: &'a Value) -> Result<&'a Value, String> {
    let Some(reference) = response["$ref"].as_str() else {
        return Ok(response);
    };
    let pointer = reference.strip_prefix('#').ok_or(format!("{reference}: only local references"))?;
    document.pointer(pointer).ok_or(format!("{reference}: no such component"))
}
