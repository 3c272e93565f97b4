//! Small value types. Each constructor is the only way in, and it refuses anything invalid, so a
//! `Sku` or a `Quantity` found anywhere in the program is known to be good.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused: a stable machine code plus a human sentence. The caller adds the
/// field name, since only it knows where the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub detail: String,
}

impl Invalid {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into() }
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn token(value: &str, max: usize, code: &'static str, what: &str) -> Result<String, Invalid> {
    let value = value.trim();
    if value.is_empty() || value.len() > max || !value.chars().all(is_token_char) {
        return Err(Invalid::new(
            code,
            format!("{what} must be 1 to {max} characters of letters, digits, '-', '_' or '.'"),
        ));
    }
    Ok(value.to_owned())
}

macro_rules! token_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $code:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, Invalid> {
                token(value, $max, $code, $what).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(&value).map_err(|e| e.detail)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

token_type!(
    /// A stock keeping unit code, as the shop's catalogue spells it.
    Sku, 64, "sku-malformed", "a SKU"
);
token_type!(
    /// The shop's own customer identifier.
    CustomerId, 64, "customer-id-malformed", "a customer id"
);
token_type!(
    /// A warehouse code (`SH-01`, `BONDED-HZ`).
    WarehouseId, 32, "warehouse-id-malformed", "a warehouse id"
);
token_type!(
    /// The device fingerprint the channel reports.
    DeviceId, 128, "device-id-malformed", "a device id"
);
token_type!(
    /// A courier company's code in the fulfilment policy (`sf`, `zto`).
    CourierId, 32, "courier-id-malformed", "a courier id"
);
token_type!(
    /// Where the order came from (`app`, `web`, `mini-program`, a partner code).
    ChannelId, 32, "channel-malformed", "a channel"
);

/// An order id: a ULID, so ids sort by creation time and carry no guessable sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderId(ulid::Ulid);

impl OrderId {
    pub fn generate() -> Self {
        Self(ulid::Ulid::new())
    }

    /// A stable bucket in `0..buckets`, from the id's random bits, to spread index writes.
    pub fn bucket(self, buckets: u32) -> u32 {
        (self.0.random() % u128::from(buckets.max(1))) as u32
    }

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        ulid::Ulid::from_string(value)
            .map(Self)
            .map_err(|_| Invalid::new("order-id-malformed", "an order id is a 26-character ULID"))
    }
}

impl TryFrom<String> for OrderId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).map_err(|e| e.detail)
    }
}

impl From<OrderId> for String {
    fn from(value: OrderId) -> String {
        value.to_string()
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Units of one SKU on one order line: at least one, at most the per-line limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX_PER_LINE: u32 = 999;

    pub fn new(value: i64) -> Result<Self, Invalid> {
        if value <= 0 {
            return Err(Invalid::new("quantity-not-positive", "quantity must be at least 1"));
        }
        if value > i64::from(Self::MAX_PER_LINE) {
            return Err(Invalid::new(
                "quantity-too-large",
                format!("quantity may be at most {} per line", Self::MAX_PER_LINE),
            ));
        }
        Ok(Self(value as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = String;
    fn try_from(value: u32) -> Result<Self, String> {
        Self::new(i64::from(value)).map_err(|e| e.detail)
    }
}

impl From<Quantity> for u32 {
    fn from(value: Quantity) -> u32 {
        value.0
    }
}

/// ISO 4217 currencies the shops trade in, with their minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Currency {
    CNY,
    HKD,
    USD,
    EUR,
    GBP,
    JPY,
    KRW,
    SGD,
}

impl Currency {
    /// The ISO 4217 code, as events and providers spell it.
    pub fn code(self) -> &'static str {
        match self {
            Self::CNY => "CNY",
            Self::HKD => "HKD",
            Self::USD => "USD",
            Self::EUR => "EUR",
            Self::GBP => "GBP",
            Self::JPY => "JPY",
            Self::KRW => "KRW",
            Self::SGD => "SGD",
        }
    }

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        Ok(match value {
            "CNY" => Self::CNY,
            "HKD" => Self::HKD,
            "USD" => Self::USD,
            "EUR" => Self::EUR,
            "GBP" => Self::GBP,
            "JPY" => Self::JPY,
            "KRW" => Self::KRW,
            "SGD" => Self::SGD,
            _ => {
                return Err(Invalid::new(
                    "currency-unknown",
                    "currency must be one of CNY, HKD, USD, EUR, GBP, JPY, KRW, SGD",
                ))
            }
        })
    }

    /// Digits after the decimal point: 2 for CNY (fen), 0 for JPY.
    pub fn minor_unit_exponent(self) -> u32 {
        match self {
            Self::JPY | Self::KRW => 0,
            _ => 2,
        }
    }
}

/// An amount in minor units (fen, cents) of one currency. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    /// Largest unit price or total accepted: 100 million major units, far above any real order
    /// and far below overflow when multiplied by a line quantity.
    pub const MAX_MINOR: i64 = 10_000_000_000;

