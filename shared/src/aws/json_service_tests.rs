//! What a JSON-protocol call sends (target, content type, signature, body), and what it makes of
//! the answers a loopback server gives: output, refusals, throttling, outages.

use super::*;
use crate::aws::loopback::{self, served, Answer, Sent};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const SENT_MESSAGE: Answer = Answer { status: 200, headers: "", body: r#"{"MessageId":"m-1","MD5OfMessageBody":"x"}"# };

fn answer(status: u16, body: &'static str) -> Answer {
    Answer { status, headers: "content-type: application/x-amz-json-1.0", body }
}

fn lambda_credentials() -> Credentials {
    Credentials::new("AKIDTEST", "secret", Some("lambda-session-token".to_owned()), None, "test")
}

/// SQS at a loopback server answering with `answers`, and how many calls it reported.
async fn sqs_answering(answers: Vec<Answer>) -> (JsonService, Sent, Arc<AtomicU32>) {
    let (endpoint, sent) = loopback::serving(answers).await;
    let credentials = SharedCredentialsProvider::new(lambda_credentials());
    let reported = Arc::new(AtomicU32::new(0));
    let count = reported.clone();
    let service = JsonService::at(endpoint, SQS, Signer::new("eu-west-1".into(), "sqs", credentials)).observed(
        Arc::new(move |operation| {
            assert_eq!(operation, "SendMessage");
            count.fetch_add(1, Ordering::SeqCst);
        }),
    );
    (service, sent, reported)
}

#[derive(serde::Deserialize, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct SendMessageOutput {
    message_id: String,
}

async fn send(service: &JsonService) -> Result<SendMessageOutput, ServiceError> {
    let input = serde_json::json!({ "QueueUrl": "http://queue/q", "MessageBody": "{\"template\":\"t\"}" });
    service.call("SendMessage", &input).await
}

#[tokio::test]
async fn a_call_posts_its_input_named_by_its_target_and_signed_for_the_service() {
    let (service, sent, reported) = sqs_answering(vec![SENT_MESSAGE]).await;
    assert_eq!(send(&service).await.unwrap(), SendMessageOutput { message_id: "m-1".into() });
    assert_eq!((served(&sent), reported.load(Ordering::SeqCst)), (1, 1));
    let request = sent.lock().unwrap()[0].clone();
    let head = request.head;
    assert!(head.starts_with("post / http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-type: application/x-amz-json-1.0\r\n"), "{head}");
    assert!(head.contains("\r\nx-amz-target: amazonsqs.sendmessage\r\n"), "{head}");
    assert!(head.contains("\r\nx-amz-security-token: lambda-session-token\r\n"), "{head}");
    assert!(head.contains("\r\nauthorization: aws4-hmac-sha256 credential=akidtest/"), "{head}");
    assert!(head.contains("/eu-west-1/sqs/aws4_request"), "{head}");
    // The target and the content type are signed: a request retargeted in flight does not verify.
    let signed = "signedheaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target";
    assert!(head.contains(signed), "{head}");
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body, serde_json::json!({ "QueueUrl": "http://queue/q", "MessageBody": "{\"template\":\"t\"}" }));
    assert_eq!(authorization_of(&head), signed_again(&head, &request.body), "the body sent is the body signed");
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    let line = head.lines().find_map(|line| line.strip_prefix(&format!("{name}: ")));
    line.unwrap_or_else(|| panic!("no {name} in {head}"))
}

fn authorization_of(head: &str) -> String {
    header(head, "authorization").to_owned()
}

