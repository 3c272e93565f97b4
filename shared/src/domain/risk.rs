//! Risk control: explainable scored rules, as data. Operations edit the rule document (kinds,
//! points, parameters, thresholds) over the staff API; every order is scored against it and
//! keeps the list of rules that fired with their points.
//!
//! Dispositions by score, thresholds from the document (defaults from the sources): below
//! `verify` accept; `verify` to `review` step-up verification; above `review` up to `freeze`
//! manual review; above `freeze` frozen. VIP customers (tier `vip_min_tier` or above, or on the
//! allow-list) take the fast lane whatever the score.

use super::address::AddressKind;
use super::order::PaymentMethod;
use super::values::Invalid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Scores from here up to `review` (inclusive) need step-up verification.
    pub verify: u32,
    /// Scores above this, up to `freeze` (inclusive), go to manual review.
    pub review: u32,
    /// Scores above this are frozen.
    pub freeze: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListField {
    Customer,
    Phone,
    Address,
    Device,
    Ip,
}

impl ListField {
    /// Lists of personal values hold keyed fingerprints, never the values.
    pub fn is_personal(self) -> bool {
        matches!(self, Self::Phone | Self::Address | Self::Ip)
    }
}

/// What a rule looks at. Each kind reads only the order and the context the store gathers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The order's customer, phone, address, device or IP is on the list. Phones, addresses and
    /// IPs are listed as keyed fingerprints (`fp:…`), as the order's are compared.
    Blacklist { field: ListField, values: Vec<String> },
    /// The phone number starts with one of these (E.164) prefixes: virtual operators' ranges.
    VirtualPhone { prefixes: Vec<String> },
    /// More than `more_than` orders by the customer within the window (this one included).
    OrdersPerCustomer { window_minutes: u32, more_than: u32 },
    /// At least `at_least` orders from the device within the window (this one included).
    OrdersPerDevice { window_minutes: u32, at_least: u32 },
    /// More than `more_than` customer accounts seen on the device within a day.
    AccountsPerDevice { more_than: u32 },
    /// During the night (local hours `from_hour` to `to_hour`), at least `at_least` orders by
    /// the customer within the last hour.
    NightBatch { from_hour: u8, to_hour: u8, utc_offset_hours: i8, at_least: u32 },
    /// A customer with history ships to an address never used before (addresses used before,
    /// gifts to family included, are known).
    NewShippingAddress,
    /// A customer with history pays with a card never used before.
    NewPaymentCard,
    /// The total is above this many minor units.
    AmountAbove { minor: i64 },
    /// The total is above `multiple` times the customer's average, once they have `min_orders`.
    AmountAboveAverage { multiple: u32, min_orders: u32 },
    /// Goods the catalogue flags high-value resaleable, from a customer without history.
    GoodsWithoutHistory {},
    /// A parcel locker in a remote province, from a customer without history.
    RemoteLockerWithoutHistory { provinces: Vec<String> },
    /// This month's cancelled orders over orders above `rate_percent`, once `min_orders`.
    CancelRateAbove { rate_percent: u32, min_orders: u32 },
    /// This month's refunds over orders above `rate_percent`, once `min_orders`.
    RefundRateAbove { rate_percent: u32, min_orders: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub points: u32,
    pub when: Condition,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskRules {
    /// Set by the store on save; a save names the version it edits.
    #[serde(default)]
    pub version: u32,
    pub thresholds: Thresholds,
    /// Customers at this tier (L4 → 4) or above take the fast lane.
    pub vip_min_tier: u8,
    #[serde(default)]
    pub vip_customers: Vec<String>,
    pub rules: Vec<Rule>,
}

/// What the store knows about the customer and device when an order arrives, before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskContext {
    /// Orders by the customer in each frequency rule's window, by window minutes (sliding estimate).
    pub customer_orders: Vec<(u32, u32)>,
    pub device_orders: Vec<(u32, u32)>,
    /// Distinct customers seen on the device today, this one included.
    pub device_accounts: u32,
    pub previous_orders: u32,
    pub previous_total_minor: i64,
    pub known_addresses: BTreeSet<String>,
    pub known_cards: BTreeSet<String>,
    pub month_orders: u32,
    pub month_cancels: u32,
    pub month_refunds: u32,
}

