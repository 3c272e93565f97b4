//! The catalogue: what each SKU is and what it costs. Intake prices every line from here, never
//! from the request (a "zero-yuan purchase" is a price the client made up), and fulfilment will
//! read weights and volumes from here. Staff keep it; every save is a new version, audited.

use super::request::{FieldError, RequestedLine};
use super::values::{Currency, Invalid, Money, Sku};
use super::OrderLine;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use time::OffsetDateTime;

/// What sets an item apart for the rules that read the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemFlag {
    /// Gold, phones, laptops: worth reselling, so worth stealing; the risk rule for goods bought
    /// without history reads it.
    HighValueResaleable,
    /// Batches and expiry dates are checked at picking.
    Perishable,
    /// A category excluded from no-reason returns (opened underwear, say).
    NoReasonReturnExcluded,
}

/// A price for a while (a promotion), in each currency it is offered in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sale {
    pub prices: BTreeMap<Currency, i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueItem {
    pub sku: Sku,
    pub name: String,
    /// Minor units per currency the item is sold in.
    pub prices: BTreeMap<Currency, i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale: Option<Sale>,
    pub category: String,
    pub weight_grams: u32,
    pub volume_cm3: u32,
    #[serde(default)]
    pub flags: BTreeSet<ItemFlag>,
    /// The barcode printed on the units, which pickers scan; the SKU itself when none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    /// How often the item comes back (percent of units sold), as after-sales reports it: above
    /// the fulfilment policy's threshold a second person checks the parcel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_rate_pct: Option<u32>,
    /// 0 before the first save; each save names the version it replaces.
    #[serde(default)]
    pub version: u32,
}

/// The price a line was sent with is not the price now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentPrice {
    pub sku: Sku,
    pub unit_price_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PricingError {
    /// Lines whose SKU the catalogue does not have, or not in this currency.
    Unknown(Vec<FieldError>),
    /// The client showed the customer other prices: these are the current ones.
    Changed(Vec<CurrentPrice>),
    TooLarge(FieldError),
}

fn price_ok(minor: i64) -> bool {
    (1..=Money::MAX_MINOR).contains(&minor)
}

impl CatalogueItem {
    /// The unit price in `currency` at `now`: the sale price while its window is open.
    pub fn price_at(&self, currency: Currency, now: OffsetDateTime) -> Option<i64> {
        let on_sale = self.sale.as_ref().filter(|s| s.from <= now && now < s.until);
        on_sale.and_then(|s| s.prices.get(&currency)).or_else(|| self.prices.get(&currency)).copied()
    }

    /// What is wrong with an item staff want to save: the first problem, with its field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let bad =
            |field: &str, code: &'static str, detail: &str| Err(FieldError::new(field, Invalid::new(code, detail)));
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return bad("name", "name-invalid", "a name of 1 to 200 characters");
        }
        if self.category.trim().is_empty() || self.category.chars().count() > 100 {
            return bad("category", "category-invalid", "a category of 1 to 100 characters");
        }
        if self.prices.is_empty() {
            return bad("prices", "prices-missing", "at least one currency's price");
        }
        if let Some((currency, _)) = self.prices.iter().find(|(_, p)| !price_ok(**p)) {
            return bad(&format!("prices.{currency:?}"), "price-invalid", "a price in minor units, above zero");
        }
        if let Some(sale) = &self.sale {
            if sale.until <= sale.from {
                return bad("sale.until", "sale-window-invalid", "the sale ends after it starts");
            }
            if let Some((currency, _)) =
                sale.prices.iter().find(|(c, p)| !price_ok(**p) || !self.prices.contains_key(c))
            {
                return bad(
                    &format!("sale.prices.{currency:?}"),
                    "price-invalid",
                    "a sale price for a currency the item is sold in",
                );
            }
        }
        if self.weight_grams == 0 || self.volume_cm3 == 0 {
            return bad("weight_grams", "size-invalid", "weight and volume above zero");
        }
        let barcode_ok = |b: &String| !b.is_empty() && b.len() <= 64 && b.bytes().all(|c| c.is_ascii_graphic());
        if self.barcode.as_ref().is_some_and(|b| !barcode_ok(b)) {
            return bad("barcode", "barcode-invalid", "1 to 64 printable characters");
        }
        if self.return_rate_pct.is_some_and(|r| r > 100) {
            return bad("return_rate_pct", "return-rate-invalid", "a percentage, 0 to 100");
        }
        Ok(())
    }
}