/// The authorization a SendMessage with the received content type and `body` gets when signed anew
/// for the received host at the received time: equal to the received one only if the body
/// signed was the body sent.
fn signed_again(head: &str, body: &str) -> String {
    let stamp = header(head, "x-amz-date");
    let number = |range: std::ops::Range<usize>| stamp[range].parse::<u32>().unwrap();
    let month = time::Month::try_from(number(4..6) as u8).unwrap();
    let date = time::Date::from_calendar_date(number(0..4) as i32, month, number(6..8) as u8).unwrap();
    let at = date.with_hms(number(9..11) as u8, number(11..13) as u8, number(13..15) as u8).unwrap().assume_utc();
    let mut request = hyper::Request::post(format!("http://{}/", header(head, "host")))
        .header("content-type", header(head, "content-type"))
        .header("x-amz-target", "AmazonSQS.SendMessage")
        .body(())
        .unwrap();
    let signer = Signer::new("eu-west-1".into(), "sqs", SharedCredentialsProvider::new(lambda_credentials()));
    let identity = lambda_credentials().into();
    let payload = SignableBody::Bytes(body.as_bytes());
    signer.sign(&mut request, payload, SigningSettings::default(), &identity, at.into()).unwrap();
    request.headers()["authorization"].to_str().unwrap().to_lowercase()
}

#[tokio::test]
async fn server_errors_and_throttling_are_asked_again() {
    let throttled = answer(400, r#"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"slow down"}"#);
    let (service, sent, reported) = sqs_answering(vec![answer(500, "{}"), throttled, SENT_MESSAGE]).await;
    assert!(send(&service).await.is_ok());
    assert_eq!((served(&sent), reported.load(Ordering::SeqCst)), (3, 3));
}

#[tokio::test]
async fn a_request_timeout_is_asked_again() {
    let timed_out = answer(400, r#"{"__type":"com.amazonaws.sqs#RequestTimeoutException","message":"late"}"#);
    let (service, sent, _) = sqs_answering(vec![timed_out, SENT_MESSAGE]).await;
    assert!(send(&service).await.is_ok());
    assert_eq!(served(&sent), 2);
}

#[tokio::test]
async fn a_refusal_is_reported_at_once_with_its_code_and_message() {
    let refusal = r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The queue q does not exist"}"#;
    let (service, sent, _) = sqs_answering(vec![answer(400, refusal)]).await;
    match send(&service).await {
        Err(ServiceError::Refused { operation, status, code, message }) => {
            assert_eq!((operation, status), ("SendMessage", 400));
            assert_eq!((code.as_str(), message.as_str()), ("QueueDoesNotExist", "The queue q does not exist"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(served(&sent), 1);
}

#[tokio::test]
async fn an_outage_is_reported_after_three_attempts() {
    let (service, sent, _) = sqs_answering(vec![answer(503, "")]).await;
    assert!(matches!(send(&service).await, Err(ServiceError::Unavailable(_))));
    assert_eq!(served(&sent), signing::ATTEMPTS);
}

#[tokio::test]
async fn an_answer_that_is_not_the_output_is_malformed_and_not_asked_again() {
    let (service, sent, _) = sqs_answering(vec![answer(200, "<html>")]).await;
    assert!(matches!(send(&service).await, Err(ServiceError::Malformed("SendMessage"))));
    assert_eq!(served(&sent), 1);
}

#[test]
fn the_error_code_is_read_from_the_header_first_without_its_namespace_or_suffix() {
    let mut headers = hyper::HeaderMap::new();
    let body = br#"{"__type":"com.amazonaws.kms#KMSInvalidStateException"}"#;
    assert_eq!(error_code(&headers, body), "KMSInvalidStateException");
    headers.insert("x-amzn-errortype", "ThrottlingException:http://internal.amazon.com/".parse().unwrap());
    assert_eq!(error_code(&headers, body), "ThrottlingException");
    assert_eq!(error_code(&hyper::HeaderMap::new(), b"not json"), "");
    let both = br#"{"code":"AccessDeniedException","__type":"com.amazonaws.kms#Other"}"#;
    assert_eq!(error_code(&hyper::HeaderMap::new(), both), "AccessDeniedException");
}

#[test]
fn a_service_is_asked_at_the_override_or_at_its_regional_endpoint() {
    assert_eq!(signing::service_endpoint(Some("http://127.0.0.1:4566/"), "kms", "eu-west-1"), "http://127.0.0.1:4566");
    assert_eq!(signing::service_endpoint(None, "sqs", "eu-west-1"), "https://sqs.eu-west-1.amazonaws.com");
    assert_eq!(signing::service_endpoint(None, "kms", "cn-north-1"), "https://kms.cn-north-1.amazonaws.com.cn");
}