/// The order as risk sees it.
#[derive(Debug, Clone)]
pub struct RiskSubject<'a> {
    pub customer_id: &'a str,
    pub tier: Option<u8>,
    /// In the clear, for the virtual operators' ranges; the lists match its fingerprint.
    pub phone: &'a str,
    pub phone_fingerprint: &'a str,
    pub address_fingerprint: &'a str,
    pub address_kind: AddressKind,
    pub province: &'a str,
    pub device_id: &'a str,
    pub client_ip_fingerprint: Option<&'a str>,
    pub card_fingerprint: Option<&'a str>,
    pub payment_method: PaymentMethod,
    pub total_minor: i64,
    /// The order's SKUs the catalogue flags high-value resaleable.
    pub resaleable_skus: Vec<&'a str>,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Accept,
    /// Above the threshold, but a VIP: accepted.
    FastLane,
    StepUp,
    Review,
    Freeze,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    pub rule_id: String,
    pub points: u32,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub score: u32,
    pub fired: Vec<Fired>,
    pub disposition: Disposition,
    pub rules_version: u32,
}

impl Thresholds {
    pub fn disposition(&self, score: u32) -> Disposition {
        if score < self.verify {
            Disposition::Accept
        } else if score <= self.review {
            Disposition::StepUp
        } else if score <= self.freeze {
            Disposition::Review
        } else {
            Disposition::Freeze
        }
    }
}

impl RiskRules {
    /// Whether a rule blacklists the customer: after-sales sends their refunds to review.
    pub fn lists_customer(&self, customer_id: &str) -> bool {
        self.rules.iter().any(|rule| match &rule.when {
            Condition::Blacklist { field: ListField::Customer, values } => values.iter().any(|v| v == customer_id),
            _ => false,
        })
    }

    /// The rules of the source documents, used until operations save their own.
    pub fn defaults() -> Self {
        let rule = |id: &str, points, when| Rule { id: id.to_owned(), points, when };
        Self {
            version: 0,
            thresholds: Thresholds { verify: 80, review: 100, freeze: 120 },
            vip_min_tier: 4,
            vip_customers: Vec::new(),
            rules: vec![
                rule("device-burst", 50, Condition::OrdersPerDevice { window_minutes: 5, at_least: 5 }),
                rule("new-address", 30, Condition::NewShippingAddress),
                rule(
                    "virtual-phone",
                    40,
                    Condition::VirtualPhone {
                        prefixes: ["+86162", "+86165", "+86167", "+86170", "+86171"].map(String::from).to_vec(),
                    },
                ),
                rule("customer-burst", 40, Condition::OrdersPerCustomer { window_minutes: 60, more_than: 5 }),
                rule("shared-device", 40, Condition::AccountsPerDevice { more_than: 3 }),
                rule(
                    "night-batch",
                    30,
                    Condition::NightBatch { from_hour: 0, to_hour: 6, utc_offset_hours: 8, at_least: 3 },
                ),
                rule("new-card", 20, Condition::NewPaymentCard),
                rule("large-amount", 101, Condition::AmountAbove { minor: 500_000 }),
                rule("above-average", 40, Condition::AmountAboveAverage { multiple: 3, min_orders: 3 }),
                rule("resaleable-first-order", 40, Condition::GoodsWithoutHistory {}),
                rule(
                    "remote-locker-first-order",
                    30,
                    Condition::RemoteLockerWithoutHistory {
                        provinces: vec!["Xinjiang".into(), "Tibet".into(), "Qinghai".into()],
                    },
                ),
                rule("cancel-rate", 30, Condition::CancelRateAbove { rate_percent: 50, min_orders: 4 }),
                rule("refund-rate", 40, Condition::RefundRateAbove { rate_percent: 30, min_orders: 4 }),
            ],
        }
    }

