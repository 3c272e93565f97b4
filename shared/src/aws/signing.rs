//! What the AWS calls made without an SDK crate share ([`super::s3`], [`super::json_service`]):
//! SigV4 signing by `aws-sigv4` with the process's credentials, the regional endpoint, and a
//! transport whose calls run under common limits and retries.
//!
//! The limits: a connection opens within [`CONNECT_LIMIT`] and an attempt ends within
//! [`ATTEMPT_LIMIT`]; with [`ATTEMPTS`] and the pauses between them a call ends within ~6.4 s,
//! inside the functions' 10 s timeout, so an outage is answered as one (a 503) instead of the
//! invocation being killed (fetching credentials comes before, outside the limits: instant with
//! Lambda's environment credentials, and cached). An attempt that timed out may still have taken
//! effect: what is retried must be safe to repeat (reads, data keys, messages their consumer
//! deduplicates).

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub const CONNECT_LIMIT: Duration = Duration::from_secs(1);
pub const ATTEMPT_LIMIT: Duration = Duration::from_secs(2);
/// Attempts at a call that failed transiently (no answer, a 5xx, throttling, a request timeout),
/// as the SDK's standard retry policy makes.
pub const ATTEMPTS: u32 = 3;
/// Credentials that expire sooner than this are fetched again before signing.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);

/// Called with an operation's name (`HeadObject`, `SendMessage`) for each attempt that got an
/// answer: how the benchmarks count these calls, as they count the SDK clients' by an interceptor.
pub type CallHook = Arc<dyn Fn(&'static str) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("not configured: {0}")]
    Configuration(String),
    #[error("signing failed: {0}")]
    Failed(String),
}

/// Signs requests to one service (`s3`, `kms`, `sqs`) in one region.
#[derive(Clone, Debug)]
pub struct Signer {
    region: String,
    service: &'static str,
    credentials: SharedCredentialsProvider,
    /// The last credentials fetched: the SDK's configuration hands out its provider chain
    /// uncached (its clients cache in their identity cache), and a chain other than Lambda's
    /// environment may go over the network for each fetch.
    cached: Arc<Mutex<Option<Credentials>>>,
}

impl Signer {
    /// For `service` in the configuration's region, with its credentials.
    pub fn from_config(aws: &SdkConfig, service: &'static str) -> Result<Self, SigningError> {
        let region = aws.region().ok_or_else(|| SigningError::Configuration("no region".into()))?;
        let credentials =
            aws.credentials_provider().ok_or_else(|| SigningError::Configuration("no credentials provider".into()))?;
        Ok(Self::new(region.to_string(), service, credentials))
    }