/// Price the requested lines from the catalogue at `now`: every line's unit price and the total,
/// with checked arithmetic. A line sent with a price must be sent with the current one.
pub fn price_lines(
    requested: &[RequestedLine],
    catalogue: &HashMap<Sku, CatalogueItem>,
    currency: Currency,
    now: OffsetDateTime,
) -> Result<(Vec<OrderLine>, Money), PricingError> {
    let mut unknown = Vec::new();
    let mut changed = Vec::new();
    let mut lines = Vec::with_capacity(requested.len());
    for (i, line) in requested.iter().enumerate() {
        let Some(price) = catalogue.get(&line.sku).and_then(|item| item.price_at(currency, now)) else {
            let detail = format!("{} is not in the catalogue in {currency:?}", line.sku);
            unknown.push(FieldError::new(format!("lines[{i}].sku"), Invalid::new("sku-unknown", detail)));
            continue;
        };
        if line.expected_unit_price_minor.is_some_and(|expected| expected != price) {
            changed.push(CurrentPrice { sku: line.sku.clone(), unit_price_minor: price });
        }
        lines.push(OrderLine {
            sku: line.sku.clone(),
            quantity: line.quantity,
            unit_price_minor: price,
            warehouse: None,
            stock_shard: 0,
        });
    }
    if !unknown.is_empty() {
        return Err(PricingError::Unknown(unknown));
    }
    if !changed.is_empty() {
        return Err(PricingError::Changed(changed));
    }
    let total = lines
        .iter()
        .try_fold(0i64, |sum, l| sum.checked_add(l.unit_price_minor.checked_mul(i64::from(l.quantity.get()))?))
        .and_then(|minor| Money::new(minor, currency).ok());
    let too_large = || {
        PricingError::TooLarge(FieldError::new(
            "lines",
            Invalid::new("amount-too-large", "the order total is above the accepted maximum"),
        ))
    };
    Ok((lines, total.ok_or_else(too_large)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Quantity;
    use time::macros::datetime;

    fn tea() -> CatalogueItem {
        CatalogueItem {
            sku: Sku::parse("TEA").unwrap(),
            name: "Green tea 250 g".into(),
            prices: BTreeMap::from([(Currency::CNY, 4_900)]),
            sale: Some(Sale {
                prices: BTreeMap::from([(Currency::CNY, 3_900)]),
                from: datetime!(2026-11-11 00:00 UTC),
                until: datetime!(2026-11-12 00:00 UTC),
            }),
            category: "tea".into(),
            weight_grams: 260,
            volume_cm3: 900,
            flags: BTreeSet::new(),
            barcode: None,
            return_rate_pct: None,
            version: 1,
        }
    }

    fn line(sku: &str, quantity: i64, expected: Option<i64>) -> RequestedLine {
        RequestedLine {
            sku: Sku::parse(sku).unwrap(),
            quantity: Quantity::new(quantity).unwrap(),
            expected_unit_price_minor: expected,
        }
    }

    #[test]
    fn lines_are_priced_from_the_catalogue_and_the_sale_price_holds_only_in_its_window() {
        let catalogue = HashMap::from([(Sku::parse("TEA").unwrap(), tea())]);
        let (lines, total) =
            price_lines(&[line("TEA", 3, None)], &catalogue, Currency::CNY, datetime!(2026-11-11 12:00 UTC)).unwrap();
        assert_eq!((lines[0].unit_price_minor, total.minor), (3_900, 11_700));
        let (_, total) =
            price_lines(&[line("TEA", 3, None)], &catalogue, Currency::CNY, datetime!(2026-11-12 00:00 UTC)).unwrap();
        assert_eq!(total.minor, 14_700, "the sale ended");
    }

    #[test]
    fn a_made_up_price_is_refused_with_the_current_one_and_an_unknown_sku_names_its_line() {
        let catalogue = HashMap::from([(Sku::parse("TEA").unwrap(), tea())]);
        let now = datetime!(2026-11-20 12:00 UTC);
        assert_eq!(
            price_lines(&[line("TEA", 3, Some(1))], &catalogue, Currency::CNY, now),
            Err(PricingError::Changed(vec![CurrentPrice { sku: Sku::parse("TEA").unwrap(), unit_price_minor: 4_900 }]))
        );
        assert!(price_lines(&[line("TEA", 1, Some(4_900))], &catalogue, Currency::CNY, now).is_ok());
        match price_lines(&[line("TEA", 1, None), line("GOLD", 1, None)], &catalogue, Currency::CNY, now) {
            Err(PricingError::Unknown(errors)) => assert_eq!(errors[0].field, "lines[1].sku"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(
                price_lines(&[line("TEA", 1, None)], &catalogue, Currency::USD, now),
                Err(PricingError::Unknown(_))
            ),
            "not sold in USD"
        );
    }

    #[test]
    fn staff_cannot_save_a_free_or_negative_price_or_an_inverted_sale() {
        let mut free = tea();
        free.prices.insert(Currency::CNY, 0);
        assert_eq!(free.validate().unwrap_err().field, "prices.CNY");
        let mut inverted = tea();
        inverted.sale.as_mut().unwrap().until = datetime!(2026-11-10 00:00 UTC);
        assert_eq!(inverted.validate().unwrap_err().code, "sale-window-invalid");
        assert!(tea().validate().is_ok());
    }
}
