//! Personal data: the phone, the recipient's name, the street and house number, the client's IP.
//! It is sealed field by field before it reaches the table (envelope encryption: AES-256-GCM
//! under a data key that the KMS key wraps), and opened only where the clear value is needed.
//! What stays in the clear is what routing and reports need: country, province, city, district,
//! a parcel locker's station, and the phone's last four digits as a hint.
//!
//! - [`vault`]: the KMS port (a new data key, a wrapped key unwrapped) and its AWS adapter.
//! - [`fingerprint`]: keyed fingerprints (HMAC) of phones, addresses and IPs, for matching
//!   without the clear value.
//! - [`sealer`]: sealing and opening, with the data keys cached for a bounded time and number
//!   of uses, so neither sealing nor opening calls KMS per item.
//! - [`parcel`]: a parcel's address opened for the warehouse packing it and its courier.

pub mod fingerprint;
pub mod parcel;
pub mod sealer;
pub mod vault;

pub use fingerprint::{Fingerprint, FingerprintError, FingerprintKey, Fingerprinter};
pub use parcel::{parcel_address, ParcelAddress};
pub use sealer::{KeyCacheLimits, Sealer};
pub use vault::{DataKey, KeyVault, KmsVault, Purpose, VaultError};

use crate::domain::Phone;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The names of the personal fields, as sealed and as the access matrix rules them.
pub const FIELDS: [&str; 5] = ["phone", "recipient", "street", "house_number", "client_ip"];

/// The personal fields of one order, in the clear: only in memory, only where needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    pub recipient: String,
    pub phone: Phone,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub house_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

/// Personal fields as the table keeps them: the data key wrapped by the KMS key, and each
/// field's nonce and ciphertext (base64), bound to its owner and field name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedPersonal {
    pub key: String,
    pub fields: BTreeMap<String, String>,
}

/// What a function holds to protect personal data: the sealer of the table's fields and the
/// deployment's fingerprint key.
#[derive(Clone)]
pub struct PersonalKeys {
    pub sealer: std::sync::Arc<Sealer>,
    pub fingerprints: std::sync::Arc<FingerprintKey>,
}

impl PersonalKeys {
    /// Both on KMS under `key_id`, each with its own encryption context.
    pub fn on_kms(kms: &crate::aws::json_service::JsonService, key_id: &str) -> Self {
        let vault = KmsVault::new(kms.clone(), key_id, Purpose::Fingerprint);
        Self {
            sealer: Sealer::on_kms(kms, key_id),
            fingerprints: std::sync::Arc::new(FingerprintKey::new(std::sync::Arc::new(vault))),
        }
    }
}

/// The KMS key of personal data, as the template gives it to a function: `PERSONAL_DATA_KEY_ID`.
pub fn key_id_from_env() -> Result<String, crate::config::ConfigError> {
    std::env::var("PERSONAL_DATA_KEY_ID").map_err(|_| crate::config::ConfigError::Missing("PERSONAL_DATA_KEY_ID"))
}

/// What a sealed order's fields are bound to: a ciphertext moved to another order does not open.
pub fn order_context(order_id: crate::domain::OrderId) -> String {
    format!("orders/{order_id}")
}
