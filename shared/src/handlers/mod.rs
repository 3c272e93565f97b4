//! One module per Lambda function. Each exposes a `Deps` struct (its clients and settings,
//! built once at cold start) and a `handle` function the thin `main.rs` wraps in `service_fn`.

pub mod order_intake;
pub mod staff_api;
pub mod stock_reservation;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::events::{EventBridgePublisher, EventPublisher};
use crate::store::Store;
use std::sync::Arc;

/// What every function needs: the table, the bus and the time.
#[derive(Clone)]
pub struct Common {
    pub store: Store,
    pub events: Arc<dyn EventPublisher>,
    pub clock: Arc<dyn Clock>,
}

impl Common {
    /// Clients from the standard AWS configuration chain (region, credentials and
    /// `AWS_ENDPOINT_URL`), for the table and bus named in `config`.
    pub async fn from_aws(config: &Config) -> Self {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(
            aws_sdk_dynamodb::Client::new(&aws),
            aws_sdk_eventbridge::Client::new(&aws),
            config,
            Arc::new(SystemClock),
        )
    }

    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        eventbridge: aws_sdk_eventbridge::Client,
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store: Store::new(dynamodb, &config.table_name, config.expiry_buckets),
            events: Arc::new(EventBridgePublisher::new(eventbridge, &config.event_bus_name)),
            clock,
        }
    }
}