    pub fn new(region: String, service: &'static str, credentials: SharedCredentialsProvider) -> Self {
        Self { region, service, credentials, cached: Arc::default() }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The credentials to sign with now: the cached ones while they are good for a while yet;
    /// fetched again when they are about to expire, and still used if that fetch fails before
    /// they have.
    pub async fn identity(&self) -> Result<Identity, SigningError> {
        let cached = self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let good_for = |c: &Credentials, margin| c.expiry().is_none_or(|at| at > SystemTime::now() + margin);
        if let Some(credentials) = cached.as_ref().filter(|c| good_for(c, CREDENTIALS_MARGIN)) {
            return Ok(credentials.clone().into());
        }
        let credentials = match self.credentials.provide_credentials().await {
            Ok(credentials) => credentials,
            Err(_) if cached.as_ref().is_some_and(|c| good_for(c, Duration::ZERO)) => {
                return Ok(cached.expect("checked just now").into())
            }
            Err(error) => return Err(SigningError::Configuration(error.to_string())),
        };
        *self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(credentials.clone());
        Ok(credentials.into())
    }

    /// Signs `request` as built (method, URL, headers) with `payload`, as `settings` say: the
    /// signature goes into its headers or its query string.
    pub fn sign<B>(
        &self,
        request: &mut hyper::Request<B>,
        payload: SignableBody<'_>,
        settings: SigningSettings,
        identity: &Identity,
        now: SystemTime,
    ) -> Result<(), SigningError> {
        let failed = |e: &dyn std::fmt::Display| SigningError::Failed(e.to_string());
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name(self.service)
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let url = request.uri().to_string();
        let headers: Vec<(String, String)> = (request.headers().iter())
            .map(|(name, value)| Ok((name.as_str().to_owned(), value.to_str()?.to_owned())))
            .collect::<Result<_, hyper::header::ToStrError>>()
            .map_err(|e| failed(&e))?;
        let headers = headers.iter().map(|(name, value)| (name.as_str(), value.as_str()));
        let signable =
            SignableRequest::new(request.method().as_str(), &url, headers, payload).map_err(|e| failed(&e))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| failed(&e))?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// The DNS suffix of a region's partition: China's regions have their own.
pub fn partition_domain(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// Where `service` is asked: the configuration's endpoint override (`AWS_ENDPOINT_URL`:
/// LocalStack) if it has one, else the service's regional endpoint.
pub fn service_endpoint(endpoint_override: Option<&str>, service: &str, region: &str) -> String {
    match endpoint_override {
        Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
        None => format!("https://{service}.{region}.{}", partition_domain(region)),
    }
}

type Pool = hyper_util::client::legacy::Client<crate::tls::Connector, Full<Bytes>>;

/// A service's signer with a connection pool and, for the benchmarks, a hook told of each call.
#[derive(Clone)]
pub struct Transport {
    pub signer: Signer,
    pool: Pool,
    on_call: Option<CallHook>,
}

impl Transport {
    pub fn new(signer: Signer) -> Self {
        Self { signer, pool: crate::tls::pool(Some(CONNECT_LIMIT)), on_call: None }
    }

    /// The same transport, each answered attempt reported to `hook`.
    pub fn observed(self, hook: CallHook) -> Self {
        Self { on_call: Some(hook), ..self }
    }

    /// One attempt at `operation`: `request` sent within [`ATTEMPT_LIMIT`] and its whole answer
    /// read (status, headers, body). Anything short of an answer is transient.
    pub async fn attempt(
        &self,
        operation: &'static str,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(hyper::http::response::Parts, Bytes), String> {
        let answer = async {
            let response = self.pool.request(request).await.map_err(|e| e.to_string())?;
            let (head, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>((head, body))
        };
        let answer = tokio::time::timeout(ATTEMPT_LIMIT, answer).await;
        let answer = answer.map_err(|_| format!("no answer within {ATTEMPT_LIMIT:?}"))??;
        if let Some(hook) = &self.on_call {
            hook(operation);
        }
        Ok(answer)
    }
}

/// How one attempt at a call went wrong, when it did.
pub enum Failure<E> {
    /// Worth another attempt: no answer, a 5xx, throttling, a request timeout.
    Transient(String),
    /// The answer stands.
    Final(E),
}

/// Up to [`ATTEMPTS`] of `attempt`, pausing 50–100 ms then 100–200 ms between them (the lower
/// half fixed, the upper jitter); after the last transient failure, `outage` of its description.
pub async fn with_retries<T, E, F, Fut>(mut attempt: F, outage: impl FnOnce(String) -> E) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure<E>>>,
{
    let mut last = String::from("no attempt made");
    for n in 0..ATTEMPTS {
        if n > 0 {
            let ceiling = 50 << n;
            tokio::time::sleep(Duration::from_millis(ceiling / 2 + crate::clock::jitter_below(ceiling / 2))).await;
        }
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(Failure::Final(error)) => return Err(error),
            Err(Failure::Transient(why)) => last = why,
        }
    }
    Err(outage(last))
}

#[cfg(test)]
#[path = "signing_tests.rs"]
mod tests;
