//! What the KMS vault asks of KMS (operation, protocol, key, purpose, blobs in base64) and what it
//! makes of the answers, against a loopback server standing in for KMS.

use super::*;
use crate::aws::loopback::{self, Answer, Sent};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;

const SEVENS: [u8; 32] = [7; 32];

fn answer(body: &'static str) -> Answer {
    Answer { status: 200, headers: "content-type: application/x-amz-json-1.1", body }
}

/// A vault of `purpose` on a KMS that answers with `answers`, configured as a function is.
async fn vault_answering(answers: Vec<Answer>, purpose: Purpose) -> (KmsVault, Sent) {
    let (endpoint, sent) = loopback::serving(answers).await;
    let credentials = Credentials::new("AKIDTEST", "secret", None, None, "test");
    let aws = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    (KmsVault::new(JsonService::kms(&aws).unwrap(), "k-1", purpose), sent)
}

fn request(sent: &Sent) -> (String, serde_json::Value) {
    let received = sent.lock().unwrap()[0].clone();
    (received.head, serde_json::from_str(&received.body).unwrap())
}

#[tokio::test]
async fn a_data_key_is_asked_of_kms_for_the_vaults_purpose_and_read_from_base64() {
    let generated = r#"{"CiphertextBlob":"d3JhcHBlZA==","Plaintext":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=","KeyId":"arn:k-1"}"#;
    let (vault, sent) = vault_answering(vec![answer(generated)], Purpose::Notification).await;
    let key = vault.new_data_key().await.unwrap();
    assert_eq!((key.plaintext, key.wrapped.as_slice()), (SEVENS, b"wrapped".as_slice()));
    let (head, body) = request(&sent);
    assert!(head.starts_with("post / http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nx-amz-target: trentservice.generatedatakey\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-type: application/x-amz-json-1.1\r\n"), "{head}");
    assert!(head.contains("/eu-west-1/kms/aws4_request"), "{head}");
    let context = serde_json::json!({ "purpose": "orderflow-notification" });
    assert_eq!(body, serde_json::json!({ "KeyId": "k-1", "KeySpec": "AES_256", "EncryptionContext": context }));
}

#[tokio::test]
async fn a_wrapped_key_goes_to_kms_in_base64_with_the_vaults_purpose() {
    let decrypted = r#"{"Plaintext":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=","KeyId":"arn:k-1"}"#;
    let (vault, sent) = vault_answering(vec![answer(decrypted)], Purpose::PersonalData).await;
    assert_eq!(vault.unwrap_key(b"wrapped").await.unwrap(), SEVENS);
    let (head, body) = request(&sent);
    assert!(head.contains("\r\nx-amz-target: trentservice.decrypt\r\n"), "{head}");
    let context = serde_json::json!({ "purpose": "orderflow-personal-data" });
    assert_eq!(
        body,
        serde_json::json!({ "KeyId": "k-1", "CiphertextBlob": "d3JhcHBlZA==", "EncryptionContext": context })
    );
}

#[tokio::test]
async fn a_key_of_the_wrong_size_is_corrupt_and_one_not_in_base64_is_not_taken() {
    let short = r#"{"Plaintext":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw=="}"#;
    let (vault, _) = vault_answering(vec![answer(short)], Purpose::PersonalData).await;
    assert!(matches!(vault.unwrap_key(b"wrapped").await, Err(VaultError::Corrupt(_))));

    let garbled = r#"{"Plaintext":"not base64!","CiphertextBlob":"d3JhcHBlZA=="}"#;
    let (vault, _) = vault_answering(vec![answer(garbled)], Purpose::PersonalData).await;
    assert!(matches!(vault.new_data_key().await, Err(VaultError::Unavailable(why)) if why.contains("not base64")));
}
