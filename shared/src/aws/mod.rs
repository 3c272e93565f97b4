//! The AWS SDK configuration a function builds its clients from: the standard chain (region,
//! credentials, `AWS_ENDPOINT_URL`, retry and timeout defaults) loaded once per process, with
//! one HTTP client shared by every SDK client ([`http_client`]).
//!
//! Cold start: loading the chain once instead of once per module, and an HTTP client that builds
//! no TLS context per SDK client, are what keep a function's init near a bare Lambda's
//! (docs/benchmarks.md, "Cold start").

pub mod http_client;
pub mod json_service;
pub mod s3;
pub mod signing;

#[cfg(test)]
pub(crate) mod loopback;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use tokio::sync::OnceCell;

static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();

/// The process's SDK configuration, loaded at the first call.
pub async fn config() -> SdkConfig {
    CONFIG.get_or_init(load).await.clone()
}

async fn load() -> SdkConfig {
    // Lambda hands a function its role's credentials in the environment, which the default
    // chain would pick first anyway; taking them directly skips building the chain's other
    // providers (an STS client among them, ~17% of a function's init instructions).
    let environment = EnvironmentVariableCredentialsProvider::new();
    match environment.provide_credentials().await {
        Ok(_) => loader().credentials_provider(environment).load().await,
        Err(_) => loader().load().await,
    }
}

/// The standard chain with the shared HTTP client: a start for configurations that set more
/// (the test harness's emulator endpoints and fixed credentials).
pub fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http_client::shared())
}
