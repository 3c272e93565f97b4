//! Signing against AWS's published SigV4 test suite, the credentials cache, and an attempt's limit.

use super::*;
use crate::aws::loopback::{self, served, Answer};
use aws_credential_types::provider::future::ProvideCredentials as CredentialsFuture;
use std::sync::atomic::{AtomicU32, Ordering};

#[test]
fn a_request_is_signed_as_the_sigv4_test_suite_signs_post_vanilla() {
    // AWS's SigV4 test suite: `POST /` to example.amazonaws.com, service `service`, us-east-1,
    // 2015-08-30T12:36:00Z, with the default settings every JSON-protocol call signs with.
    let credentials =
        Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "example");
    let signer = Signer::new("us-east-1".into(), "service", SharedCredentialsProvider::new(credentials.clone()));
    let mut request = hyper::Request::post("https://example.amazonaws.com/").body(()).unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    let identity = credentials.into();
    signer.sign(&mut request, SignableBody::Bytes(b""), SigningSettings::default(), &identity, now).unwrap();
    let authorization = request.headers()["authorization"].to_str().unwrap();
    assert_eq!(
        authorization,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    );
}

/// A provider that counts its fetches and hands out credentials expiring `lifetime` from now
/// (already expired for a negative one); after its first fetch, it fails if `fails_later`.
#[derive(Debug)]
struct Counting {
    fetches: Arc<AtomicU32>,
    lifetime: Option<i64>,
    fails_later: bool,
}

impl ProvideCredentials for Counting {
    fn provide_credentials<'a>(&'a self) -> CredentialsFuture<'a>
    where
        Self: 'a,
    {
        if self.fetches.fetch_add(1, Ordering::SeqCst) > 0 && self.fails_later {
            let outage = aws_credential_types::provider::error::CredentialsError::not_loaded("metadata service down");
            return CredentialsFuture::ready(Err(outage));
        }
        let expiry = self.lifetime.map(|seconds| {
            let now = SystemTime::now();
            let offset = Duration::from_secs(seconds.unsigned_abs());
            if seconds < 0 {
                now - offset
            } else {
                now + offset
            }
        });
        CredentialsFuture::ready(Ok(Credentials::new("AKID", "secret", None, expiry, "counting")))
    }
}

async fn fetches_for_two_signatures(lifetime: Option<i64>) -> u32 {
    let fetches = Arc::new(AtomicU32::new(0));
    let provider = SharedCredentialsProvider::new(Counting { fetches: fetches.clone(), lifetime, fails_later: false });
    let signer = Signer::new("eu-west-1".into(), "kms", provider);
    signer.identity().await.unwrap();
    signer.clone().identity().await.unwrap();
    fetches.load(Ordering::SeqCst)
}

#[tokio::test]
async fn credentials_are_fetched_once_while_good_and_again_when_about_to_expire() {
    assert_eq!(fetches_for_two_signatures(None).await, 1, "credentials that do not expire");
    assert_eq!(fetches_for_two_signatures(Some(3600)).await, 1, "good for an hour");
    assert_eq!(fetches_for_two_signatures(Some(60)).await, 2, "a minute left");
}

/// Whether a second signature succeeds when fetching again fails, with credentials `lifetime`
/// seconds from expiry.
async fn second_signature_when_the_fetch_fails(lifetime: i64) -> bool {
    let fetches = Arc::new(AtomicU32::new(0));
    let provider = Counting { fetches: fetches.clone(), lifetime: Some(lifetime), fails_later: true };
    let signer = Signer::new("eu-west-1".into(), "kms", SharedCredentialsProvider::new(provider));
    signer.identity().await.unwrap();
    let second = signer.identity().await;
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "fetched again, being near or past expiry");
    second.is_ok()
}

#[tokio::test]
async fn credentials_near_expiry_are_still_used_when_a_fetch_fails_and_expired_ones_are_not() {
    assert!(second_signature_when_the_fetch_fails(60).await, "a minute left: the cached ones still sign");
    assert!(!second_signature_when_the_fetch_fails(-1).await, "expired: the failure is reported");
}

#[tokio::test]
async fn an_attempt_that_gets_no_answer_is_given_up_at_the_attempt_limit() {
    let (endpoint, sent) = loopback::serving(vec![Answer::SILENCE]).await;
    let credentials = SharedCredentialsProvider::new(Credentials::new("AKID", "secret", None, None, "test"));
    let transport = Transport::new(Signer::new("eu-west-1".into(), "sqs", credentials));
    let request = hyper::Request::post(format!("{endpoint}/")).body(Full::default()).unwrap();
    let started = std::time::Instant::now();
    let outcome = transport.attempt("SendMessage", request).await;
    assert!(outcome.is_err_and(|why| why.contains("no answer")));
    assert!(started.elapsed() >= ATTEMPT_LIMIT && started.elapsed() < ATTEMPT_LIMIT * 2, "{:?}", started.elapsed());
    assert_eq!(served(&sent), 1, "the request reached the server, which never answered");
}
