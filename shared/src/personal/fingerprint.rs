//! Keyed fingerprints of personal values (HMAC-SHA-256), for what must match on a value without
//! holding it: the risk rules' blacklists of phones, addresses and IPs, the addresses a customer
//! shipped to before, the count of codes sent to a phone today. A bare hash of a phone number is
//! reversed by hashing every number of the country; a keyed one needs the key.
//!
//! The key is one 32-byte data key for the whole deployment, since lists and counters must match
//! across instances and over time. It is generated once under the personal-data KMS key with an
//! encryption context of its own ([`super::Purpose::Fingerprint`]), kept wrapped in the table,
//! and unwrapped once per instance, on first use.

use super::vault::{KeyVault, VaultError};
use crate::domain::Phone;
use crate::store::{Store, StoreError};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// What a fingerprint says in front of its hex digits, so it is never taken for a clear value.
const PREFIX: &str = "fp:";
/// Hex digits of a fingerprint: 128 bits of the HMAC.
const DIGITS: usize = 32;

/// A keyed fingerprint, `fp:` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `value` if it already is a fingerprint (a list read back and saved again).
    pub fn parse(value: &str) -> Option<Self> {
        let digits = value.strip_prefix(PREFIX)?;
        (digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(value.to_owned()))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Fingerprints under one key. Each kind of value is fingerprinted apart (its name goes into the
/// MAC), so a phone and an IP never share a fingerprint.
pub struct Fingerprinter {
    key: [u8; 32],
}

impl Fingerprinter {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn of(&self, kind: &str, value: &str) -> Fingerprint {
        self.of_bytes(kind, value.as_bytes())
    }

    fn of_bytes(&self, kind: &str, value: &[u8]) -> Fingerprint {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        Fingerprint(format!("{PREFIX}{}", hex::encode(&digest[..DIGITS / 2])))
    }

    /// A request body (which holds personal values), to tell a retried request from another
    /// under the same idempotency key without keeping a bare hash of it.
    pub fn request(&self, body: &[u8]) -> Fingerprint {
        self.of_bytes("request", body)
    }

    pub fn phone(&self, phone: &Phone) -> Fingerprint {
        self.of("phone", phone.as_str())
    }

    /// An IP in its canonical form, so `::ffff:1.2.3.4` and `1.2.3.4` are one address.
    pub fn ip(&self, ip: IpAddr) -> Fingerprint {
        let canonical = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.of("ip", &canonical.to_string())
    }

    /// An address from its parts (country, province, city, district, street or locker station,
    /// house or locker number), ignoring case and spacing.
    pub fn address(&self, parts: &[&str]) -> Fingerprint {
        let normalised: Vec<String> =
            parts.iter().map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()).collect();
        self.of("address", &normalised.join("|"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The deployment's fingerprint key, loaded on first use and kept for the instance's life.
pub struct FingerprintKey {
    vault: Arc<dyn KeyVault>,
    loaded: OnceCell<Fingerprinter>,
}

impl FingerprintKey {
    /// `vault` wraps for [`super::Purpose::Fingerprint`].
    pub fn new(vault: Arc<dyn KeyVault>) -> Self {
        Self { vault, loaded: OnceCell::new() }
    }

    pub async fn fingerprinter(&self, store: &Store) -> Result<&Fingerprinter, FingerprintError> {
        self.loaded.get_or_try_init(|| self.load(store)).await
    }

    /// The stored key unwrapped; the first instance ever generates it, and if two race, the one
    /// stored first is the key of both.
    async fn load(&self, store: &Store) -> Result<Fingerprinter, FingerprintError> {
        let wrapped = match store.fingerprint_key().await? {
            Some(wrapped) => wrapped,
            None => {
                let fresh = self.vault.new_data_key().await?;
                match store.keep_fingerprint_key(&fresh.wrapped).await? {
                    None => return Ok(Fingerprinter::new(fresh.plaintext)),
                    Some(first) => first,
                }
            }
        };
        Ok(Fingerprinter::new(self.vault.unwrap_key(&wrapped).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_has_one_fingerprint_per_key_and_kind() {
        let phone = Phone::parse("+8613800138000").unwrap();
        let ours = Fingerprinter::new([7; 32]);
        assert_eq!(ours.phone(&phone), ours.phone(&phone));
        assert_ne!(ours.phone(&phone), Fingerprinter::new([8; 32]).phone(&phone));
        assert_ne!(ours.of("phone", "1.2.3.4"), ours.of("ip", "1.2.3.4"));
        assert!(!ours.phone(&phone).as_str().contains("13800138000"));
    }

    #[test]
    fn addresses_ignore_case_and_spacing_and_ips_their_notation() {
        let f = Fingerprinter::new([1; 32]);
        assert_eq!(f.address(&["Wensan  Road", "88"]), f.address(&["wensan road", "88"]));
        assert_ne!(f.address(&["Wensan Road", "88"]), f.address(&["Wensan Road", "89"]));
        assert_eq!(f.ip("::ffff:10.0.0.1".parse().unwrap()), f.ip("10.0.0.1".parse().unwrap()));
        assert_ne!(f.ip("10.0.0.1".parse().unwrap()), f.ip("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn only_a_well_formed_fingerprint_parses_as_one() {
        let made = Fingerprinter::new([2; 32]).ip("10.0.0.1".parse().unwrap());
        assert_eq!(Fingerprint::parse(made.as_str()), Some(made.clone()));
        for not_one in ["10.0.0.1", "fp:", "fp:zz", &made.as_str().to_uppercase(), &format!("{made}0")] {
            assert_eq!(Fingerprint::parse(not_one), None, "{not_one}");
        }
    }
}
