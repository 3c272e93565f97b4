//! How long stock is held for an unpaid order. Operations tune it as data (staff route
//! `/admin/hold-policy`), without a redeploy: shorter for flash-sale SKUs and promotion
//! channels, its own rule for cash on delivery. The shortest applicable rule wins, because a
//! hoarded flash-sale unit on a long hold is exactly what the sources warn about.

use super::order::PaymentMethod;
use super::values::{ChannelId, Invalid, Sku};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::Duration;

/// Highest risk score the auto-approval threshold may name.
pub const MAX_SCORE: u32 = 1_000;

/// Longest hold anyone may configure: a week.
pub const MAX_HOLD_MINUTES: u32 = 7 * 24 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldPolicy {
    /// Online orders, unless a channel or SKU rule is shorter.
    pub default_minutes: u32,
    /// Cash-on-delivery orders: held awaiting review instead of payment.
    pub cash_on_delivery_minutes: u32,
    #[serde(default)]
    pub channels: BTreeMap<ChannelId, u32>,
    #[serde(default)]
    pub skus: BTreeMap<Sku, u32>,
    /// Cash-on-delivery orders whose risk score is below this are approved at reservation,
    /// without review; none: staff review every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cod_auto_approve_below_score: Option<u32>,
}

impl HoldPolicy {
    pub fn new(default_minutes: u32, cash_on_delivery_minutes: u32) -> Self {
        Self {
            default_minutes,
            cash_on_delivery_minutes,
            channels: BTreeMap::new(),
            skus: BTreeMap::new(),
            cod_auto_approve_below_score: None,
        }
    }

    /// From the deployment's configured durations, bounded to what a policy allows.
    pub fn from_durations(online: Duration, cash_on_delivery: Duration) -> Self {
        let minutes = |d: Duration| d.whole_minutes().clamp(1, i64::from(MAX_HOLD_MINUTES)) as u32;
        Self::new(minutes(online), minutes(cash_on_delivery))
    }

    /// Every rule between one minute and a week; the error names the rule.
    pub fn validate(&self) -> Result<(), (String, Invalid)> {
        let check = |field: String, minutes: u32| {
            if (1..=MAX_HOLD_MINUTES).contains(&minutes) {
                Ok(())
            } else {
                Err((
                    field,
                    Invalid::new("hold-minutes-out-of-range", format!("a hold is 1 to {MAX_HOLD_MINUTES} minutes")),
                ))
            }
        };
        check("default_minutes".into(), self.default_minutes)?;
        check("cash_on_delivery_minutes".into(), self.cash_on_delivery_minutes)?;
        for (channel, minutes) in &self.channels {
            check(format!("channels.{channel}"), *minutes)?;
        }
        for (sku, minutes) in &self.skus {
            check(format!("skus.{sku}"), *minutes)?;
        }
        if self.cod_auto_approve_below_score.is_some_and(|score| !(1..=MAX_SCORE).contains(&score)) {
            let detail = format!("a score of 1 to {MAX_SCORE}");
            return Err(("cod_auto_approve_below_score".into(), Invalid::new("score-out-of-range", detail)));
        }
        Ok(())
    }

    /// Whether a cash-on-delivery order with `risk_score` goes straight to fulfilment. An order
    /// scored by no rule (an old one) is reviewed.
    pub fn approves_cod(&self, risk_score: Option<u32>) -> bool {
        matches!((self.cod_auto_approve_below_score, risk_score), (Some(below), Some(score)) if score < below)
    }

    pub fn hold_for<'a>(
        &self,
        payment: PaymentMethod,
        channel: &ChannelId,
        skus: impl IntoIterator<Item = &'a Sku>,
    ) -> Duration {
        let minutes = match payment {
            PaymentMethod::CashOnDelivery => self.cash_on_delivery_minutes,
            PaymentMethod::Online => skus
                .into_iter()
                .filter_map(|sku| self.skus.get(sku).copied())
                .chain(self.channels.get(channel).copied())
                .fold(self.default_minutes, u32::min),
        };
        Duration::minutes(i64::from(minutes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HoldPolicy {
        let mut p = HoldPolicy::new(30, 1440);
        p.channels.insert(ChannelId::parse("promo").unwrap(), 20);
        p.skus.insert(Sku::parse("FLASH").unwrap(), 15);
        p
    }

    fn hold(payment: PaymentMethod, channel: &str, skus: &[&str]) -> i64 {
        let skus: Vec<Sku> = skus.iter().map(|s| Sku::parse(s).unwrap()).collect();
        policy().hold_for(payment, &ChannelId::parse(channel).unwrap(), &skus).whole_minutes()
    }

    #[test]
    fn an_ordinary_online_order_gets_the_default() {
        assert_eq!(hold(PaymentMethod::Online, "app", &["TEA"]), 30);
    }

    #[test]
    fn the_shortest_matching_rule_wins() {
        assert_eq!(hold(PaymentMethod::Online, "promo", &["TEA"]), 20);
        assert_eq!(hold(PaymentMethod::Online, "promo", &["TEA", "FLASH"]), 15);
    }

    #[test]
    fn cash_on_delivery_follows_its_own_rule() {
        assert_eq!(hold(PaymentMethod::CashOnDelivery, "promo", &["FLASH"]), 1440);
    }

    #[test]
    fn rules_outside_a_minute_to_a_week_are_refused_by_name() {
        let mut p = policy();
        p.skus.insert(Sku::parse("BAD").unwrap(), 0);
        assert_eq!(p.validate().unwrap_err().0, "skus.BAD");
        assert!(policy().validate().is_ok());
    }
}
