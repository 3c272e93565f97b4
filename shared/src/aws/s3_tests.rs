//! The signatures against the examples AWS publishes for S3 (so they agree with S3, not only with
//! themselves), the addressing, and what a HeadObject makes of the answers a loopback server gives.

use super::*;
use crate::aws::loopback::{self, served, Answer, Sent};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// AWS's example account and its example bucket, at its example time (2013-05-24T00:00:00Z).
fn example_bucket(token: Option<&str>) -> (S3Bucket, Identity, SystemTime) {
    let credentials = Credentials::new(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        token.map(str::to_owned),
        None,
        "example",
    );
    let provider = SharedCredentialsProvider::new(credentials.clone());
    let bucket =
        S3Bucket::at("https://examplebucket.s3.amazonaws.com".into(), Signer::new("us-east-1".into(), "s3", provider));
    (bucket, credentials.into(), SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600))
}

#[test]
fn a_presigned_url_carries_the_signature_aws_documents_for_its_example() {
    let (bucket, identity, now) = example_bucket(None);
    let get = Unsigned::new("GET", "test.txt", &[]);
    let request = bucket.sign_in_query(get, Duration::from_secs(86_400), &identity, now).unwrap();
    let url = request.uri().to_string();
    assert!(url.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"), "{url}");
    assert!(url.contains("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"), "{url}");
    assert!(url.contains("X-Amz-Expires=86400&"), "{url}");
    assert!(url.contains("X-Amz-SignedHeaders=host&"), "{url}");
    assert!(url.contains("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"), "{url}");
}

#[test]
fn a_header_signed_request_carries_the_signature_aws_documents_for_its_example() {
    let (bucket, identity, now) = example_bucket(None);
    let range = [("range", "bytes=0-9")];
    let request = bucket.sign_in_headers(Unsigned::new("GET", "test.txt", &range), &identity, now).unwrap();
    let header = |name: &str| request.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let authorization = header("authorization").expect("an authorization header");
    assert!(authorization.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"), "{authorization}");
    assert!(
        authorization.ends_with("Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        "{authorization}"
    );
    assert_eq!(header("x-amz-date").as_deref(), Some("20130524T000000Z"));
    // The hash of the empty payload, which S3 requires a header-signed request to state.
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(header("x-amz-content-sha256").as_deref(), Some(empty));
}

#[tokio::test]
async fn an_upload_url_signs_its_content_type_and_the_session_token() {
    let (bucket, ..) = example_bucket(Some("session/token+1"));
    let put = bucket.presign_put("dispatch/01J.photo", "image/jpeg", Duration::from_secs(900)).await.unwrap();
    assert!(put.url.starts_with("https://examplebucket.s3.amazonaws.com/dispatch/01J.photo?"), "{}", put.url);
    assert!(put.url.contains("X-Amz-SignedHeaders=content-type%3Bhost&"), "{}", put.url);
    assert!(put.url.contains("X-Amz-Security-Token=session%2Ftoken%2B1"), "{}", put.url);
    assert!(put.url.contains("X-Amz-Expires=900&"), "{}", put.url);
    assert_eq!(put.headers, vec![("content-type".to_owned(), "image/jpeg".to_owned())]);
}

#[test]
fn an_endpoint_override_addresses_the_bucket_in_the_path() {
    let base = bucket_base(Some("http://127.0.0.1:4566/"), "eu-west-1", "photos");
    assert_eq!(base, "http://127.0.0.1:4566/photos");
}

#[test]
fn on_aws_a_dns_safe_bucket_is_its_own_host_and_a_dotted_one_is_in_the_path() {
    assert_eq!(
        bucket_base(None, "eu-west-1", "stack-photos-1a2b"),
        "https://stack-photos-1a2b.s3.eu-west-1.amazonaws.com"
    );
    assert_eq!(bucket_base(None, "eu-west-1", "shop.photos"), "https://s3.eu-west-1.amazonaws.com/shop.photos");
    assert_eq!(bucket_base(None, "cn-north-1", "photos"), "https://photos.s3.cn-north-1.amazonaws.com.cn");
}

#[test]
fn a_key_is_escaped_in_the_path_except_its_slashes() {
    let (bucket, ..) = example_bucket(None);
    assert_eq!(
        bucket.object_url("aftersales/01J/a b$ü~.photo"),
        "https://examplebucket.s3.amazonaws.com/aftersales/01J/a%20b%24%C3%BC~.photo"
    );
}

/// A loopback server answering each HEAD with the next of `statuses`, as S3 answers for an object.
async fn answering(statuses: &'static [u16]) -> (String, Sent) {
    let headers = "content-type: image/png\r\ncontent-length: 2048\r\netag: \"e1\"";
    let answers = statuses.iter().map(|status| Answer { status: *status, headers, body: "" }).collect();
    loopback::serving(answers).await
}

fn bucket_at(endpoint: &str) -> (S3Bucket, Arc<AtomicU32>) {
    let token = Some("lambda-session-token".to_owned());
    let credentials = SharedCredentialsProvider::new(Credentials::new("AKIDTEST", "secret", token, None, "test"));
    let reported = Arc::new(AtomicU32::new(0));
    let count = reported.clone();
    let signer = Signer::new("eu-west-1".into(), "s3", credentials);
    let bucket =
        S3Bucket::at(bucket_base(Some(endpoint), "eu-west-1", "photos"), signer).observed(Arc::new(move |operation| {
            assert_eq!(operation, "HeadObject");
            count.fetch_add(1, Ordering::SeqCst);
        }));
    (bucket, reported)
}

#[tokio::test]
async fn head_reads_the_type_size_and_etag_of_an_object() {
    let (endpoint, heads) = answering(&[200]).await;
    let (bucket, reported) = bucket_at(&endpoint);
    let head = bucket.head("dispatch/1.photo").await.unwrap();
    let expected =
        ObjectHead { content_type: Some("image/png".into()), content_length: Some(2048), e_tag: Some("\"e1\"".into()) };
    assert_eq!(head, expected);
    assert_eq!((served(&heads), reported.load(Ordering::SeqCst)), (1, 1));
    // Signed as S3 requires, for the host it was sent to, with Lambda's session token.
    let sent = heads.lock().unwrap()[0].head.clone();
    let host = endpoint.trim_start_matches("http://");
    assert!(sent.starts_with("head /photos/dispatch/1.photo http/1.1\r\n"), "{sent}");
    assert!(sent.contains(&format!("\r\nhost: {host}\r\n")), "{sent}");
    assert!(sent.contains("\r\nx-amz-security-token: lambda-session-token\r\n"), "{sent}");
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert!(sent.contains(&format!("\r\nx-amz-content-sha256: {empty}\r\n")), "{sent}");
    assert!(sent.contains("\r\nauthorization: aws4-hmac-sha256 credential=akidtest/"), "{sent}");
    assert!(sent.contains("/eu-west-1/s3/aws4_request"), "{sent}");
    assert!(sent.contains("signedheaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token"), "{sent}");
}

#[tokio::test]
async fn a_missing_object_is_not_found_and_not_asked_again() {
    let (endpoint, heads) = answering(&[404]).await;
    let (bucket, _) = bucket_at(&endpoint);
    assert!(matches!(bucket.head("dispatch/1.photo").await, Err(S3Error::NotFound)));
    assert_eq!(served(&heads), 1);
}

#[tokio::test]
async fn a_store_that_is_briefly_unavailable_is_asked_again() {
    let (endpoint, heads) = answering(&[503, 500, 200]).await;
    let (bucket, reported) = bucket_at(&endpoint);
    assert!(bucket.head("dispatch/1.photo").await.is_ok());
    assert_eq!((served(&heads), reported.load(Ordering::SeqCst)), (3, 3));
}

#[tokio::test]
async fn a_refusal_is_reported_at_once_and_an_outage_after_three_attempts() {
    let (endpoint, heads) = answering(&[403]).await;
    let (bucket, _) = bucket_at(&endpoint);
    assert!(matches!(bucket.head("k").await, Err(S3Error::Refused(403))));
    assert_eq!(served(&heads), 1);

    let (endpoint, heads) = answering(&[503]).await;
    let (bucket, _) = bucket_at(&endpoint);
    assert!(matches!(bucket.head("k").await, Err(S3Error::Unavailable(_))));
    assert_eq!(served(&heads), signing::ATTEMPTS);
}