    /// Refuse a document that cannot mean what its author intended; the error names the rule.
    pub fn validate(&self) -> Result<(), (String, Invalid)> {
        let bad = |field: String, detail: &str| Err((field, Invalid::new("rule-invalid", detail.to_owned())));
        let t = self.thresholds;
        if !(t.verify <= t.review && t.review <= t.freeze) || t.verify == 0 {
            return bad("thresholds".into(), "thresholds must satisfy 0 < verify <= review <= freeze");
        }
        if self.vip_min_tier == 0 || self.vip_min_tier > 9 {
            return bad("vip_min_tier".into(), "vip_min_tier is 1 to 9");
        }
        let mut ids = BTreeSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |f: &str| format!("rules[{i}].{f}");
            if rule.id.is_empty() || rule.id.len() > 64 || !ids.insert(rule.id.clone()) {
                return bad(at("id"), "rule ids are 1 to 64 characters and unique");
            }
            if rule.points == 0 || rule.points > 1_000 {
                return bad(at("points"), "points are 1 to 1000");
            }
            let window_ok = |w: u32| (1..=24 * 60).contains(&w);
            let ok = match &rule.when {
                Condition::Blacklist { values, .. } => !values.is_empty(),
                Condition::VirtualPhone { prefixes } => {
                    !prefixes.is_empty() && prefixes.iter().all(|p| p.starts_with('+'))
                }
                Condition::OrdersPerCustomer { window_minutes, .. }
                | Condition::OrdersPerDevice { window_minutes, .. } => window_ok(*window_minutes),
                Condition::AccountsPerDevice { more_than } => *more_than >= 1,
                Condition::NightBatch { from_hour, to_hour, utc_offset_hours, at_least } => {
                    *from_hour < 24 && *to_hour <= 24 && (-12..=14).contains(utc_offset_hours) && *at_least >= 1
                }
                Condition::NewShippingAddress | Condition::NewPaymentCard => true,
                Condition::AmountAbove { minor } => *minor > 0,
                Condition::AmountAboveAverage { multiple, min_orders } => {
                    (1..=1_000).contains(multiple) && *min_orders >= 1
                }
                Condition::GoodsWithoutHistory {} => true,
                Condition::RemoteLockerWithoutHistory { provinces } => !provinces.is_empty(),
                Condition::CancelRateAbove { rate_percent, min_orders }
                | Condition::RefundRateAbove { rate_percent, min_orders } => *rate_percent <= 100 && *min_orders >= 1,
            };
            if !ok {
                return bad(at("when"), "the rule's parameters are out of range");
            }
        }
        Ok(())
    }

    /// The rules with every value of a personal list (phone, address, IP) given to `fingerprint`,
    /// which keeps a fingerprint as it is and fingerprints a clear value; the error names the value.
    pub fn fingerprint_lists(
        mut self,
        fingerprint: impl Fn(ListField, &str) -> Result<String, Invalid>,
    ) -> Result<Self, (String, Invalid)> {
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let Condition::Blacklist { field, values } = &mut rule.when else { continue };
            if !field.is_personal() {
                continue;
            }
            for (j, value) in values.iter_mut().enumerate() {
                *value = fingerprint(*field, value).map_err(|e| (format!("rules[{i}].when.values[{j}]"), e))?;
            }
        }
        Ok(self)
    }

    /// The windows (minutes) the customer and device counters must be read for.
    pub fn windows(&self) -> (BTreeSet<u32>, BTreeSet<u32>) {
        let mut customer = BTreeSet::from([60]); // night batches look at the last hour
        let mut device = BTreeSet::new();
        for rule in &self.rules {
            match rule.when {
                Condition::OrdersPerCustomer { window_minutes, .. } => {
                    customer.insert(window_minutes);
                }
                Condition::OrdersPerDevice { window_minutes, .. } => {
                    device.insert(window_minutes);
                }
                _ => {}
            }
        }
        (customer, device)
    }

    pub fn is_vip(&self, customer_id: &str, tier: Option<u8>) -> bool {
        tier.is_some_and(|t| t >= self.vip_min_tier) || self.vip_customers.iter().any(|c| c == customer_id)
    }

    /// Score an order. `context` counts what came before this order; this order is added here.
    pub fn assess(&self, order: &RiskSubject<'_>, context: &RiskContext) -> Assessment {
        let count = |list: &[(u32, u32)], window: u32| {
            list.iter().find(|(w, _)| *w == window).map(|(_, n)| *n).unwrap_or(0) + 1
        };
        let has_history = context.previous_orders > 0;
        let mut fired = Vec::new();
        for rule in &self.rules {
            let reason: Option<String> = match &rule.when {
                Condition::Blacklist { field, values } => {
                    let value = match field {
                        ListField::Customer => Some(order.customer_id),
                        ListField::Phone => Some(order.phone_fingerprint),
                        ListField::Address => Some(order.address_fingerprint),
                        ListField::Device => Some(order.device_id),
                        ListField::Ip => order.client_ip_fingerprint,
                    };
                    value
                        .filter(|v| values.iter().any(|x| x == v))
                        .map(|_| format!("{field:?} is blacklisted").to_lowercase())
                }
                Condition::VirtualPhone { prefixes } => prefixes
                    .iter()
                    .find(|p| order.phone.starts_with(p.as_str()))
                    .map(|p| format!("phone in virtual range {p}")),
                Condition::OrdersPerCustomer { window_minutes, more_than } => {
                    let n = count(&context.customer_orders, *window_minutes);
                    (n > *more_than).then(|| format!("{n} orders by the customer in {window_minutes} min"))
                }
                Condition::OrdersPerDevice { window_minutes, at_least } => {
                    let n = count(&context.device_orders, *window_minutes);
                    (n >= *at_least).then(|| format!("{n} orders from the device in {window_minutes} min"))
                }
                Condition::AccountsPerDevice { more_than } => (context.device_accounts > *more_than)
                    .then(|| format!("{} accounts on the device today", context.device_accounts)),
                Condition::NightBatch { from_hour, to_hour, utc_offset_hours, at_least } => {
                    let local = order
                        .at
                        .to_offset(time::UtcOffset::from_hms(*utc_offset_hours, 0, 0).unwrap_or(time::UtcOffset::UTC));
                    let hour = local.hour();
                    let at_night = if from_hour <= to_hour {
                        hour >= *from_hour && hour < *to_hour
                    } else {
                        hour >= *from_hour || hour < *to_hour
                    };
                    let n = count(&context.customer_orders, 60);
                    (at_night && n >= *at_least).then(|| format!("{n} orders in the last hour at {hour:02}:00 local"))
                }
                Condition::NewShippingAddress => (has_history
                    && !context.known_addresses.contains(order.address_fingerprint))
                .then(|| "ships to an address the customer never used".to_owned()),
                Condition::NewPaymentCard => order
                    .card_fingerprint
                    .filter(|card| has_history && !context.known_cards.contains(*card))
                    .map(|_| "pays with a card the customer never used".to_owned()),
                Condition::AmountAbove { minor } => {
                    (order.total_minor > *minor).then(|| format!("total {} above {minor}", order.total_minor))
                }
                Condition::AmountAboveAverage { multiple, min_orders } => {
                    let average = context.previous_total_minor / i64::from(context.previous_orders.max(1));
                    let limit = average.saturating_mul(i64::from(*multiple));
                    (context.previous_orders >= *min_orders && order.total_minor > limit).then(|| {
                        format!("total {} above {multiple}× the customer's average {average}", order.total_minor)
                    })
                }
                Condition::GoodsWithoutHistory {} => (!has_history)
                    .then(|| order.resaleable_skus.first())
                    .flatten()
                    .map(|sku| format!("resaleable {sku} on a first order")),
                Condition::RemoteLockerWithoutHistory { provinces } => (!has_history
                    && order.address_kind == AddressKind::ParcelLocker
                    && provinces.iter().any(|p| p.eq_ignore_ascii_case(order.province)))
                .then(|| format!("parcel locker in {} on a first order", order.province)),
                Condition::CancelRateAbove { rate_percent, min_orders } => {
                    rate_above(context.month_cancels, context.month_orders, *rate_percent, *min_orders)
                        .map(|r| format!("{r}% of this month's orders cancelled"))
                }
                Condition::RefundRateAbove { rate_percent, min_orders } => {
                    rate_above(context.month_refunds, context.month_orders, *rate_percent, *min_orders)
                        .map(|r| format!("{r}% of this month's orders refunded"))
                }
            };
            if let Some(reason) = reason {
                fired.push(Fired { rule_id: rule.id.clone(), points: rule.points, reason });
            }
        }
        let score = fired.iter().map(|f| f.points).sum();
        let mut disposition = self.thresholds.disposition(score);
        if disposition != Disposition::Accept && self.is_vip(order.customer_id, order.tier) {
            disposition = Disposition::FastLane;
        }
        Assessment { score, fired, disposition, rules_version: self.version }
    }
}

