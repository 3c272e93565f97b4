//! The key vault port: a fresh data key (its plaintext for this process, and the same key
//! wrapped by the KMS key, to store), and a wrapped key unwrapped. [`KmsVault`] is AWS KMS (or
//! LocalStack's, through `AWS_ENDPOINT_URL`).

use crate::aws::json_service::JsonService;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::future::Future;
use std::pin::Pin;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("key vault: {0}")]
    Unavailable(String),
    #[error("sealed data does not open: {0}")]
    Corrupt(String),
}

pub type VaultFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, VaultError>> + Send + 'a>>;

/// A data key: 32 bytes for AES-256, and the same wrapped by the KMS key.
pub struct DataKey {
    pub plaintext: [u8; 32],
    pub wrapped: Vec<u8>,
}

pub trait KeyVault: Send + Sync {
    fn new_data_key(&self) -> VaultFuture<'_, DataKey>;
    fn unwrap_key<'a>(&'a self, wrapped: &'a [u8]) -> VaultFuture<'a, [u8; 32]>;
}

/// What a data key is for, named in every KMS call (the encryption context): a key wrapped for
/// one purpose does not unwrap for another, so the notification service, which may unwrap
/// notification keys, cannot open what is stored in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The personal fields of orders in the table.
    PersonalData,
    /// A phone in a message to the notification service.
    Notification,
    /// The deployment's fingerprint key.
    Fingerprint,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Self::PersonalData => "orderflow-personal-data",
            Self::Notification => "orderflow-notification",
            Self::Fingerprint => "orderflow-fingerprint",
        }
    }
}

pub struct KmsVault {
    kms: JsonService,
    key_id: String,
    purpose: Purpose,
}

impl KmsVault {
    pub fn new(kms: JsonService, key_id: impl Into<String>, purpose: Purpose) -> Self {
        Self { kms, key_id: key_id.into(), purpose }
    }

    /// The encryption context every call names: the key's purpose.
    fn context(&self) -> serde_json::Value {
        serde_json::json!({ "purpose": self.purpose.name() })
    }
}

/// What KMS answers GenerateDataKey and Decrypt with (blobs in base64), of what is used.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyOutput {
    plaintext: Option<String>,
    ciphertext_blob: Option<String>,
}

fn decoded(blob: Option<String>, what: &str) -> Result<Vec<u8>, VaultError> {
    let blob = blob.ok_or_else(|| VaultError::Unavailable(format!("no {what}")))?;
    BASE64.decode(blob).map_err(|_| VaultError::Unavailable(format!("{what} not base64")))
}

fn key_bytes(bytes: &[u8]) -> Result<[u8; 32], VaultError> {
    bytes.try_into().map_err(|_| VaultError::Corrupt(format!("a data key of {} bytes", bytes.len())))
}

impl KeyVault for KmsVault {
    fn new_data_key(&self) -> VaultFuture<'_, DataKey> {
        Box::pin(async move {
            let input = serde_json::json!({
                "KeyId": self.key_id,
                "KeySpec": "AES_256",
                "EncryptionContext": self.context(),
            });
            let output: KeyOutput = self.kms.call("GenerateDataKey", &input).await.map_err(unavailable)?;
            let plaintext = decoded(output.plaintext, "plaintext key")?;
            let wrapped = decoded(output.ciphertext_blob, "wrapped key")?;
            Ok(DataKey { plaintext: key_bytes(&plaintext)?, wrapped })
        })
    }

    fn unwrap_key<'a>(&'a self, wrapped: &'a [u8]) -> VaultFuture<'a, [u8; 32]> {
        Box::pin(async move {
            let input = serde_json::json!({
                "KeyId": self.key_id,
                "CiphertextBlob": BASE64.encode(wrapped),
                "EncryptionContext": self.context(),
            });
            let output: KeyOutput = self.kms.call("Decrypt", &input).await.map_err(unavailable)?;
            key_bytes(&decoded(output.plaintext, "plaintext key")?)
        })
    }
}

fn unavailable(error: crate::aws::json_service::ServiceError) -> VaultError {
    VaultError::Unavailable(error.to_string())
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod tests;
