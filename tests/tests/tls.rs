//! Outbound TLS (shared/src/tls.rs): trust comes from the public roots compiled in, so an endpoint
//! whose certificate no public root signed is refused at the handshake, by the outside parties'
//! client and by the AWS SDK's shared client alike; a client that does trust the certificate gets
//! through the same server, so the refusal is about trust, not a broken server.

use orderflow::outbound::{JsonApi, OutboundError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A TLS server on loopback with a self-signed certificate for `localhost`, answering 200 to
/// whatever gets through, counting the connections it accepted and the handshakes completed.
struct UntrustedServer {
    port: u16,
    certificate: rustls::pki_types::CertificateDer<'static>,
    accepted: Arc<AtomicUsize>,
    completed: Arc<AtomicUsize>,
    settled: Arc<AtomicUsize>,
}

impl UntrustedServer {
    async fn start() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
        let certificate = certified.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![certificate.clone()], key)
            .expect("server configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let port = listener.local_addr().expect("address").port();
        let server =
            Self { port, certificate, accepted: Arc::default(), completed: Arc::default(), settled: Arc::default() };
        let (accepted, completed, settled) =
            (server.accepted.clone(), server.completed.clone(), server.settled.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let (acceptor, completed, settled) = (acceptor.clone(), completed.clone(), settled.clone());
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        completed.fetch_add(1, Ordering::SeqCst);
                        answer_ok(&mut tls).await;
                    }
                    settled.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        server
    }

    /// (accepted, completed), once every accepted connection's handshake has ended one way or
    /// the other.
    async fn handshakes(&self) -> (usize, usize) {
        for _ in 0..200 {
            if self.settled.load(Ordering::SeqCst) == self.accepted.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (self.accepted.load(Ordering::SeqCst), self.completed.load(Ordering::SeqCst))
    }
}

/// A DynamoDB client on the harness's emulator configuration (the shared HTTP client) for
/// `endpoint`, without retries, and with `connect_timeout` when given.
async fn dynamodb_trying_once(endpoint: &str, connect_timeout: Option<Duration>) -> aws_sdk_dynamodb::Client {
    let config = orderflow_tests::emulators::sdk_config(endpoint).await;
    let mut builder =
        aws_sdk_dynamodb::config::Builder::from(&config).retry_config(aws_config::retry::RetryConfig::disabled());
    if let Some(limit) = connect_timeout {
        builder = builder.timeout_config(aws_config::timeout::TimeoutConfig::builder().connect_timeout(limit).build());
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

async fn answer_ok(tls: &mut tokio_rustls::server::TlsStream<tokio::net::TcpStream>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = [0u8; 4096];
    let _ = tls.read(&mut request).await;
    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}").await;
    let _ = tls.shutdown().await;
}

#[tokio::test]
async fn an_outside_party_whose_certificate_no_public_root_signed_is_refused_at_the_handshake() {
    let server = UntrustedServer::start().await;
    let api = JsonApi::new(format!("https://localhost:{}", server.port));

    let outcome = api.call(hyper::Method::GET, "/ping", None).await;

    assert!(matches!(outcome, Err(OutboundError::Unavailable(_))), "{outcome:?}");
    assert_eq!(server.handshakes().await, (1, 0), "one connection, its handshake refused");
}

#[tokio::test]
async fn the_sdk_client_refuses_an_endpoint_whose_certificate_no_public_root_signed() {
    use aws_sdk_dynamodb::error::SdkError;
    let server = UntrustedServer::start().await;
    let dynamodb = dynamodb_trying_once(&format!("https://localhost:{}", server.port), None).await;

    let outcome = dynamodb.list_tables().send().await;

    let error = outcome.expect_err("an untrusted endpoint answers nothing");
    assert!(matches!(error, SdkError::DispatchFailure(_)), "{error:?}");
    assert_eq!(server.handshakes().await, (1, 0), "one connection, its handshake refused");
}

#[tokio::test]
async fn a_client_that_trusts_the_certificate_gets_through_the_same_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = UntrustedServer::start().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.certificate.clone()).expect("the server's certificate as a root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("handshake");
    tls.write_all(b"GET /ping HTTP/1.1\r\nhost: localhost\r\n\r\n").await.expect("request");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;

    assert!(answer.starts_with(b"HTTP/1.1 200 OK"), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(server.handshakes().await, (1, 1));
}

#[tokio::test]
async fn a_handshake_that_stalls_fails_as_a_timeout_within_the_sdk_connect_limit() {
    use aws_sdk_dynamodb::error::SdkError;
    // Accepts connections and never answers: TCP connects at once, the TLS handshake stalls.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let dynamodb = dynamodb_trying_once(&format!("https://localhost:{port}"), Some(Duration::from_millis(300))).await;

    let call = dynamodb.list_tables().send();
    let outcome = tokio::time::timeout(Duration::from_secs(3), call).await.expect("the connect limit, not a hang");

    let error = outcome.expect_err("nothing ever answers");
    let SdkError::DispatchFailure(failure) = &error else { panic!("{error:?}") };
    assert!(failure.is_timeout(), "{error:?}");
    held.abort();
}
