//! Sealing and opening personal fields. Each field is encrypted on its own (AES-256-GCM, a
//! random 96-bit nonce) with its owner and name as associated data, under the item's data key.
//!
//! Data keys are cached both ways: one key seals items for at most `max_age` and `max_uses`
//! items, then a new one is asked for; a wrapped key once unwrapped is kept (at most
//! `max_opened` of them, each for `max_age`). So a warm function calls KMS about once per
//! `max_uses` orders or `max_age`, not per item.

use super::vault::{KeyVault, VaultError};
use super::{PersonalData, SealedPersonal};
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long and how often a data key is used.
#[derive(Debug, Clone, Copy)]
pub struct KeyCacheLimits {
    pub max_age: Duration,
    pub max_uses: u32,
    pub max_opened: usize,
}

impl Default for KeyCacheLimits {
    fn default() -> Self {
        Self { max_age: Duration::from_secs(300), max_uses: 10_000, max_opened: 256 }
    }
}

struct SealingKey {
    plaintext: [u8; 32],
    wrapped: String,
    since: Instant,
    uses: u32,
}

pub struct Sealer {
    vault: Arc<dyn KeyVault>,
    limits: KeyCacheLimits,
    sealing: tokio::sync::Mutex<Option<SealingKey>>,
    opened: std::sync::Mutex<HashMap<String, ([u8; 32], Instant)>>,
}

impl Sealer {
    pub fn new(vault: Arc<dyn KeyVault>, limits: KeyCacheLimits) -> Self {
        Self { vault, limits, sealing: tokio::sync::Mutex::new(None), opened: std::sync::Mutex::new(HashMap::new()) }
    }

    /// `data` sealed for `context` (the owner, e.g. `orders/<id>`): absent fields stay absent.
    pub async fn seal(&self, data: &PersonalData, context: &str) -> Result<SealedPersonal, VaultError> {
        let clear = serde_json::to_value(data).expect("plain data");
        let fields: Vec<(&str, &str)> =
            super::FIELDS.iter().filter_map(|name| Some((*name, clear.get(*name)?.as_str()?))).collect();
        self.seal_fields(&fields, context).await
    }

    /// `fields` (name, clear value) sealed for `context` under one data key.
    pub async fn seal_fields(&self, clear: &[(&str, &str)], context: &str) -> Result<SealedPersonal, VaultError> {
        let (key, wrapped) = self.sealing_key().await?;
        let cipher = Aes256Gcm::new_from_slice(&key).expect("32-byte key");
        let mut fields = BTreeMap::new();
        for (name, value) in clear {
            let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
            let aad = format!("{context}/{name}");
            let sealed = cipher
                .encrypt(&nonce, Payload { msg: value.as_bytes(), aad: aad.as_bytes() })
                .map_err(|_| VaultError::Corrupt("encryption failed".into()))?;
            let mut bytes = nonce.to_vec();
            bytes.extend(sealed);
            fields.insert((*name).to_owned(), BASE64.encode(bytes));
        }
        Ok(SealedPersonal { key: wrapped, fields })
    }

    /// The fields of `sealed` named in `names` that it has, opened; no other is decrypted. The
    /// data key is looked up once for them all (and not at all when none is there).
    pub async fn open_fields<'n>(
        &self,
        sealed: &SealedPersonal,
        context: &str,
        names: &[&'n str],
    ) -> Result<BTreeMap<&'n str, String>, VaultError> {
        let present: Vec<(&'n str, &String)> =
            names.iter().filter_map(|name| Some((*name, sealed.fields.get(*name)?))).collect();
        let mut clear = BTreeMap::new();
        if present.is_empty() {
            return Ok(clear);
        }
        let cipher = self.opening_cipher(&sealed.key).await?;
        for (name, text) in present {
            clear.insert(name, open_one(&cipher, context, name, text)?);
        }
        Ok(clear)
    }

    /// One field of `sealed`, opened for its `context`; none when the envelope lacks it (one
    /// that carries only the phone, say).
    pub async fn open_field(
        &self,
        sealed: &SealedPersonal,
        context: &str,
        name: &str,
    ) -> Result<Option<String>, VaultError> {
        let Some(text) = sealed.fields.get(name) else { return Ok(None) };
        let cipher = self.opening_cipher(&sealed.key).await?;
        open_one(&cipher, context, name, text).map(Some)
    }

