//! Orderflow's library: everything the Lambda functions share.
//!
//! - [`domain`]: validated value types, the order and its state machine, warehouse allocation.
//! - [`store`]: the DynamoDB single-table adapter (every state change a conditional write).
//! - [`events`]: domain events and the EventBridge publisher port.
//! - [`handlers`]: one module per function; each takes its dependencies explicitly so tests and
//!   the local stack call it directly.
//! - [`courier`], [`photos`], [`notify`], [`payment_provider`]: ports to couriers, to the
//!   dispatch-photo bucket, to the notification service and to the payment provider's refunds
//!   (the HTTP ones over [`outbound`]).
//! - [`auth`]: who is calling, from the claims API Gateway's JWT authorizer verified;
//!   [`access`]: the role matrix, which caller may call which route.
//! - [`personal`]: personal data sealed at rest (KMS envelope encryption, cached data keys).
//! - [`aws`]: the SDK configuration every AWS client is built from, loaded once per process;
//!   [`tls`]: the one TLS set-up of every outbound connection.
//! - [`http`], [`config`], [`clock`], [`telemetry`]: the plumbing around them.

pub mod access;
pub mod auth;
pub mod aws;
pub mod clock;
pub mod config;
pub mod courier;
pub mod domain;
pub mod events;
pub mod handlers;
pub mod http;
pub mod notify;
pub mod outbound;
pub mod payment_provider;
pub mod personal;
pub mod photos;
pub mod store;
pub mod telemetry;
pub mod tls;
