//! The catalogue (`SKU#<sku>/CATALOGUE`) and the customer profiles staff keep
//! (`CUSTOMER#<id>/PROFILE`): versioned saves, each audited in the same transaction; and the
//! one read intake makes per order, which brings the risk context, every line's catalogue item
//! and the customer's profile in one `BatchGetItem`.

use super::risk::{RiskKeys, SeenCounters};
use super::verification::phone_codes_key;
use super::{from_item, keys, n, to_item, Store, StoreError};
use crate::domain::after_sales_policy::AfterSalesPolicy;
use crate::domain::risk::RiskContext;
use crate::domain::{CatalogueItem, CustomerId, CustomerProfile, Sku};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use time::OffsetDateTime;

/// What intake knows when it prices and scores an order.
#[derive(Debug, Clone)]
pub struct IntakeContext {
    pub risk: RiskContext,
    /// The counters `risk` rests on: the order's counter writes are conditional on them.
    pub seen: SeenCounters,
    pub catalogue: HashMap<Sku, CatalogueItem>,
    pub profile: Option<CustomerProfile>,
    /// Verification codes sent to the order's phone today.
    pub phone_codes_today: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Someone saved another version meanwhile.
    #[error("the current version is {current}")]
    VersionConflict { current: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// The risk context, the catalogue items of `skus`, the customer's profile and the codes
    /// sent to `phone` today, in one read.
    #[allow(clippy::too_many_arguments)]
    pub async fn intake_context(
        &self,
        at: RiskKeys<'_>,
        customer: &CustomerId,
        phone: &crate::personal::Fingerprint,
        skus: &[Sku],
        customer_windows: &BTreeSet<u32>,
        device_windows: &BTreeSet<u32>,
        now: OffsetDateTime,
    ) -> Result<IntakeContext, StoreError> {
        let mut wanted = self.risk_keys(&at, customer_windows, device_windows, now);
        wanted.extend(skus.iter().map(keys::catalogue));
        wanted.push(keys::customer_profile(customer));
        wanted.push(phone_codes_key(phone, now));
        let mut found = self.batch_get(&wanted, false).await?;
        let (risk, seen) = Self::risk_context_from(&found, &at, customer_windows, device_windows, now);
        let phone_codes_today = found
            .get(&phone_codes_key(phone, now))
            .and_then(|item| item.get("count"))
            .and_then(|count| count.as_n().ok())
            .and_then(|count| count.parse().ok())
            .unwrap_or(0);
        let mut catalogue = HashMap::new();
        for sku in skus {
            if let Some(item) = found.remove(&keys::catalogue(sku)) {
                catalogue.insert(sku.clone(), from_item(item, "catalogue item")?);
            }
        }
        let profile = found
            .remove(&keys::customer_profile(customer))
            .map(|item| from_item(item, "customer profile"))
            .transpose()?;
        Ok(IntakeContext { risk, seen, catalogue, profile, phone_codes_today })
    }

    pub async fn catalogue_item(&self, sku: &Sku) -> Result<Option<CatalogueItem>, StoreError> {
        let (pk, sk) = keys::catalogue(sku);
        self.get(pk, sk, "catalogue item").await
    }

    /// Save `item` as the version after `item.version`, if that is still the current one.
    pub async fn save_catalogue_item(
        &self,
        item: &CatalogueItem,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<CatalogueItem, SaveError> {
        let subject = format!("catalogue/{}", item.sku);
        self.save_next_version(keys::catalogue(&item.sku), item, actor, &subject, now).await
    }

    pub async fn customer_profile(&self, customer: &CustomerId) -> Result<Option<CustomerProfile>, StoreError> {
        let (pk, sk) = keys::customer_profile(customer);
        self.get(pk, sk, "customer profile").await
    }

    /// Save `profile` as the version after `profile.version`, if that is still the current one.
    pub async fn save_customer_profile(
        &self,
        profile: &CustomerProfile,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<CustomerProfile, SaveError> {
        let subject = format!("customers/{}", profile.customer_id);
        self.save_next_version(keys::customer_profile(&profile.customer_id), profile, actor, &subject, now).await
    }

    /// Save `record` one version past the one it names, with its audit record, in one
    /// transaction, if the stored version is still that one (for 0: nothing is stored); else the
    /// conflict with the stored version.
    async fn save_next_version<T: Versioned>(
        &self,
        (pk, sk): (String, String),
        record: &T,
        actor: &str,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<T, SaveError> {
        let before: Option<T> = self.get(pk.clone(), sk.clone(), T::ENTITY).await?;
        let replaces = record.version();
        // Saturating: a client naming u32::MAX gets the conflict below, not an overflow.
        let saved = record.with_version(replaces.saturating_add(1));
        let put =
            Put::builder().table_name(&self.table).set_item(Some(to_item(&saved, pk.clone(), sk.clone(), T::ENTITY)));
        let put = if replaces == 0 {
            put.condition_expression("attribute_not_exists(PK)")
        } else {
            put.condition_expression("version = :replaces").expression_attribute_values(":replaces", n(replaces))
        };
        let action = format!("{}.save", kebab(T::ENTITY));
        let audit = self.audit_record(actor, &action, subject, before.as_ref(), Some(&saved), now);
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put.build().expect("put has table and item")).build())
            .transact_items(audit)
            .send()
            .await;
        match result.map_err(|err| err.into_service_error()) {
            Ok(_) => Ok(saved),
            Err(TransactWriteItemsError::TransactionCanceledException(_)) => {
                let current: Option<T> = self.get(pk, sk, T::ENTITY).await?;
                Err(SaveError::VersionConflict { current: current.map_or(0, |c| c.version()) })
            }
            Err(other) => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string()).into()),
        }
    }
}

