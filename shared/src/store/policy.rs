//! Operational settings kept as data in the table, so operations change them without a deploy.

use super::{keys, Store, StoreError};
use crate::domain::HoldPolicy;
use time::OffsetDateTime;

impl Store {
    /// The stored hold policy, if operations saved one.
    pub async fn hold_policy(&self) -> Result<Option<HoldPolicy>, StoreError> {
        let (pk, sk) = keys::hold_policy();
        self.get(pk, sk, "hold policy").await
    }

    /// Save the hold policy, audited with the one it replaced.
    pub async fn save_hold_policy(
        &self,
        policy: &HoldPolicy,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let change = super::audit::Change { actor, action: "hold-policy.save", subject: "config/hold-policy", now };
        self.replace_audited(keys::hold_policy(), "HoldPolicy", policy, change).await
    }
}