    /// The cipher of the data key `wrapped` names.
    async fn opening_cipher(&self, wrapped: &str) -> Result<Aes256Gcm, VaultError> {
        let key = self.opening_key(wrapped).await?;
        Ok(Aes256Gcm::new_from_slice(&key).expect("32-byte key"))
    }

    /// The current data key, or a new one when it is too old or too used.
    async fn sealing_key(&self) -> Result<([u8; 32], String), VaultError> {
        let mut current = self.sealing.lock().await;
        let fresh =
            current.as_ref().is_some_and(|k| k.since.elapsed() < self.limits.max_age && k.uses < self.limits.max_uses);
        if !fresh {
            let key = self.vault.new_data_key().await?;
            let wrapped = BASE64.encode(&key.wrapped);
            self.remember(&wrapped, key.plaintext);
            *current = Some(SealingKey { plaintext: key.plaintext, wrapped, since: Instant::now(), uses: 0 });
        }
        let key = current.as_mut().expect("set above");
        key.uses += 1;
        Ok((key.plaintext, key.wrapped.clone()))
    }

    /// The data key `wrapped` names, unwrapped once and kept a while.
    async fn opening_key(&self, wrapped: &str) -> Result<[u8; 32], VaultError> {
        let known = self.opened.lock().expect("cache lock").get(wrapped).copied();
        if let Some((key, since)) = known {
            if since.elapsed() < self.limits.max_age {
                return Ok(key);
            }
        }
        let bytes = BASE64.decode(wrapped).map_err(|e| VaultError::Corrupt(format!("key: {e}")))?;
        let key = self.vault.unwrap_key(&bytes).await?;
        self.remember(wrapped, key);
        Ok(key)
    }

    fn remember(&self, wrapped: &str, key: [u8; 32]) {
        let mut opened = self.opened.lock().expect("cache lock");
        opened.retain(|_, (_, since)| since.elapsed() < self.limits.max_age);
        if opened.len() >= self.limits.max_opened {
            // Full of fresh keys: forget the oldest.
            if let Some(oldest) = opened.iter().min_by_key(|(_, (_, since))| *since).map(|(k, _)| k.clone()) {
                opened.remove(&oldest);
            }
        }
        opened.insert(wrapped.to_owned(), (key, Instant::now()));
    }
}

/// One sealed field (`text`: base64 of nonce and ciphertext) opened with `cipher` for its
/// `context` and `name`, the associated data it was sealed with.
fn open_one(cipher: &Aes256Gcm, context: &str, name: &str, text: &str) -> Result<String, VaultError> {
    let bytes = BASE64.decode(text).map_err(|e| VaultError::Corrupt(format!("{name}: {e}")))?;
    if bytes.len() < 12 {
        return Err(VaultError::Corrupt(format!("{name}: too short")));
    }
    let (nonce, body) = bytes.split_at(12);
    let aad = format!("{context}/{name}");
    let value = cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: aad.as_bytes() })
        .map_err(|_| VaultError::Corrupt(format!("{name} does not open for {context}")))?;
    String::from_utf8(value).map_err(|e| VaultError::Corrupt(format!("{name}: {e}")))
}

impl Sealer {
    /// The table's sealer on KMS under `key_id`, with the default key cache.
    pub fn on_kms(kms: &crate::aws::json_service::JsonService, key_id: &str) -> std::sync::Arc<Self> {
        let vault = super::KmsVault::new(kms.clone(), key_id, super::Purpose::PersonalData);
        std::sync::Arc::new(Sealer::new(std::sync::Arc::new(vault), KeyCacheLimits::default()))
    }

