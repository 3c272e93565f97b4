//! The HTTP client every AWS SDK client of a process shares: hyper over [`crate::tls`], one
//! connection pool per distinct timeout setting (in practice one), built once.
//!
//! The SDK's own default client builds a TLS context from the system's roots for every SDK
//! client at construction and again at its first request; this one builds nothing per client.
//! Errors are sorted the way the SDK's retry policy expects: timeouts and I/O failures
//! (connection refused or reset, a pooled connection the far end closed) are transient and
//! retried; anything else is reported as it is.

use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::connect::{capture_connection, CaptureConnection};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

type Pool = hyper_util::client::legacy::Client<crate::tls::Connector, SdkBody>;

/// The connect and read timeouts a connector applies: the SDK asks for a connector per setting.
type Timeouts = (Option<Duration>, Option<Duration>);

/// A new shared client (a function builds one, through [`super::config`]).
pub fn shared() -> SharedHttpClient {
    SharedHttpClient::new(SdkHttpClient::default())
}

#[derive(Debug, Default)]
struct SdkHttpClient {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl HttpClient for SdkHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        connectors.entry(timeouts).or_insert_with(|| SharedHttpConnector::new(Connector::new(timeouts))).clone()
    }
}

#[derive(Debug, Clone)]
struct Connector {
    pool: Pool,
    read_timeout: Option<Duration>,
}

impl Connector {
    fn new((connect_timeout, read_timeout): Timeouts) -> Self {
        Self { pool: crate::tls::pool(connect_timeout), read_timeout }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(ConnectorError::user(err.into()))),
        };
        let connection = capture_connection(&mut request);
        if let Some(capture) = request.extensions().get::<CaptureSmithyConnection>() {
            capture.set_connection_retriever(move || poisonable(&connection));
        }
        let response = self.pool.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            // The read timeout, as the SDK defines it: until the response's head arrives.
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, response)
                    .await
                    .map_err(|_| ConnectorError::timeout(format!("no response within {limit:?}").into()))?,
                None => response.await,
            };
            let response = response.map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|err| ConnectorError::other(err.into(), None))
        })
    }
}

/// The connection a request went out on, for the SDK to close after a transient failure (its
/// retry then opens a fresh one instead of reusing a connection to a host that just failed).
fn poisonable(connection: &CaptureConnection) -> Option<ConnectionMetadata> {
    connection.connection_metadata().as_ref()?;
    let connection = connection.clone();
    let poison = move || {
        if let Some(connected) = connection.connection_metadata().as_ref() {
            connected.poison();
        }
    };
    Some(ConnectionMetadata::builder().proxied(false).poison_fn(poison).build())
}

/// How the SDK should treat a failed request: see the module's opening.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::TimedOut => ConnectorError::timeout(err.into()),
                _ => ConnectorError::io(err.into()),
            };
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            if hyper.is_timeout() {
                return ConnectorError::timeout(err.into());
            }
            if hyper.is_closed() || hyper.is_canceled() || hyper.is_incomplete_message() {
                return ConnectorError::io(err.into());
            }
            if hyper.is_user() {
                return ConnectorError::user(err.into());
            }
        }
        source = cause.source();
    }
    if err.is_connect() {
        return ConnectorError::io(err.into());
    }
    ConnectorError::other(err.into(), None)
}