fn rate_above(part: u32, whole: u32, rate_percent: u32, min_orders: u32) -> Option<u32> {
    if whole < min_orders || whole == 0 {
        return None;
    }
    let rate = part * 100 / whole;
    (rate > rate_percent).then_some(rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn subject<'a>() -> RiskSubject<'a> {
        RiskSubject {
            customer_id: "cust-1",
            tier: None,
            phone: "+8613800138000",
            phone_fingerprint: "fp-phone",
            address_fingerprint: "addr-home",
            address_kind: AddressKind::Street,
            province: "Zhejiang",
            device_id: "dev-1",
            client_ip_fingerprint: Some("fp-ip"),
            card_fingerprint: None,
            payment_method: PaymentMethod::Online,
            total_minor: 10_000,
            resaleable_skus: vec![],
            at: datetime!(2026-11-21 06:00 UTC), // 14:00 in Shanghai
        }
    }

    fn regular() -> RiskContext {
        RiskContext {
            previous_orders: 10,
            previous_total_minor: 100_000,
            known_addresses: BTreeSet::from(["addr-home".to_owned(), "addr-mum".to_owned()]),
            device_accounts: 1,
            month_orders: 2,
            ..RiskContext::default()
        }
    }

    fn only(rule: Condition, points: u32) -> RiskRules {
        RiskRules { rules: vec![Rule { id: "r".into(), points, when: rule }], ..RiskRules::defaults() }
    }

    fn fires(rule: Condition, order: &RiskSubject<'_>, context: &RiskContext) -> bool {
        !only(rule, 10).assess(order, context).fired.is_empty()
    }

    #[test]
    fn a_regular_order_scores_nothing_and_is_accepted() {
        let a = RiskRules::defaults().assess(&subject(), &regular());
        assert_eq!((a.score, a.disposition), (0, Disposition::Accept), "{a:?}");
    }

    #[test]
    fn thresholds_split_at_the_documented_boundaries() {
        let t = RiskRules::defaults().thresholds;
        let cases = [
            (79, Disposition::Accept),
            (80, Disposition::StepUp),
            (100, Disposition::StepUp),
            (101, Disposition::Review),
            (120, Disposition::Review),
            (121, Disposition::Freeze),
        ];
        for (score, expected) in cases {
            assert_eq!(t.disposition(score), expected, "score {score}");
            let a = only(Condition::AmountAbove { minor: 1 }, score).assess(&subject(), &regular());
            assert_eq!((a.score, a.disposition), (score, expected), "assessed at {score}");
        }
    }

    #[test]
    fn blacklists_match_each_field() {
        let mut order = subject();
        for (field, value) in [
            (ListField::Customer, "cust-1"),
            (ListField::Phone, "fp-phone"),
            (ListField::Address, "addr-home"),
            (ListField::Device, "dev-1"),
            (ListField::Ip, "fp-ip"),
        ] {
            assert!(fires(Condition::Blacklist { field, values: vec![value.into()] }, &order, &regular()), "{field:?}");
            assert!(
                !fires(Condition::Blacklist { field, values: vec!["other".into()] }, &order, &regular()),
                "{field:?}"
            );
        }
        order.client_ip_fingerprint = None;
        assert!(!fires(
            Condition::Blacklist { field: ListField::Ip, values: vec!["fp-ip".into()] },
            &order,
            &regular()
        ));
    }

    #[test]
    fn virtual_phone_ranges_fire() {
        let rule = Condition::VirtualPhone { prefixes: vec!["+86170".into()] };
        let mut order = subject();
        assert!(!fires(rule.clone(), &order, &regular()));
        order.phone = "+8617012345678";
        assert!(fires(rule, &order, &regular()));
    }

    #[test]
    fn frequency_rules_count_this_order_too() {
        let per_customer = Condition::OrdersPerCustomer { window_minutes: 60, more_than: 5 };
        let per_device = Condition::OrdersPerDevice { window_minutes: 5, at_least: 5 };
        let mut context = regular();
        context.customer_orders = vec![(60, 4)];
        context.device_orders = vec![(5, 3)];
        assert!(!fires(per_customer.clone(), &subject(), &context), "5 in the hour is allowed");
        assert!(!fires(per_device.clone(), &subject(), &context), "4 from the device");
        context.customer_orders = vec![(60, 5)];
        context.device_orders = vec![(5, 4)];
        assert!(fires(per_customer, &subject(), &context), "the 6th in the hour");
        assert!(fires(per_device, &subject(), &context), "the 5th from the device in 5 minutes");
    }

    #[test]
    fn many_accounts_on_one_device_fire() {
        let rule = Condition::AccountsPerDevice { more_than: 3 };
        let mut context = regular();
        context.device_accounts = 3;
        assert!(!fires(rule.clone(), &subject(), &context));
        context.device_accounts = 4;
        assert!(fires(rule, &subject(), &context));
    }

    #[test]
    fn night_batches_fire_only_at_night() {
        let rule = Condition::NightBatch { from_hour: 0, to_hour: 6, utc_offset_hours: 8, at_least: 3 };
        let mut context = regular();
        context.customer_orders = vec![(60, 2)];
        let mut order = subject();
        assert!(!fires(rule.clone(), &order, &context), "14:00 local");
        order.at = datetime!(2026-11-20 18:30 UTC); // 02:30 in Shanghai
        assert!(fires(rule.clone(), &order, &context));
        context.customer_orders = vec![(60, 1)];
        assert!(!fires(rule, &order, &context), "two orders is not a batch");
    }

    #[test]
    fn a_new_address_fires_but_a_known_family_address_does_not() {
        let mut order = subject();
        order.address_fingerprint = "addr-mum";
        assert!(!fires(Condition::NewShippingAddress, &order, &regular()), "gifts to a known family address");
        order.address_fingerprint = "addr-new";
        assert!(fires(Condition::NewShippingAddress, &order, &regular()));
        assert!(
            !fires(Condition::NewShippingAddress, &order, &RiskContext::default()),
            "a first order changes nothing"
        );
    }

    #[test]
    fn a_new_card_fires_for_a_customer_with_history() {
        let mut order = subject();
        order.card_fingerprint = Some("card-9");
        assert!(fires(Condition::NewPaymentCard, &order, &regular()));
        let mut context = regular();
        context.known_cards.insert("card-9".into());
        assert!(!fires(Condition::NewPaymentCard, &order, &context));
    }

    #[test]
    fn amounts_fire_above_a_limit_and_above_the_average() {
        let mut order = subject();
        order.total_minor = 500_001;
        assert!(fires(Condition::AmountAbove { minor: 500_000 }, &order, &regular()));
        order.total_minor = 500_000;
        assert!(!fires(Condition::AmountAbove { minor: 500_000 }, &order, &regular()));
        let above_average = Condition::AmountAboveAverage { multiple: 3, min_orders: 3 };
        order.total_minor = 30_001; // average is 10,000
        assert!(fires(above_average.clone(), &order, &regular()));
        order.total_minor = 30_000;
        assert!(!fires(above_average, &order, &regular()));
    }

    #[test]
    fn resaleable_goods_and_remote_lockers_fire_without_history() {
        let goods = Condition::GoodsWithoutHistory {};
        let mut order = subject();
        assert!(!fires(goods.clone(), &order, &RiskContext::default()), "nothing resaleable");
        order.resaleable_skus = vec!["GOLD-BAR-10G"];
        assert!(fires(goods.clone(), &order, &RiskContext::default()));
        assert!(!fires(goods, &order, &regular()));
        let locker = Condition::RemoteLockerWithoutHistory { provinces: vec!["Tibet".into()] };
        order.address_kind = AddressKind::ParcelLocker;
        order.province = "Tibet";
        assert!(fires(locker.clone(), &order, &RiskContext::default()));
        assert!(!fires(locker, &order, &regular()));
    }

    #[test]
    fn history_rates_fire_above_their_share_of_this_months_orders() {
        let refunds = Condition::RefundRateAbove { rate_percent: 30, min_orders: 4 };
        let mut context = regular();
        context.month_orders = 10;
        context.month_refunds = 3;
        assert!(!fires(refunds.clone(), &subject(), &context), "30% is not above 30%");
        context.month_refunds = 4;
        assert!(fires(refunds.clone(), &subject(), &context));
        context.month_orders = 3;
        assert!(!fires(refunds, &subject(), &context), "too few orders to judge");
        let cancels = Condition::CancelRateAbove { rate_percent: 50, min_orders: 4 };
        context.month_orders = 4;
        context.month_cancels = 3;
        assert!(fires(cancels, &subject(), &context));
    }

    #[test]
    fn the_sources_case_twelve_orders_from_one_device_to_new_addresses_with_a_virtual_phone() {
        let rules = RiskRules::defaults();
        let mut context = regular();
        context.device_orders = vec![(5, 11)];
        context.customer_orders = vec![(60, 11)];
        let mut order = subject();
        order.address_fingerprint = "addr-elsewhere";
        order.phone = "+8617012345678";
        let a = rules.assess(&order, &context);
        let ids: Vec<&str> = a.fired.iter().map(|f| f.rule_id.as_str()).collect();
        assert!(
            ids.contains(&"device-burst") && ids.contains(&"new-address") && ids.contains(&"virtual-phone"),
            "{ids:?}"
        );
        assert!(a.score > 100, "{a:?}");
        assert!(matches!(a.disposition, Disposition::Review | Disposition::Freeze));
    }

    #[test]
    fn vips_take_the_fast_lane_whatever_the_score() {
        let rules = only(Condition::AmountAbove { minor: 1 }, 500);
        let mut order = subject();
        order.tier = Some(4);
        assert_eq!(rules.assess(&order, &regular()).disposition, Disposition::FastLane);
        order.tier = Some(3);
        assert_eq!(rules.assess(&order, &regular()).disposition, Disposition::Freeze);
        let allow = RiskRules { vip_customers: vec!["cust-1".into()], ..rules };
        assert_eq!(allow.assess(&order, &regular()).disposition, Disposition::FastLane);
    }

    #[test]
    fn documents_that_cannot_work_are_refused_naming_the_rule() {
        assert!(RiskRules::defaults().validate().is_ok());
        let mut bad = RiskRules::defaults();
        bad.thresholds.review = 70;
        assert_eq!(bad.validate().unwrap_err().0, "thresholds");
        let mut bad = RiskRules::defaults();
        bad.rules[2].points = 0;
        assert_eq!(bad.validate().unwrap_err().0, "rules[2].points");
        let mut bad = RiskRules::defaults();
        bad.rules[1].id = bad.rules[0].id.clone();
        assert_eq!(bad.validate().unwrap_err().0, "rules[1].id");
        let mut bad = RiskRules::defaults();
        bad.rules[0].when = Condition::OrdersPerDevice { window_minutes: 0, at_least: 5 };
        assert_eq!(bad.validate().unwrap_err().0, "rules[0].when");
        let text = r#"{"thresholds":{"verify":80,"review":100,"freeze":120},"vip_min_tier":4,"rules":[{"id":"x","points":5,"when":{"kind":"telepathy"}}]}"#;
        assert!(serde_json::from_str::<RiskRules>(text).is_err(), "unknown kinds do not parse");
    }

    #[test]
    fn only_personal_lists_are_fingerprinted_and_a_bad_value_is_named() {
        let lists = |field, values: &[&str]| Rule {
            id: format!("{field:?}"),
            points: 10,
            when: Condition::Blacklist { field, values: values.iter().map(|v| v.to_string()).collect() },
        };
        let rules = RiskRules {
            rules: vec![lists(ListField::Customer, &["cust-1"]), lists(ListField::Phone, &["a", "b"])],
            ..RiskRules::defaults()
        };
        let marked = rules.clone().fingerprint_lists(|_, v| Ok(format!("fp({v})"))).unwrap();
        assert_eq!(marked.rules[0], rules.rules[0]);
        assert_eq!(
            marked.rules[1].when,
            Condition::Blacklist { field: ListField::Phone, values: vec!["fp(a)".into(), "fp(b)".into()] }
        );
        let refused =
            rules.fingerprint_lists(
                |_, v| if v == "b" { Err(Invalid::new("phone-invalid", "no")) } else { Ok(v.into()) },
            );
        assert_eq!(refused.unwrap_err().0, "rules[1].when.values[1]");
    }
}
