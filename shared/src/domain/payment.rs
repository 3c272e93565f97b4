//! Payment provider webhooks: the signature that proves a callback came from the provider, and
//! the event it carries. Pure functions; the handlers do the I/O.
//!
//! Signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">[,v1=<hex>…]`. Several
//! `v1` values let the provider sign with an old and a new secret while one is rotated; we may
//! likewise hold several secrets. Any (secret, v1) match within the tolerance is accepted.

use super::values::{Currency, Invalid, OrderId};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header missing")]
    Missing,
    #[error("signature header malformed")]
    Malformed,
    #[error("signature timestamp outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value a provider would send for `body` at `timestamp`, signed with `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    format!("t={t},v1={}", hex::encode(mac(secret, &t, body).finalize().into_bytes()))
}

/// Check a signature header against our secrets at time `now` (unix seconds). Comparison is
/// constant-time (`Mac::verify_slice`).
pub fn verify(header: Option<&str>, body: &[u8], secrets: &[Vec<u8>], now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", hex_sig)) => signatures.push(hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?),
            Some(_) => {} // other schemes are ignored, as providers add them over time
            None => return Err(SignatureError::Malformed),
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    let seconds: i64 = t.parse().map_err(|_| SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // `abs_diff`: a timestamp far from now (i64::MIN, say) is stale, not an overflow.
    if now.abs_diff(seconds) > SIGNATURE_TOLERANCE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let matched =
        secrets.iter().any(|secret| signatures.iter().any(|sig| mac(secret, t, body).verify_slice(sig).is_ok()));
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEventType {
    #[serde(rename = "payment.succeeded")]
    Succeeded,
    #[serde(rename = "payment.failed")]
    Failed,
    #[serde(rename = "payment.cancelled")]
    Cancelled,
}

/// What the provider tells us about one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    /// The provider's event id: deliveries of one event share it.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: PaymentEventType,
    /// Unix seconds at the provider.
    pub created: i64,
    pub data: PaymentData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentData {
    pub payment_id: String,
    /// As the merchant passed it to the provider; kept as text so a payment naming no order we
    /// know is still recorded.
    pub order_id: String,
    pub amount_minor: i64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

fn provider_token(value: &str, field: &'static str) -> Result<(), (&'static str, Invalid)> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err((field, Invalid::new("field-malformed", format!("{field} is 1 to 128 token characters"))))
    }
}

impl PaymentEvent {
    /// Check the fields we key records on; the rest is kept as sent.
    pub fn validate(&self) -> Result<(), (&'static str, Invalid)> {
        provider_token(&self.id, "id")?;
        provider_token(&self.data.payment_id, "data.payment_id")?;
        if self.data.order_id.len() > 128 {
            return Err(("data.order_id", Invalid::new("field-malformed", "order_id is at most 128 characters")));
        }
        if self.data.amount_minor < 0 {
            return Err(("data.amount_minor", Invalid::new("amount-negative", "amounts cannot be negative")));
        }
        Ok(())
    }

    /// The order it pays, when the id is one of ours.
    pub fn order_id(&self) -> Option<OrderId> {
        OrderId::parse(&self.data.order_id).ok()
    }

    /// The currency, when it is one we trade in.
    pub fn currency(&self) -> Option<Currency> {
        Currency::parse(&self.data.currency).ok()
    }
}

/// Where a payment event is kept: the day the provider created it and its id (a redelivery of
/// the same event lands on the same item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentKey {
    pub day: String,
    pub event_id: String,
}

impl PaymentKey {
    pub fn of(event: &PaymentEvent) -> Self {
        let day = time::OffsetDateTime::from_unix_timestamp(event.created).map(|t| t.date()).unwrap_or(time::Date::MIN);
        Self { day: day.to_string(), event_id: event.id.clone() }
    }
}

/// A payment staff must look at (its amount or currency differ from the order's): which one, and
/// what it brought. Kept on the order while it is PAYMENT_MISMATCH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentUnderReview {
    pub key: PaymentKey,
    pub payment_id: String,
    pub amount_minor: i64,
    /// As the provider sent it: it may name a currency we do not trade in.
    pub currency: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const NOW: i64 = 1_795_262_400;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment.succeeded"}"#;

    fn secrets() -> Vec<Vec<u8>> {
        vec![SECRET.to_vec()]
    }

    #[test]
    fn a_fresh_signature_with_our_secret_is_accepted() {
        let header = sign(SECRET, NOW - 10, BODY);
        assert_eq!(verify(Some(&header), BODY, &secrets(), NOW), Ok(()));
    }

    #[test]
    fn a_known_vector_matches() {
        // HMAC-SHA256(key "key", message "1.x"), computed independently with Python's hmac module.
        assert_eq!(sign(b"key", 1, b"x"), "t=1,v1=fc4913c41a7bf793267e2a384f3261c9436ec2cd097bd745e7b0d99113f510ec");
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let header = sign(SECRET, NOW, BODY);
        assert_eq!(
            verify(Some(&header), br#"{"id":"evt_1","type":"payment.failed"}"#, &secrets(), NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn another_secret_is_refused() {
        let header = sign(b"someone else", NOW, BODY);
        assert_eq!(verify(Some(&header), BODY, &secrets(), NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn old_and_future_timestamps_are_refused() {
        let old = sign(SECRET, NOW - 301, BODY);
        assert_eq!(verify(Some(&old), BODY, &secrets(), NOW), Err(SignatureError::Stale));
        let future = sign(SECRET, NOW + 301, BODY);
        assert_eq!(verify(Some(&future), BODY, &secrets(), NOW), Err(SignatureError::Stale));
        let edge = sign(SECRET, NOW - 300, BODY);
        assert_eq!(verify(Some(&edge), BODY, &secrets(), NOW), Ok(()));
        for far in [i64::MIN, i64::MAX] {
            let header = sign(SECRET, far, BODY);
            assert_eq!(verify(Some(&header), BODY, &secrets(), NOW), Err(SignatureError::Stale), "t={far}");
        }
    }

    #[test]
    fn during_rotation_any_listed_signature_or_secret_matches() {
        let new = sign(SECRET, NOW, BODY);
        let old = sign(b"old secret", NOW, BODY);
        let both = format!("{},v1={}", old, &new[new.find("v1=").unwrap() + 3..]);
        assert_eq!(verify(Some(&both), BODY, &secrets(), NOW), Ok(()), "provider signs with old and new");
        let ours = vec![b"old secret".to_vec(), b"newer secret".to_vec()];
        assert_eq!(verify(Some(&old), BODY, &ours, NOW), Ok(()), "we accept old and new");
    }

    #[test]
    fn missing_or_malformed_headers_are_refused() {
        assert_eq!(verify(None, BODY, &secrets(), NOW), Err(SignatureError::Missing));
        assert_eq!(verify(Some("v1=abcd"), BODY, &secrets(), NOW), Err(SignatureError::Malformed));
        assert_eq!(verify(Some(&format!("t={NOW}")), BODY, &secrets(), NOW), Err(SignatureError::Malformed));
        assert_eq!(verify(Some(&format!("t={NOW},v1=zz")), BODY, &secrets(), NOW), Err(SignatureError::Malformed));
        assert_eq!(verify(Some("garbage"), BODY, &secrets(), NOW), Err(SignatureError::Malformed));
    }
}
