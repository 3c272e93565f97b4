//! The key vault port: a fresh data key (its plaintext for this process, and the same key
//! wrapped by the KMS key, to store), and a wrapped key unwrapped. [`KmsVault`] is AWS KMS (or
//! LocalStack's, through `AWS_ENDPOINT_URL`).

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
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
    client: aws_sdk_kms::Client,
    key_id: String,
    purpose: Purpose,
}

impl KmsVault {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>, purpose: Purpose) -> Self {
        Self { client, key_id: key_id.into(), purpose }
    }
}

fn key_bytes(bytes: &[u8]) -> Result<[u8; 32], VaultError> {
    bytes.try_into().map_err(|_| VaultError::Corrupt(format!("a data key of {} bytes", bytes.len())))
}

impl KeyVault for KmsVault {
    fn new_data_key(&self) -> VaultFuture<'_, DataKey> {
        Box::pin(async move {
            let output = (self.client.generate_data_key())
                .key_id(&self.key_id)
                .key_spec(DataKeySpec::Aes256)
                .encryption_context("purpose", self.purpose.name())
                .send()
                .await
                .map_err(|e| VaultError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
            let plaintext = output.plaintext.ok_or_else(|| VaultError::Unavailable("no plaintext key".into()))?;
            let wrapped = output.ciphertext_blob.ok_or_else(|| VaultError::Unavailable("no wrapped key".into()))?;
            Ok(DataKey { plaintext: key_bytes(plaintext.as_ref())?, wrapped: wrapped.into_inner() })
        })
    }

    fn unwrap_key<'a>(&'a self, wrapped: &'a [u8]) -> VaultFuture<'a, [u8; 32]> {
        Box::pin(async move {
            let output = (self.client.decrypt())
                .key_id(&self.key_id)
                .ciphertext_blob(Blob::new(wrapped))
                .encryption_context("purpose", self.purpose.name())
                .send()
                .await
                .map_err(|e| VaultError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
            key_bytes(output.plaintext.ok_or_else(|| VaultError::Unavailable("no plaintext key".into()))?.as_ref())
        })
    }
}
