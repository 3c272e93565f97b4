//! Calls to outside parties' HTTP APIs (the courier gateway, the payment provider): JSON over
//! HTTPS (plain HTTP on loopback for the local stack), an `Idempotency-Key` on every write so a
//! retried call is the same call at the other end, a five-second limit, and answers sorted into
//! "refused" (the party said no: retrying the same call will not help) and "unavailable" (no
//! answer, a 5xx, or a 4xx that says "not now": 408, 409 (the same key in flight), 425, 429, and
//! 401/403 (our credentials): retry the same call, with the same key).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The party answered no (a 4xx other than those worth retrying), with its answer's start.
    #[error("refused with {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("unavailable: {0}")]
    Unavailable(String),
}

type Client = hyper_util::client::legacy::Client<crate::tls::Connector, Full<Bytes>>;

/// One outside party's API at `base`.
#[derive(Clone)]
pub struct JsonApi {
    base: String,
    client: Client,
}

impl JsonApi {
    /// A client for the API at `base` (https, or http on loopback for the local stack).
    pub fn new(base: impl Into<String>) -> Self {
        // No separate connect limit: the call's five seconds include connecting.
        let https = crate::tls::connector(None);
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Self { base: base.into().trim_end_matches('/').to_owned(), client }
    }

    /// One call: the successful answer's body, or why not. `body` is the JSON to send and the
    /// idempotency key that names it.
    pub async fn call(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<(Vec<u8>, String)>,
    ) -> Result<Bytes, OutboundError> {
        let mut request = hyper::Request::builder().method(method).uri(format!("{}{path}", self.base));
        let payload = match body {
            Some((bytes, key)) => {
                request = request.header("content-type", "application/json").header("idempotency-key", key);
                bytes
            }
            None => Vec::new(),
        };
        let request =
            request.body(Full::new(Bytes::from(payload))).map_err(|e| OutboundError::Unavailable(e.to_string()))?;
        let call = self.client.request(request);
        let response = tokio::time::timeout(std::time::Duration::from_secs(5), call)
            .await
            .map_err(|_| OutboundError::Unavailable("timed out after 5 s".into()))?
            .map_err(|e| OutboundError::Unavailable(e.to_string()))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| OutboundError::Unavailable(e.to_string()))?;
        if status.is_success() {
            return Ok(bytes.to_bytes());
        }
        // Not a "no" to the request itself: a timeout, the same key still being worked on, a
        // rate limit, our credentials. The same call, later, may well succeed.
        let retry_later = [401, 403, 408, 409, 425, 429];
        if status.is_server_error() || retry_later.contains(&status.as_u16()) {
            return Err(OutboundError::Unavailable(format!("answered {status}")));
        }
        let text: String = String::from_utf8_lossy(&bytes.to_bytes()).chars().take(200).collect();
        Err(OutboundError::Refused { status: status.as_u16(), body: text })
    }

    /// [`JsonApi::call`] with the answer read as `T`; an answer that does not read is
    /// "unavailable" (the call may have been done: retry it with its key to learn the result).
    pub async fn call_for<T: serde::de::DeserializeOwned>(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<(Vec<u8>, String)>,
    ) -> Result<T, OutboundError> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| OutboundError::Unavailable(format!("unreadable answer: {e}")))
    }
}
