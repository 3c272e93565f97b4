//! AWS's JSON protocol (`POST /`, the operation named in `X-Amz-Target`, input and output as
//! JSON) for the services the functions call with a handful of operations each: KMS
//! (GenerateDataKey, Decrypt) and SQS (SendMessage). Signed, limited and retried as
//! [`super::signing`] says, over the shared TLS set-up.
//!
//! Why not the SDK crates: building an SDK client parses that crate's own copy of the endpoint
//! partition table and compiles its region regexes, whatever endpoint resolver is configured;
//! with DynamoDB, SQS and KMS clients that was half of order-intake's init instructions
//! (docs/benchmarks.md, "Cold start"). The two services here need none of the endpoint rules:
//! the override (`AWS_ENDPOINT_URL`: LocalStack) or `https://{service}.{region}.{domain}`. Not
//! supported, as nothing here needs them: a service-only override (`AWS_ENDPOINT_URL_SQS`), FIPS
//! or dual-stack endpoints.

use super::signing::{self, CallHook, Failure, Signer, SigningError, Transport};
use aws_config::SdkConfig;
use aws_sigv4::http_request::{SignableBody, SigningSettings};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::SystemTime;

/// Error codes worth another attempt although their status is a 4xx: throttling and request
/// timeouts (from the SDK's lists of throttling and transient codes).
const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "LimitExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
];

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The service answered, and said no: its error code (`NotFoundException`) and message.
    #[error("{operation} refused ({status}): {code}: {message}")]
    Refused { operation: &'static str, status: u16, code: String, message: String },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("{0} answered something that is not its output")]
    Malformed(&'static str),
    #[error("{0}'s input does not serialise")]
    Input(&'static str),
    #[error(transparent)]
    Signing(#[from] SigningError),
}

/// Which service, and how its protocol names things.
#[derive(Clone, Copy, Debug)]
struct Protocol {
    /// The signing name and the endpoint's first label.
    service: &'static str,
    /// What precedes the operation in `X-Amz-Target`.
    target_prefix: &'static str,
    content_type: &'static str,
}

const KMS: Protocol =
    Protocol { service: "kms", target_prefix: "TrentService", content_type: "application/x-amz-json-1.1" };
const SQS: Protocol =
    Protocol { service: "sqs", target_prefix: "AmazonSQS", content_type: "application/x-amz-json-1.0" };

/// One service's endpoint, signed for.
#[derive(Clone)]
pub struct JsonService {
    endpoint: String,
    protocol: Protocol,
    transport: Transport,
}

impl JsonService {
    /// KMS in the configuration's region, at its endpoint override if it has one.
    pub fn kms(aws: &SdkConfig) -> Result<Self, ServiceError> {
        Self::from_config(aws, KMS)
    }

    /// SQS in the configuration's region, at its endpoint override if it has one.
    pub fn sqs(aws: &SdkConfig) -> Result<Self, ServiceError> {
        Self::from_config(aws, SQS)
    }

    fn from_config(aws: &SdkConfig, protocol: Protocol) -> Result<Self, ServiceError> {
        let signer = Signer::from_config(aws, protocol.service)?;
        let endpoint = signing::service_endpoint(aws.endpoint_url(), protocol.service, signer.region());
        Ok(Self::at(endpoint, protocol, signer))
    }

    fn at(endpoint: String, protocol: Protocol, signer: Signer) -> Self {
        Self { endpoint, protocol, transport: Transport::new(signer) }
    }

    /// The same service, each call it makes reported to `hook`.
    pub fn observed(self, hook: CallHook) -> Self {
        Self { transport: self.transport.observed(hook), ..self }
    }

    /// `operation` with `input`, its output read as `O`.
    pub async fn call<I, O>(&self, operation: &'static str, input: &I) -> Result<O, ServiceError>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        let body = Bytes::from(serde_json::to_vec(input).map_err(|_| ServiceError::Input(operation))?);
        let answer = signing::with_retries(|| self.call_once(operation, body.clone()), ServiceError::Unavailable);
        serde_json::from_slice(&answer.await?).map_err(|_| ServiceError::Malformed(operation))
    }

    async fn call_once(&self, operation: &'static str, body: Bytes) -> Result<Bytes, Failure<ServiceError>> {
        let request = self.signed(operation, body).await.map_err(Failure::Final)?;
        let (head, body) = self.transport.attempt(operation, request).await.map_err(Failure::Transient)?;
        let status = head.status.as_u16();
        if status == 200 {
            return Ok(body);
        }
        let code = error_code(&head.headers, &body);
        if status >= 500 || status == 429 || TRANSIENT_CODES.contains(&code.as_str()) {
            return Err(Failure::Transient(format!("{operation} answered {status} {code}")));
        }
        let message = error_message(&body);
        Err(Failure::Final(ServiceError::Refused { operation, status, code, message }))
    }

    async fn signed(&self, operation: &str, body: Bytes) -> Result<hyper::Request<Full<Bytes>>, ServiceError> {
        let identity = self.transport.signer.identity().await?;
        let target = format!("{}.{operation}", self.protocol.target_prefix);
        let payload = body.clone();
        let mut request = hyper::Request::post(format!("{}/", self.endpoint))
            .header("content-type", self.protocol.content_type)
            .header("x-amz-target", target)
            .body(Full::new(body))
            .map_err(|e| SigningError::Failed(e.to_string()))?;
        let signable = SignableBody::Bytes(&payload);
        self.transport.signer.sign(&mut request, signable, SigningSettings::default(), &identity, SystemTime::now())?;
        Ok(request)
    }
}

/// The error's code as the JSON protocol gives it: the `X-Amzn-ErrorType` header, else the
/// body's `code`, else its `__type`; without a namespace (`com.amazonaws.kms#`) or a trailing `:…`.
fn error_code(headers: &hyper::HeaderMap, body: &[u8]) -> String {
    let from_header = headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let from_body = || {
        let body: serde_json::Value = serde_json::from_slice(body).ok()?;
        let code = body.get("code").or_else(|| body.get("__type"))?;
        code.as_str().map(str::to_owned)
    };
    let code = from_header.or_else(from_body).unwrap_or_default();
    let code = code.split(':').next().unwrap_or_default();
    code.rsplit('#').next().unwrap_or_default().to_owned()
}

fn error_message(body: &[u8]) -> String {
    let body: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = body.as_ref().and_then(|b| b.get("message").or_else(|| b.get("Message")));
    message.and_then(|m| m.as_str()).unwrap_or_default().to_owned()
}

#[cfg(test)]
#[path = "json_service_tests.rs"]
mod tests;
