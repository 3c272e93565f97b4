//! The catalogue (`SKU#<sku>/CATALOGUE`) and the customer profiles staff keep
//! (`CUSTOMER#<id>/PROFILE`): versioned saves, each audited in the same transaction; and the
//! one read intake makes per order, which brings the risk context, every line's catalogue item
//! and the customer's profile in one `BatchGetItem`.

use super::risk::{RiskKeys, SeenCounters};
use super::verification::phone_codes_key;
use super::{from_item, keys, n, to_item, Store, StoreError};
use crate::domain::risk::RiskContext;
use crate::domain::{CatalogueItem, CustomerId, CustomerProfile, Phone, Sku};
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
        phone: &Phone,
        skus: &[Sku],
        customer_windows: &BTreeSet<u32>,
        device_windows: &BTreeSet<u32>,
        now: OffsetDateTime,
    ) -> Result<IntakeContext, StoreError> {
        let mut wanted = self.risk_keys(&at, customer_windows, device_windows, now);
        wanted.extend(skus.iter().map(keys::catalogue));
        wanted.push(keys::customer_profile(customer));
        wanted.push(phone_codes_key(phone, now));
        let mut found = self.batch_get(&wanted).await?;
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
        let before = self.catalogue_item(&item.sku).await?;
        let saved = CatalogueItem { version: item.version + 1, ..item.clone() };
        let subject = format!("catalogue/{}", item.sku);
        let key = keys::catalogue(&item.sku);
        if !self
            .save_versioned(key, "CatalogueItem", &saved, item.version, before.as_ref(), actor, &subject, now)
            .await?
        {
            let current = self.catalogue_item(&item.sku).await?.map_or(0, |i| i.version);
            return Err(SaveError::VersionConflict { current });
        }
        Ok(saved)
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
        let before = self.customer_profile(&profile.customer_id).await?;
        let saved = CustomerProfile { version: profile.version + 1, ..profile.clone() };
        let subject = format!("customers/{}", profile.customer_id);
        let key = keys::customer_profile(&profile.customer_id);
        if !self
            .save_versioned(key, "CustomerProfile", &saved, profile.version, before.as_ref(), actor, &subject, now)
            .await?
        {
            let current = self.customer_profile(&profile.customer_id).await?.map_or(0, |p| p.version);
            return Err(SaveError::VersionConflict { current });
        }
        Ok(saved)
    }

    /// Put `saved` (its `version` one past `replaces`) only if the stored version is `replaces`
    /// (or, for 0, nothing is stored), with its audit record, in one transaction. False when the
    /// stored version was another.
    #[allow(clippy::too_many_arguments)]
    async fn save_versioned<T: Serialize>(
        &self,
        (pk, sk): (String, String),
        entity: &str,
        saved: &T,
        replaces: u32,
        before: Option<&T>,
        actor: &str,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(to_item(saved, pk, sk, entity)));
        put = if replaces == 0 {
            put.condition_expression("attribute_not_exists(PK)")
        } else {
            put.condition_expression("version = :replaces").expression_attribute_values(":replaces", n(replaces))
        };
        let action = format!("{}.save", kebab(entity));
        let audit = self.audit_record(actor, &action, subject, before, Some(saved), now);
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put.build().expect("put has table and item")).build())
            .transact_items(audit)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(_) => Ok(false),
                other => Err(StoreError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string())),
            },
        }
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
