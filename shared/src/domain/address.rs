//! Shipping addresses. A parcel must be deliverable from the address alone: a street address
//! needs a house number, a parcel-locker address needs the locker's number. Vague addresses are
//! refused at intake rather than discovered by the courier.

use super::values::Invalid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressKind {
    Street,
    ParcelLocker,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub recipient: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub house_number: Option<String>,
    /// The rest: where the parcel goes, what the table keeps in the clear (the recipient, street
    /// and house number are sealed with the order's personal data).
    #[serde(flatten)]
    pub destination: Destination,
}

/// An order's address as the table keeps it in the clear: enough to route the parcel, choose
/// the warehouse and count by region, and nothing that names a person or a door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub kind: AddressKind,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Province or state; selects the regional warehouse.
    pub province: String,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locker_station: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locker_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

/// The raw address as a client sends it; every field optional so that each missing one can be
/// named in the error.
#[derive(Debug, Default, Deserialize)]
pub struct RawAddress {
    pub kind: Option<String>,
    pub recipient: Option<String>,
    pub country: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub street: Option<String>,
    pub house_number: Option<String>,
    pub locker_station: Option<String>,
    pub locker_number: Option<String>,
    pub postal_code: Option<String>,
}

/// Words that name a parcel locker; a "street" address made of them is a locker in disguise.
const LOCKER_WORDS: [&str; 6] = ["快递柜", "丰巢", "自提柜", "智能柜", "parcel locker", "locker"];

const MAX_PART: usize = 200;

fn text(value: &Option<String>, field: &'static str) -> Result<Option<String>, (&'static str, Invalid)> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > MAX_PART => {
            Err((field, Invalid::new("address-part-too-long", format!("at most {MAX_PART} characters"))))
        }
        Some(v) if v.chars().any(char::is_control) => {
            Err((field, Invalid::new("address-part-malformed", "control characters are not allowed")))
        }
        Some(v) => Ok(Some(v.to_owned())),
    }
}

fn required(value: &Option<String>, field: &'static str) -> Result<String, (&'static str, Invalid)> {
    text(value, field)?.ok_or((field, Invalid::new("field-missing", format!("{field} is required"))))
}

impl Address {
    /// Validate a raw address; the error names the offending sub-field (`house_number`).
    pub fn parse(raw: &RawAddress) -> Result<Self, (&'static str, Invalid)> {
        let kind = match raw.kind.as_deref() {
            None => return Err(("kind", Invalid::new("field-missing", "kind is required: street or parcel_locker"))),
            Some("street") => AddressKind::Street,
            Some("parcel_locker") => AddressKind::ParcelLocker,
            Some(_) => {
                return Err(("kind", Invalid::new("address-kind-unknown", "kind must be street or parcel_locker")))
            }
        };
        let country = required(&raw.country, "country")?;
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(("country", Invalid::new("country-malformed", "country is an ISO 3166 alpha-2 code")));
        }
        let address = Self {
            recipient: required(&raw.recipient, "recipient")?,
            street: text(&raw.street, "street")?,
            house_number: text(&raw.house_number, "house_number")?,
            destination: Destination {
                kind,
                country,
                province: required(&raw.province, "province")?,
                city: required(&raw.city, "city")?,
                district: text(&raw.district, "district")?,
                locker_station: text(&raw.locker_station, "locker_station")?,
                locker_number: text(&raw.locker_number, "locker_number")?,
                postal_code: text(&raw.postal_code, "postal_code")?,
            },
        };
        address.refuse_vague()?;
        Ok(address)
    }

    fn refuse_vague(&self) -> Result<(), (&'static str, Invalid)> {
        let vague = |detail: &str| Invalid::new("address-vague", detail.to_owned());
        let destination = &self.destination;
        match destination.kind {
            AddressKind::Street => {
                let street =
                    self.street.as_deref().ok_or(("street", Invalid::new("field-missing", "street is required")))?;
                let lowered = street.to_lowercase();
                if LOCKER_WORDS.iter().any(|w| lowered.contains(w)) {
                    return Err((
                        "kind",
                        vague("this street names a parcel locker: send kind parcel_locker with its locker number"),
                    ));
                }
                let house = self.house_number.as_deref().unwrap_or("");
                if !house.chars().any(|c| c.is_ascii_digit()) {
                    return Err(("house_number", vague("a street address needs a house number")));
                }
            }
            AddressKind::ParcelLocker => {
                if destination.locker_station.is_none() {
                    return Err(("locker_station", vague("a parcel-locker address needs the locker station")));
                }
                let number = destination.locker_number.as_deref().unwrap_or("");
                if !number.chars().any(|c| c.is_ascii_digit()) {
                    return Err(("locker_number", vague("a parcel-locker address needs the locker number")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn street() -> RawAddress {
        RawAddress {
            kind: Some("street".into()),
            recipient: Some("Li Lei".into()),
            country: Some("CN".into()),
            province: Some("Zhejiang".into()),
            city: Some("Hangzhou".into()),
            street: Some("Wensan Road".into()),
            house_number: Some("88".into()),
            ..RawAddress::default()
        }
    }

    #[test]
    fn a_complete_street_address_is_accepted() {
        assert_eq!(Address::parse(&street()).unwrap().house_number.as_deref(), Some("88"));
    }

    #[test]
    fn a_street_address_without_house_number_is_vague() {
        let raw = RawAddress { house_number: None, ..street() };
        let (field, err) = Address::parse(&raw).unwrap_err();
        assert_eq!((field, err.code), ("house_number", "address-vague"));
    }

    #[test]
    fn a_parcel_locker_without_its_number_is_vague() {
        let raw = RawAddress {
            kind: Some("parcel_locker".into()),
            locker_station: Some("Hive Box, Block 3".into()),
            ..street()
        };
        let (field, err) = Address::parse(&raw).unwrap_err();
        assert_eq!((field, err.code), ("locker_number", "address-vague"));
    }

    #[test]
    fn a_locker_written_as_a_street_is_vague() {
        let raw = RawAddress { street: Some("小区门口丰巢".into()), ..street() };
        let (field, err) = Address::parse(&raw).unwrap_err();
        assert_eq!((field, err.code), ("kind", "address-vague"));
    }

    #[test]
    fn missing_city_is_named() {
        let raw = RawAddress { city: None, ..street() };
        let (field, err) = Address::parse(&raw).unwrap_err();
        assert_eq!((field, err.code), ("city", "field-missing"));
    }
}
