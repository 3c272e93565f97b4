//! The TLS set-up of every outbound connection a function makes: the AWS SDK's (through
//! [`crate::aws`]) and the outside parties' (through [`crate::outbound`]). One rustls
//! configuration per process, built at first use and shared.
//!
//! Why Mozilla's roots compiled in (webpki-roots) rather than the system's: reading and parsing
//! the system bundle (~150 PEM certificates, base64 and DER) was 84% of the instructions of a
//! function's cold start with the SDK's default client, which did it again for every client it
//! built. Compiled-in roots cost nothing to load. The price is that trust follows this crate's
//! release rather than the OS image, and a private CA (a TLS-inspecting proxy) is not trusted;
//! AWS endpoints and public HTTPS APIs chain to Mozilla's roots.
//!
//! Why ring rather than aws-lc-rs: the same TLS for a smaller package (the 3 MB budget).

use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

/// The process's rustls client configuration: TLS 1.2 and 1.3, Mozilla's roots.
static CLIENT_CONFIG: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
});

/// What every outbound pool connects with: HTTPS, or plain HTTP (the local stack's emulators
/// on loopback), HTTP/1.1; `limit` bounds the whole of opening a connection (name lookup, TCP,
/// TLS handshake), as the SDK's connect timeout does, so a stalled handshake fails as a timeout
/// the caller can retry instead of holding the invocation until Lambda's own deadline.
pub fn connector(limit: Option<Duration>) -> Connector {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((**CLIENT_CONFIG).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Connector { https, limit }
}

/// A connection pool over [`connector`] for bodies of type `B`, whose idle connections are
/// closed after the pool's idle timeout (the timer is what lets it keep time).
pub fn pool<B>(limit: Option<Duration>) -> hyper_util::client::legacy::Client<Connector, B>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let mut builder = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
    builder.pool_timer(hyper_util::rt::TokioTimer::new());
    builder.build(connector(limit))
}

/// See [`connector`]: hyper-rustls's connector with the limit around the whole of connecting.
#[derive(Clone, Debug)]
pub struct Connector {
    https: HttpsConnector<HttpConnector>,
    limit: Option<Duration>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.https.poll_ready(cx)
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let connecting = self.https.call(uri);
        let limit = self.limit;
        Box::pin(async move {
            let Some(limit) = limit else { return connecting.await };
            match tokio::time::timeout(limit, connecting).await {
                Ok(connected) => connected,
                Err(_) => {
                    Err(io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {limit:?}")).into())
                }
            }
        })
    }
}