    pub fn new(minor: i64, currency: Currency) -> Result<Self, Invalid> {
        if minor < 0 {
            return Err(Invalid::new("amount-negative", "amounts cannot be negative"));
        }
        if minor > Self::MAX_MINOR {
            return Err(Invalid::new("amount-too-large", "amount is above the accepted maximum"));
        }
        Ok(Self { minor, currency })
    }
}

/// A phone number in E.164 form (`+8613800138000`). A bare 11-digit mainland mobile number is
/// accepted and normalised; anything else must carry its country code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let compact: String = value.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
        let malformed = || {
            Invalid::new(
                "phone-malformed",
                "phone must be E.164 (+ country code and number) or an 11-digit mainland mobile",
            )
        };
        let e164 = if let Some(digits) = compact.strip_prefix('+') {
            if !(8..=15).contains(&digits.len())
                || !digits.chars().all(|c| c.is_ascii_digit())
                || digits.starts_with('0')
            {
                return Err(malformed());
            }
            compact.clone()
        } else if compact.len() == 11 && compact.chars().all(|c| c.is_ascii_digit()) {
            format!("+86{compact}")
        } else {
            return Err(malformed());
        };
        // Mainland mobiles are 1[3-9] followed by nine digits.
        if let Some(national) = e164.strip_prefix("+86") {
            let b = national.as_bytes();
            if national.len() != 11 || b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
                return Err(malformed());
            }
        }
        Ok(Self(e164))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the last four digits hidden, for logs and low-privilege views.
    pub fn masked(&self) -> String {
        let keep = self.0.len().saturating_sub(4);
        format!("{}{}", "*".repeat(keep), &self.0[keep..])
    }
}

impl TryFrom<String> for Phone {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).map_err(|e| e.detail)
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> String {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_must_be_positive_and_bounded() {
        assert_eq!(Quantity::new(0).unwrap_err().code, "quantity-not-positive");
        assert_eq!(Quantity::new(-3).unwrap_err().code, "quantity-not-positive");
        assert_eq!(Quantity::new(1000).unwrap_err().code, "quantity-too-large");
        assert_eq!(Quantity::new(999).unwrap().get(), 999);
    }

    #[test]
    fn mainland_mobile_is_normalised_to_e164() {
        assert_eq!(Phone::parse("138 0013 8000").unwrap().as_str(), "+8613800138000");
        assert_eq!(Phone::parse("+8613800138000").unwrap().as_str(), "+8613800138000");
        assert_eq!(Phone::parse("+14155550123").unwrap().as_str(), "+14155550123");
    }

    #[test]
    fn malformed_phones_are_refused() {
        for bad in ["", "12345", "23800138000", "+86123", "+861280013800", "phone", "+0123456789", "+86138001380001"] {
            assert_eq!(Phone::parse(bad).unwrap_err().code, "phone-malformed", "{bad}");
        }
    }

    #[test]
    fn phone_masks_all_but_last_four_digits() {
        assert_eq!(Phone::parse("13800138000").unwrap().masked(), "**********8000");
    }

    #[test]
    fn skus_are_tokens() {
        assert!(Sku::parse("TEA-GREEN_250g.v2").is_ok());
        assert_eq!(Sku::parse("tea leaves").unwrap_err().code, "sku-malformed");
        assert_eq!(Sku::parse("").unwrap_err().code, "sku-malformed");
        assert_eq!(Sku::parse(&"x".repeat(65)).unwrap_err().code, "sku-malformed");
    }

    #[test]
    fn unknown_currency_is_refused() {
        assert_eq!(Currency::parse("XYZ").unwrap_err().code, "currency-unknown");
        assert_eq!(Currency::parse("cny").unwrap_err().code, "currency-unknown");
        assert_eq!(Currency::parse("JPY").unwrap().minor_unit_exponent(), 0);
    }

    #[test]
    fn money_is_non_negative_and_bounded() {
        assert_eq!(Money::new(-1, Currency::CNY).unwrap_err().code, "amount-negative");
        assert_eq!(Money::new(Money::MAX_MINOR + 1, Currency::CNY).unwrap_err().code, "amount-too-large");
    }

    #[test]
    fn order_ids_are_ulids() {
        let id = OrderId::generate();
        assert_eq!(OrderId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(OrderId::parse("42").unwrap_err().code, "order-id-malformed");
    }
}
