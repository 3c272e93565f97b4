//! Operational settings kept as data in the table, so operations change them without a deploy.

use super::{keys, to_item, Store, StoreError};
use crate::domain::HoldPolicy;

impl Store {
    /// The stored hold policy, if operations saved one.
    pub async fn hold_policy(&self) -> Result<Option<HoldPolicy>, StoreError> {
        let (pk, sk) = keys::hold_policy();
        self.get(pk, sk, "hold policy").await
    }

    pub async fn put_hold_policy(&self, policy: &HoldPolicy) -> Result<(), StoreError> {
        let (pk, sk) = keys::hold_policy();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(policy, pk, sk, "HoldPolicy")))
            .send()
            .await
            .map_err(StoreError::aws)?;
        Ok(())
    }
}
