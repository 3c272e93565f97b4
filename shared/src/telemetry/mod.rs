//! What the functions tell operators: structured JSON logs for CloudWatch, one line per event,
//! level from `RUST_LOG`; and business [`metrics`] in Embedded Metric Format.

pub mod metrics;

pub fn init_json_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line already
        .with_target(false)
        .try_init();
}
