//! The project's published contracts, checked on everything the suite sees: the bus events'
//! JSON Schemas (docs/events, [`events`]) and the HTTP API's OpenAPI document
//! (docs/openapi.yaml, [`api`]).

pub mod api;
pub mod events;

pub use events::{events_dir, ConformingPublisher, EventSchemas};