/// What staff keep as numbered versions, each save naming the version it replaces.
pub trait Versioned: Serialize + serde::de::DeserializeOwned {
    /// The item's `entity` attribute (and, in kebab case, its audit action's name).
    const ENTITY: &'static str;
    fn version(&self) -> u32;
    fn with_version(&self, version: u32) -> Self;
}

impl Versioned for CatalogueItem {
    const ENTITY: &'static str = "CatalogueItem";
    fn version(&self) -> u32 {
        self.version
    }
    fn with_version(&self, version: u32) -> Self {
        Self { version, ..self.clone() }
    }
}

impl Versioned for CustomerProfile {
    const ENTITY: &'static str = "CustomerProfile";
    fn version(&self) -> u32 {
        self.version
    }
    fn with_version(&self, version: u32) -> Self {
        Self { version, ..self.clone() }
    }
}

impl Versioned for crate::domain::FulfilmentPolicy {
    const ENTITY: &'static str = "FulfilmentPolicy";
    fn version(&self) -> u32 {
        self.version
    }
    fn with_version(&self, version: u32) -> Self {
        Self { version, ..self.clone() }
    }
}

impl Versioned for crate::domain::LogisticsPolicy {
    const ENTITY: &'static str = "LogisticsPolicy";
    fn version(&self) -> u32 {
        self.version
    }
    fn with_version(&self, version: u32) -> Self {
        Self { version, ..self.clone() }
    }
}

/// An operations policy: one versioned, audited document in the config partition, read (and
/// cached) by the functions it steers, replaced whole by operations naming the version it
/// replaces.
pub trait PolicyDocument: Versioned + Default {
    /// Its audit subject.
    const SUBJECT: &'static str;
    /// Its item's key.
    fn key() -> (String, String);
    /// Whether operations may save it: the field at fault and why, when not.
    fn validate(&self) -> Result<(), (String, crate::domain::values::Invalid)>;
}

impl PolicyDocument for crate::domain::LogisticsPolicy {
    const SUBJECT: &'static str = "config/logistics-policy";
    fn key() -> (String, String) {
        keys::logistics_policy()
    }
    fn validate(&self) -> Result<(), (String, crate::domain::values::Invalid)> {
        crate::domain::LogisticsPolicy::validate(self)
    }
}

impl PolicyDocument for AfterSalesPolicy {
    const SUBJECT: &'static str = "config/after-sales-policy";
    fn key() -> (String, String) {
        keys::after_sales_policy()
    }
    fn validate(&self) -> Result<(), (String, crate::domain::values::Invalid)> {
        AfterSalesPolicy::validate(self)
    }
}

impl PolicyDocument for crate::domain::FulfilmentPolicy {
    const SUBJECT: &'static str = "config/fulfilment-policy";
    fn key() -> (String, String) {
        keys::fulfilment_policy()
    }
    fn validate(&self) -> Result<(), (String, crate::domain::values::Invalid)> {
        crate::domain::FulfilmentPolicy::validate(self)
    }
}

impl Store {
    /// The policy of kind `T` operations saved, if any.
    pub async fn policy<T: PolicyDocument>(&self) -> Result<Option<T>, StoreError> {
        let (pk, sk) = T::key();
        self.get(pk, sk, T::ENTITY).await
    }

    /// Save `policy` as the next version of its kind, audited as done by `actor`.
    pub async fn save_policy<T: PolicyDocument>(
        &self,
        policy: &T,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<T, SaveError> {
        self.save_next_version(T::key(), policy, actor, T::SUBJECT, now).await
    }

    /// The logistics policy operations saved, if any.
    pub async fn logistics_policy(&self) -> Result<Option<crate::domain::LogisticsPolicy>, StoreError> {
        self.policy().await
    }

    /// The after-sales policy operations saved, if any.
    pub async fn after_sales_policy(&self) -> Result<Option<AfterSalesPolicy>, StoreError> {
        self.policy().await
    }

    /// The fulfilment policy operations saved, if any.
    pub async fn fulfilment_policy(&self) -> Result<Option<crate::domain::FulfilmentPolicy>, StoreError> {
        self.policy().await
    }
}

impl Versioned for crate::domain::after_sales_policy::AfterSalesPolicy {
    const ENTITY: &'static str = "AfterSalesPolicy";
    fn version(&self) -> u32 {
        self.version
    }
    fn with_version(&self, version: u32) -> Self {
        Self { version, ..self.clone() }
    }
}

/// `CatalogueItem` → `catalogue-item`: audit actions are named as the risk rules' are.
fn kebab(entity: &str) -> String {
    let mut out = String::new();
    for (i, c) in entity.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn audit_actions_name_the_entity_in_kebab_case() {
        assert_eq!(super::kebab("CatalogueItem"), "catalogue-item");
        assert_eq!(super::kebab("CustomerProfile"), "customer-profile");
    }
}