    /// The table's sealer as a deployed function gets it: KMS, key [`super::key_id_from_env`].
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<std::sync::Arc<Self>, crate::config::ConfigError> {
        let kms = crate::aws::json_service::JsonService::kms(aws)
            .map_err(|e| crate::config::ConfigError::Aws(e.to_string()))?;
        Ok(Self::on_kms(&kms, &super::key_id_from_env()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Phone;
    use crate::personal::vault::{DataKey, VaultFuture};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A vault that wraps by XOR with a fixed byte, counting its calls.
    #[derive(Default)]
    struct CountingVault {
        made: AtomicU32,
        unwrapped: AtomicU32,
    }

    impl KeyVault for CountingVault {
        fn new_data_key(&self) -> VaultFuture<'_, DataKey> {
            let n = self.made.fetch_add(1, Ordering::SeqCst) as u8;
            let plaintext = [n.wrapping_add(1); 32];
            Box::pin(async move { Ok(DataKey { plaintext, wrapped: plaintext.iter().map(|b| b ^ 0x5a).collect() }) })
        }
        fn unwrap_key<'a>(&'a self, wrapped: &'a [u8]) -> VaultFuture<'a, [u8; 32]> {
            self.unwrapped.fetch_add(1, Ordering::SeqCst);
            let key: Vec<u8> = wrapped.iter().map(|b| b ^ 0x5a).collect();
            Box::pin(async move { key.try_into().map_err(|_| VaultError::Corrupt("length".into())) })
        }
    }

    /// Every field of `sealed`, opened through the production path, as the data it was.
    async fn open_all(sealer: &Sealer, sealed: &SealedPersonal, context: &str) -> Result<PersonalData, VaultError> {
        let clear = sealer.open_fields(sealed, context, &crate::personal::FIELDS).await?;
        let clear =
            clear.into_iter().map(|(name, value)| (name.to_owned(), serde_json::Value::String(value))).collect();
        serde_json::from_value(serde_json::Value::Object(clear)).map_err(|e| VaultError::Corrupt(e.to_string()))
    }

    fn data() -> PersonalData {
        PersonalData {
            recipient: "Li Lei".into(),
            phone: Phone::parse("13800138000").unwrap(),
            street: Some("Wensan Road".into()),
            house_number: Some("88".into()),
            client_ip: None,
        }
    }

    #[tokio::test]
    async fn sealed_fields_open_for_their_owner_only_and_hold_no_clear_value() {
        let sealer = Sealer::new(Arc::new(CountingVault::default()), KeyCacheLimits::default());
        let sealed = sealer.seal(&data(), "orders/A").await.unwrap();
        assert_eq!(sealed.fields.keys().collect::<Vec<_>>(), ["house_number", "phone", "recipient", "street"]);
        let stored = serde_json::to_string(&sealed).unwrap();
        for clear in ["Li Lei", "13800138000", "Wensan", "\"88\""] {
            assert!(!stored.contains(clear), "{clear} in {stored}");
        }
        assert_eq!(open_all(&sealer, &sealed, "orders/A").await.unwrap(), data());
        assert!(open_all(&sealer, &sealed, "orders/B").await.is_err(), "moved to another order, it does not open");
        let mut swapped = sealed.clone();
        let street = swapped.fields["street"].clone();
        swapped.fields.insert("recipient".into(), street);
        assert!(open_all(&sealer, &swapped, "orders/A").await.is_err(), "a field moved to another name does not open");
    }

    #[tokio::test]
    async fn a_data_key_seals_up_to_its_uses_and_opens_from_the_cache() {
        let vault = Arc::new(CountingVault::default());
        let limits = KeyCacheLimits { max_uses: 3, ..KeyCacheLimits::default() };
        let sealer = Sealer::new(vault.clone(), limits);
        let mut sealed = Vec::new();
        for i in 0..7 {
            sealed.push(sealer.seal(&data(), &format!("orders/{i}")).await.unwrap());
        }
        assert_eq!(vault.made.load(Ordering::SeqCst), 3, "7 items, 3 uses a key");
        for (i, s) in sealed.iter().enumerate() {
            assert_eq!(open_all(&sealer, s, &format!("orders/{i}")).await.unwrap(), data());
        }
        assert_eq!(vault.unwrapped.load(Ordering::SeqCst), 0, "its own keys are known");
        let other = Sealer::new(vault.clone(), limits);
        for (i, s) in sealed.iter().enumerate() {
            open_all(&other, s, &format!("orders/{i}")).await.unwrap();
        }
        assert_eq!(vault.unwrapped.load(Ordering::SeqCst), 3, "another instance unwraps each key once");
        let stale = Sealer::new(vault.clone(), KeyCacheLimits { max_age: Duration::ZERO, ..limits });
        stale.seal(&data(), "orders/x").await.unwrap();
        stale.seal(&data(), "orders/y").await.unwrap();
        assert_eq!(vault.made.load(Ordering::SeqCst), 5, "a key past its age is not used again");
    }
}
