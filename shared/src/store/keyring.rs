//! Deployment-wide keys kept wrapped in the table (`CONFIG/FINGERPRINT_KEY`): stored once by
//! whichever instance needs one first, never replaced.

use super::{keys, s, Store, StoreError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

const FINGERPRINT_KEY: &str = "FINGERPRINT_KEY";

impl Store {
    /// The fingerprint key as the KMS key wrapped it, if one was stored.
    pub async fn fingerprint_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let item = self.raw_item(keys::CONFIG_PARTITION.to_owned(), FINGERPRINT_KEY.to_owned()).await?;
        let Some(item) = item else { return Ok(None) };
        let wrapped = item.get("wrapped").and_then(|v| v.as_s().ok()).ok_or_else(|| corrupt("no wrapped key"))?;
        BASE64.decode(wrapped).map(Some).map_err(|_| corrupt("the wrapped key is not base64"))
    }

    /// Store `wrapped` as the fingerprint key unless one is stored already: `None` when it was
    /// stored, else the key stored first.
    pub async fn keep_fingerprint_key(&self, wrapped: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let put = (self.client.put_item())
            .table_name(&self.table)
            .item("PK", s(keys::CONFIG_PARTITION))
            .item("SK", s(FINGERPRINT_KEY))
            .item("entity", s("FingerprintKey"))
            .item("wrapped", s(BASE64.encode(wrapped)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(None),
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => {
                    self.fingerprint_key().await?.map(Some).ok_or_else(|| corrupt("the stored key vanished"))
                }
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string())),
            },
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt("fingerprint key".to_owned(), what.to_owned())
}
