//! The events' published contract (docs/events: one JSON Schema per detail-type, and the
//! definitions they share), loaded once per test process, and a publisher that checks every
//! event the relay publishes against it.
//!
//! A test stack's relay publishes through [`ConformingPublisher`]; what does not conform is
//! recorded, and the stack fails the test after each relay run ([`crate::Stack::relay`]), in the
//! test's own task rather than in the relay, whose crash would only be retried.

use orderflow::events::{Announcement, EventPublisher, PublishAllFuture};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Where the schemas' `$id`s live: each refers to the others relative to it.
const BASE: &str = "https://orderflow.example/schemas/events/";
const DEFINITIONS: &str = "definitions.json";

pub fn events_dir() -> PathBuf {
    crate::emulators::repo_root().join("docs/events")
}

/// One compiled validator per detail-type.
pub struct EventSchemas {
    validators: BTreeMap<String, jsonschema::Validator>,
}

impl EventSchemas {
    /// The schemas of docs/events, compiled (formats asserted); the process's one copy.
    pub fn published() -> &'static EventSchemas {
        static SCHEMAS: OnceLock<EventSchemas> = OnceLock::new();
        SCHEMAS.get_or_init(|| Self::load(&events_dir()).unwrap_or_else(|e| panic!("docs/events: {e}")))
    }

    pub fn load(dir: &Path) -> Result<Self, String> {
        let mut documents = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).filter(|n| n.ends_with(".json")) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
            let schema: Value = serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
            jsonschema::meta::validate(&schema).map_err(|e| format!("{name} is not a valid schema: {e}"))?;
            let id = format!("{BASE}{name}");
            if schema["$id"] != id.as_str() {
                return Err(format!("{name}: $id must be {id}"));
            }
            documents.insert(name.to_owned(), schema);
        }
        let definitions = documents.remove(DEFINITIONS).ok_or(format!("no {DEFINITIONS}"))?;
        // The registry outlives every validator built from it: one per process, leaked.
        let registry = jsonschema::Registry::new()
            .add(format!("{BASE}{DEFINITIONS}"), definitions)
            .and_then(|r| r.prepare())
            .map_err(|e| e.to_string())?;
        let registry: &'static jsonschema::Registry<'static> = Box::leak(Box::new(registry));
        let mut validators = BTreeMap::new();
        for (name, schema) in documents {
            let detail_type = name.trim_end_matches(".json").to_owned();
            if schema["title"] != detail_type.as_str() {
                return Err(format!("{name}: title must be its detail-type, {detail_type}"));
            }
            let validator = jsonschema::options()
                .with_registry(registry)
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|e| format!("{name}: {e}"))?;
            validators.insert(detail_type, validator);
        }
        Ok(Self { validators })
    }

    /// The detail-types there is a schema for.
    pub fn detail_types(&self) -> impl Iterator<Item = &str> {
        self.validators.keys().map(String::as_str)
    }

    /// Whether `detail` is a valid `detail_type` event; every violation, with where it is.
    pub fn check(&self, detail_type: &str, detail: &Value) -> Result<(), String> {
        let validator =
            self.validators.get(detail_type).ok_or_else(|| format!("{detail_type}: no schema in docs/events"))?;
        let errors: Vec<String> =
            validator.iter_errors(detail).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        match errors.is_empty() {
            true => Ok(()),
            false => Err(format!("{detail_type} {detail}: {}", errors.join("; "))),
        }
    }
}

/// Checks each announcement against its schema, records what does not conform, and publishes
/// everything through `inner` regardless (the flow under test goes on as it would).
pub struct ConformingPublisher {
    pub inner: Arc<dyn EventPublisher>,
    pub violations: Arc<Mutex<Vec<String>>>,
}

impl EventPublisher for ConformingPublisher {
    fn publish_all<'a>(&'a self, announcements: &'a [Announcement]) -> PublishAllFuture<'a> {
        let schemas = EventSchemas::published();
        for announcement in announcements {
            let detail: Value = serde_json::from_str(&announcement.detail_json()).expect("a detail is JSON");
            if let Err(violation) = schemas.check(announcement.detail_type(), &detail) {
                tracing::error!(%violation, "the event breaks its schema in docs/events");
                let mut violations = self.violations.lock().expect("not poisoned");
                // A test fails at the first; the local stack keeps a few for its test to assert.
                if violations.len() < 100 {
                    violations.push(violation);
                }
            }
        }
        self.inner.publish_all(announcements)
    }
}
