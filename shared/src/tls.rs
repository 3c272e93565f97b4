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

use std::sync::{Arc, LazyLock};

static CLIENT_CONFIG: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
});

/// The process's rustls client configuration: TLS 1.2 and 1.3, Mozilla's roots.
pub fn client_config() -> rustls::ClientConfig {
    (**CLIENT_CONFIG).clone()
}

/// A connector for HTTPS, or plain HTTP (the local stack's emulators on loopback), HTTP/1.1,
/// giving up on a connection that takes longer than `connect_timeout` to open.
pub fn https_or_http(
    connect_timeout: Option<std::time::Duration>,
) -> hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector> {
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(connect_timeout);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_config())
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp)
}
