//! What the shop knows of a customer that risk control trusts: the loyalty tier, kept by staff
//! (audited), never taken from an order body.

use super::values::{CustomerId, Invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerProfile {
    pub customer_id: CustomerId,
    /// Loyalty tier, L1 → 1 … L9 → 9; none for a customer the shop has not ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<u8>,
    /// 0 before the first save; each save names the version it replaces.
    #[serde(default)]
    pub version: u32,
}

/// `L1`…`L9` → 1…9.
pub fn parse_tier(text: &str) -> Result<u8, Invalid> {
    text.strip_prefix('L')
        .and_then(|d| d.parse::<u8>().ok())
        .filter(|d| (1..=9).contains(d))
        .ok_or_else(|| Invalid::new("customer-tier-malformed", "a tier is L1 to L9"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_l1_to_l9() {
        assert_eq!(parse_tier("L4"), Ok(4));
        for bad in ["L0", "L10", "4", "VIP", ""] {
            assert!(parse_tier(bad).is_err(), "{bad}");
        }
    }
}
