//! The fulfilment policy, as data operations keep: the couriers and what each will carry where,
//! at what cost and speed; insurance and double-check thresholds; how long a customer has to
//! answer a shortage and what applies if they do not; the shelf life a perishable unit must have
//! left; how soon a paid order must leave. Courier choice is a pure function of it.

use super::values::{CourierId, Invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speed {
    Standard,
    Express,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourierRule {
    pub id: CourierId,
    pub speed: Speed,
    /// Provinces served; empty for everywhere.
    #[serde(default)]
    pub regions: Vec<String>,
    pub max_weight_grams: u64,
    pub max_volume_cm3: u64,
    pub base_cost_minor: i64,
    /// Added per started kilogram.
    pub per_kg_cost_minor: i64,
    /// Suspended couriers are skipped (logistics suspends the worst by KPI).
    #[serde(default)]
    pub suspended: bool,
}

/// What applies to a shortage the customer did not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortageDefault {
    Refund,
    Wait,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfilmentPolicy {
    pub couriers: Vec<CourierRule>,
    /// Parcels worth more than this are insured.
    pub insure_above_minor: i64,
    /// Shipments worth more than this need a second person's check.
    pub double_check_above_minor: i64,
    /// A SKU returned more often than this (percent) needs a second person's check.
    pub double_check_return_rate_pct: u32,
    pub shortage_answer_hours: u32,
    pub shortage_default: ShortageDefault,
    /// How long a default "wait" waits, and the longest a customer may choose.
    pub backorder_default_days: u32,
    pub backorder_max_days: u32,
    /// A perishable unit must have at least this many days left at picking.
    pub min_shelf_life_days: u32,
    /// A paid order's promised dispatch time: this many hours after it became a shipment.
    pub dispatch_within_hours: u32,
    /// 0 before the first save; each save names the version it replaces.
    #[serde(default)]
    pub version: u32,
}

impl Default for FulfilmentPolicy {
    /// The policy in force until operations save one: one standard courier everywhere.
    fn default() -> Self {
        Self {
            couriers: vec![CourierRule {
                id: CourierId::parse("standard-post").expect("valid id"),
                speed: Speed::Standard,
                regions: Vec::new(),
                max_weight_grams: 30_000,
                max_volume_cm3: 200_000,
                base_cost_minor: 800,
                per_kg_cost_minor: 200,
                suspended: false,
            }],
            insure_above_minor: 200_000,
            double_check_above_minor: 500_000,
            double_check_return_rate_pct: 20,
            shortage_answer_hours: 24,
            shortage_default: ShortageDefault::Refund,
            backorder_default_days: 7,
            backorder_max_days: 30,
            min_shelf_life_days: 30,
            dispatch_within_hours: 24,
            version: 0,
        }
    }
}

impl FulfilmentPolicy {
    /// When a shipment made (or sent back to picking) at `now` is promised to leave.
    pub fn dispatch_by(&self, now: time::OffsetDateTime) -> time::OffsetDateTime {
        now + time::Duration::hours(i64::from(self.dispatch_within_hours))
    }

    /// Errors name the field: `couriers[1].max_weight_grams`.
    pub fn validate(&self) -> Result<(), (String, Invalid)> {
        let bad = |field: String, detail: &str| Err((field, Invalid::new("policy-invalid", detail)));
        if self.couriers.len() > 50 {
            return bad("couriers".into(), "at most 50 couriers");
        }
        for (i, c) in self.couriers.iter().enumerate() {
            if self.couriers[..i].iter().any(|other| other.id == c.id) {
                return bad(format!("couriers[{i}].id"), "courier ids are unique");
            }
            if c.max_weight_grams == 0 || c.max_volume_cm3 == 0 {
                return bad(format!("couriers[{i}].max_weight_grams"), "limits are positive");
            }
            if c.base_cost_minor < 0 || c.per_kg_cost_minor < 0 || c.base_cost_minor > 10_000_000 {
                return bad(format!("couriers[{i}].base_cost_minor"), "costs are 0 to 10,000,000");
            }
        }
        if !(1..=720).contains(&self.shortage_answer_hours) {
            return bad("shortage_answer_hours".into(), "1 to 720 hours");
        }
        if !(1..=90).contains(&self.backorder_max_days)
            || !(1..=self.backorder_max_days).contains(&self.backorder_default_days)
        {
            return bad("backorder_default_days".into(), "1 to backorder_max_days (at most 90)");
        }
        if self.min_shelf_life_days > 3650 || !(1..=720).contains(&self.dispatch_within_hours) {
            return bad("dispatch_within_hours".into(), "1 to 720 hours; shelf life at most 3650 days");
        }
        if self.insure_above_minor < 0 || self.double_check_above_minor < 0 || self.double_check_return_rate_pct > 100 {
            return bad("double_check_above_minor".into(), "thresholds are not negative; rates 0 to 100");
        }
        Ok(())
    }

    /// The courier for a parcel, with the reasons: the customer's choice when it can carry the
    /// parcel, else the cheapest that can (faster on a tie). `None` when none can.
    pub fn choose_courier(&self, parcel: &Parcel<'_>) -> Result<CourierChoice, Vec<String>> {
        let mut reasons = Vec::new();
        let mut eligible = Vec::new();
        for courier in &self.couriers {
            match self.refusal(courier, parcel) {
                Some(why) => reasons.push(format!("{} skipped: {why}", courier.id)),
                None => eligible.push((courier, cost(courier, parcel.weight_grams))),
            }
        }
        let chosen = match parcel.customer_choice {
            Some(wanted) => match eligible.iter().find(|(c, _)| &c.id == wanted) {
                Some(found) => {
                    reasons.push(format!("{wanted}: the customer's choice"));
                    Some(*found)
                }
                None => {
                    reasons.push(format!("{wanted}: the customer's choice cannot take this parcel"));
                    None
                }
            },
            None => None,
        };
        let chosen = chosen.or_else(|| {
            let cheapest = eligible.iter().min_by_key(|(c, cost)| (*cost, std::cmp::Reverse(c.speed))).copied();
            if let Some((c, cost)) = cheapest {
                reasons.push(format!("{}: cheapest able ({cost})", c.id));
            }
            cheapest
        });
        let Some((courier, cost_minor)) = chosen else {
            reasons.push("no courier can take this parcel".into());
            return Err(reasons);
        };
        let insured = parcel.value_minor > self.insure_above_minor;
        if insured {
            reasons.push(format!("insured: worth more than {}", self.insure_above_minor));
        }
        Ok(CourierChoice { courier: courier.id.clone(), speed: courier.speed, cost_minor, insured, reasons })
    }

    fn refusal(&self, courier: &CourierRule, parcel: &Parcel<'_>) -> Option<String> {
        if courier.suspended {
            return Some("suspended".into());
        }
        if !courier.regions.is_empty() && !courier.regions.iter().any(|r| r == parcel.province) {
            return Some(format!("does not serve {}", parcel.province));
        }
        if parcel.weight_grams > courier.max_weight_grams {
            return Some(format!("{} g over its {} g", parcel.weight_grams, courier.max_weight_grams));
        }
        if parcel.volume_cm3 > courier.max_volume_cm3 {
            return Some(format!("{} cm3 over its {} cm3", parcel.volume_cm3, courier.max_volume_cm3));
        }
        None
    }
}

fn cost(courier: &CourierRule, weight_grams: u64) -> i64 {
    let kilograms = i64::try_from(weight_grams.div_ceil(1000)).unwrap_or(i64::MAX);
    courier.base_cost_minor.saturating_add(courier.per_kg_cost_minor.saturating_mul(kilograms))
}

/// What courier choice looks at.
#[derive(Debug, Clone)]
pub struct Parcel<'a> {
    pub weight_grams: u64,
    pub volume_cm3: u64,
    pub province: &'a str,
    pub value_minor: i64,
    pub customer_choice: Option<&'a CourierId>,
}

/// The courier chosen for a shipment and why; stored on the shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourierChoice {
    pub courier: CourierId,
    pub speed: Speed,
    pub cost_minor: i64,
    pub insured: bool,
    pub reasons: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn courier(id: &str, speed: Speed, base: i64) -> CourierRule {
        CourierRule {
            id: CourierId::parse(id).unwrap(),
            speed,
            regions: Vec::new(),
            max_weight_grams: 20_000,
            max_volume_cm3: 100_000,
            base_cost_minor: base,
            per_kg_cost_minor: 100,
            suspended: false,
        }
    }

    fn parcel(weight: u64, value: i64, choice: Option<&CourierId>) -> Parcel<'_> {
        Parcel {
            weight_grams: weight,
            volume_cm3: 1_000,
            province: "Zhejiang",
            value_minor: value,
            customer_choice: choice,
        }
    }

    fn policy(couriers: Vec<CourierRule>) -> FulfilmentPolicy {
        FulfilmentPolicy { couriers, ..FulfilmentPolicy::default() }
    }

    #[test]
    fn the_cheapest_courier_able_to_carry_the_parcel_is_chosen_with_its_reasons() {
        let mut heavy_only = courier("cheap-small", Speed::Standard, 100);
        heavy_only.max_weight_grams = 1_000;
        let p = policy(vec![heavy_only, courier("zto", Speed::Standard, 700), courier("sf", Speed::Express, 1200)]);
        let choice = p.choose_courier(&parcel(2_500, 10_000, None)).unwrap();
        assert_eq!(choice.courier.as_str(), "zto");
        assert_eq!(choice.cost_minor, 700 + 3 * 100, "three started kilograms");
        assert!(choice.reasons.iter().any(|r| r.starts_with("cheap-small skipped: 2500 g")), "{:?}", choice.reasons);
        assert!(!choice.insured);
    }

    #[test]
    fn the_customers_choice_wins_when_it_can_carry_the_parcel_and_a_suspended_courier_never_does() {
        let sf = CourierId::parse("sf").unwrap();
        let p = policy(vec![courier("zto", Speed::Standard, 700), courier("sf", Speed::Express, 1200)]);
        assert_eq!(p.choose_courier(&parcel(500, 100, Some(&sf))).unwrap().courier, sf);
        let mut suspended = p.clone();
        suspended.couriers[1].suspended = true;
        let choice = suspended.choose_courier(&parcel(500, 100, Some(&sf))).unwrap();
        assert_eq!(choice.courier.as_str(), "zto");
        assert!(choice.reasons.iter().any(|r| r == "sf skipped: suspended"), "{:?}", choice.reasons);
    }

    #[test]
    fn regions_limit_couriers_and_no_able_courier_is_an_error_with_reasons() {
        let mut local = courier("local", Speed::Standard, 100);
        local.regions = vec!["Shanghai".into()];
        let p = policy(vec![local]);
        let reasons = p.choose_courier(&parcel(500, 100, None)).unwrap_err();
        assert_eq!(reasons[0], "local skipped: does not serve Zhejiang");
    }

    #[test]
    fn parcels_above_the_threshold_are_insured() {
        let p = policy(vec![courier("zto", Speed::Standard, 700)]);
        assert!(p.choose_courier(&parcel(500, p.insure_above_minor + 1, None)).unwrap().insured);
        assert!(!p.choose_courier(&parcel(500, p.insure_above_minor, None)).unwrap().insured);
    }

    #[test]
    fn a_policy_with_duplicate_couriers_or_impossible_limits_is_refused_naming_the_field() {
        let p = policy(vec![courier("zto", Speed::Standard, 700), courier("zto", Speed::Express, 1)]);
        assert_eq!(p.validate().unwrap_err().0, "couriers[1].id");
        let q = FulfilmentPolicy { backorder_default_days: 31, backorder_max_days: 30, ..FulfilmentPolicy::default() };
        assert_eq!(q.validate().unwrap_err().0, "backorder_default_days");
        assert!(FulfilmentPolicy::default().validate().is_ok());
    }
}
