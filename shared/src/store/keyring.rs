//! Deployment-wide keys kept wrapped in the table (`CONFIG/FINGERPRINT_KEY`): stored once by
//! whichever instance needs one first, never replaced.

use super::{keys, s, Store, StoreError};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::collections::HashMap;

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
        let item = HashMap::from([
            ("PK".to_owned(), s(keys::CONFIG_PARTITION)),
            ("SK".to_owned(), s(FINGERPRINT_KEY)),
            ("entity".to_owned(), s("FingerprintKey")),
            ("wrapped".to_owned(), s(BASE64.encode(wrapped))),
        ]);
        if self.create(item).await? {
            return Ok(None);
        }
        self.fingerprint_key().await?.map(Some).ok_or_else(|| corrupt("the stored key vanished"))
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt("fingerprint key".to_owned(), what.to_owned())
}
