//! The logistics policy, as data operations keep: alert thresholds, where a parcel may be left,
//! how often parcels are polled and how fast each courier may be asked, the delivery promise by
//! speed, and how couriers are scored and suspended at month end. Ranking is a pure function of
//! it and the month's counters.

use super::fulfilment_policy::Speed;
use super::tracking::DeliveryPlace;
use super::values::{CourierId, Invalid};
use serde::{Deserialize, Serialize};

/// How hard one courier's tracking API may be pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourierLimits {
    pub courier: CourierId,
    pub polls_per_second: u32,
    pub polls_per_day: u32,
    /// The courier pushes updates: its parcels are polled only as a back-up.
    #[serde(default)]
    pub pushes: bool,
}

/// How a courier's month scores: higher is better. Weights are per mille so the data stays whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiScoring {
    pub on_time_weight: i64,
    pub loss_weight: i64,
    pub complaint_weight: i64,
    /// The bottom this percent of ranked couriers are suspended (the source documents: 10).
    pub suspend_bottom_pct: u32,
    /// A courier with fewer parcels handed over in the month is not ranked.
    pub min_parcels: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticsPolicy {
    pub not_collected_hours: u32,
    pub no_update_hours: u32,
    pub claim_resolve_hours: u32,
    /// Where a parcel may be left without it being an abnormal sign-off, unless its customer chose.
    pub chosen_places: Vec<DeliveryPlace>,
    pub poll_every_minutes: u32,
    /// For couriers that push.
    pub poll_pushing_every_minutes: u32,
    /// Parcels one poller run looks at, at most.
    pub max_parcels_per_run: u32,
    /// Couriers without an entry get `default_limits`' rates.
    pub courier_limits: Vec<CourierLimits>,
    pub default_polls_per_second: u32,
    pub default_polls_per_day: u32,
    pub standard_delivery_days: u32,
    pub express_delivery_days: u32,
    pub scoring: KpiScoring,
    /// 0 before the first save; each save names the version it replaces.
    #[serde(default)]
    pub version: u32,
}

impl Default for LogisticsPolicy {
    fn default() -> Self {
        Self {
            not_collected_hours: 72,
            no_update_hours: 24,
            claim_resolve_hours: 48,
            chosen_places: vec![DeliveryPlace::Door],
            poll_every_minutes: 120,
            poll_pushing_every_minutes: 720,
            max_parcels_per_run: 500,
            courier_limits: Vec::new(),
            default_polls_per_second: 10,
            default_polls_per_day: 50_000,
            standard_delivery_days: 4,
            express_delivery_days: 2,
            scoring: KpiScoring {
                on_time_weight: 1000,
                loss_weight: 5000,
                complaint_weight: 2000,
                suspend_bottom_pct: 10,
                min_parcels: 20,
            },
            version: 0,
        }
    }
}

impl LogisticsPolicy {
    pub fn limits_of(&self, courier: &CourierId) -> CourierLimits {
        self.courier_limits.iter().find(|l| &l.courier == courier).cloned().unwrap_or_else(|| CourierLimits {
            courier: courier.clone(),
            polls_per_second: self.default_polls_per_second,
            polls_per_day: self.default_polls_per_day,
            pushes: false,
        })
    }

    pub fn poll_interval(&self, courier: &CourierId) -> time::Duration {
        let minutes =
            if self.limits_of(courier).pushes { self.poll_pushing_every_minutes } else { self.poll_every_minutes };
        time::Duration::minutes(i64::from(minutes))
    }

    pub fn delivery_days(&self, speed: Speed) -> time::Duration {
        let days = match speed {
            Speed::Standard => self.standard_delivery_days,
            Speed::Express => self.express_delivery_days,
        };
        time::Duration::days(i64::from(days))
    }

    /// Errors name the field.
    pub fn validate(&self) -> Result<(), (String, Invalid)> {
        let bad = |field: &str, detail: &str| Err((field.to_owned(), Invalid::new("policy-invalid", detail)));
        let hours = [
            ("not_collected_hours", self.not_collected_hours),
            ("no_update_hours", self.no_update_hours),
            ("claim_resolve_hours", self.claim_resolve_hours),
        ];
        for (field, value) in hours {
            if !(1..=24 * 30).contains(&value) {
                return bad(field, "1 to 720 hours");
            }
        }
        for (field, value) in [
            ("poll_every_minutes", self.poll_every_minutes),
            ("poll_pushing_every_minutes", self.poll_pushing_every_minutes),
        ] {
            if !(1..=7 * 24 * 60).contains(&value) {
                return bad(field, "1 minute to 7 days");
            }
        }
        if !(1..=5_000).contains(&self.max_parcels_per_run) {
            return bad("max_parcels_per_run", "1 to 5000");
        }
        if self.default_polls_per_second == 0 || self.default_polls_per_day == 0 {
            return bad("default_polls_per_second", "rates are at least 1");
        }
        for (i, limits) in self.courier_limits.iter().enumerate() {
            if limits.polls_per_second == 0 || limits.polls_per_day == 0 {
                return bad(&format!("courier_limits[{i}]"), "rates are at least 1");
            }
            if self.courier_limits[..i].iter().any(|l| l.courier == limits.courier) {
                return bad(&format!("courier_limits[{i}].courier"), "one entry per courier");
            }
        }
        if !(1..=60).contains(&self.standard_delivery_days) || !(1..=60).contains(&self.express_delivery_days) {
            return bad("standard_delivery_days", "1 to 60 days");
        }
        if self.scoring.suspend_bottom_pct > 50 {
            return bad("scoring.suspend_bottom_pct", "at most 50 percent");
        }
        let weights = [self.scoring.on_time_weight, self.scoring.loss_weight, self.scoring.complaint_weight];
        if weights.iter().any(|w| !(0..=100_000).contains(w)) {
            return bad("scoring", "weights are 0 to 100000");
        }
        Ok(())
    }
}

/// A courier's month, as counted from events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourierMonth {
    pub courier: CourierId,
    pub month: String,
    #[serde(default)]
    pub handed_over: u64,
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub delivered_on_time: u64,
    #[serde(default)]
    pub lost: u64,
    #[serde(default)]
    pub complaints: u64,
}

/// Rates in per mille of the parcels they are of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kpis {
    pub courier: CourierId,
    pub month: String,
    pub handed_over: u64,
    pub on_time_per_mille: u64,
    pub loss_per_mille: u64,
    pub complaint_per_mille: u64,
    pub score: i64,
}

fn per_mille(part: u64, whole: u64) -> u64 {
    part.saturating_mul(1000).checked_div(whole).unwrap_or(0)
}

impl CourierMonth {
    /// On time of delivered; lost of delivered and lost; complaints of delivered.
    pub fn kpis(&self, scoring: &KpiScoring) -> Kpis {
        let on_time = per_mille(self.delivered_on_time, self.delivered);
        let loss = per_mille(self.lost, self.delivered + self.lost);
        let complaint = per_mille(self.complaints, self.delivered);
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let score = (scoring.on_time_weight.saturating_mul(as_i64(on_time)))
            .saturating_sub(scoring.loss_weight.saturating_mul(as_i64(loss)))
            .saturating_sub(scoring.complaint_weight.saturating_mul(as_i64(complaint)))
            / 1000;
        Kpis {
            courier: self.courier.clone(),
            month: self.month.clone(),
            handed_over: self.handed_over,
            on_time_per_mille: on_time,
            loss_per_mille: loss,
            complaint_per_mille: complaint,
            score,
        }
    }
}

/// The couriers to suspend after `months` (one month's counters): of those with enough parcels,
/// the bottom `suspend_bottom_pct` percent by score (rounded down), lowest first; ties by id so
/// the answer does not depend on read order.
pub fn bottom_couriers(months: &[CourierMonth], scoring: &KpiScoring) -> Vec<CourierId> {
    let mut ranked: Vec<Kpis> =
        months.iter().filter(|m| m.handed_over >= scoring.min_parcels).map(|m| m.kpis(scoring)).collect();
    ranked.sort_by(|a, b| a.score.cmp(&b.score).then_with(|| a.courier.as_str().cmp(b.courier.as_str())));
    let count = ranked.len() * scoring.suspend_bottom_pct as usize / 100;
    ranked.into_iter().take(count).map(|k| k.courier).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(
        courier: &str,
        handed_over: u64,
        delivered: u64,
        on_time: u64,
        lost: u64,
        complaints: u64,
    ) -> CourierMonth {
        CourierMonth {
            courier: CourierId::parse(courier).unwrap(),
            month: "2026-10".into(),
            handed_over,
            delivered,
            delivered_on_time: on_time,
            lost,
            complaints,
        }
    }

    #[test]
    fn the_bottom_tenth_by_score_is_suspended_and_small_couriers_are_not_ranked() {
        let scoring = LogisticsPolicy::default().scoring;
        let mut months: Vec<CourierMonth> = (0..10).map(|i| month(&format!("c{i}"), 100, 100, 90 + i, 0, 0)).collect();
        months[7] = month("c7", 100, 95, 60, 5, 3);
        months.push(month("tiny", 5, 1, 0, 4, 1));
        assert_eq!(bottom_couriers(&months, &scoring), vec![CourierId::parse("c7").unwrap()]);
        assert!(bottom_couriers(&months[..9], &scoring).is_empty(), "10 % of 9 couriers is none");
    }

    #[test]
    fn rates_are_of_the_parcels_they_describe() {
        let kpis = month("sf", 10, 8, 6, 2, 1).kpis(&LogisticsPolicy::default().scoring);
        assert_eq!((kpis.on_time_per_mille, kpis.loss_per_mille, kpis.complaint_per_mille), (750, 200, 125));
        assert_eq!(kpis.score, 750 - 5 * 200 - 2 * 125);
    }

    #[test]
    fn a_policy_with_a_zero_rate_is_refused_naming_the_field() {
        let mut policy = LogisticsPolicy::default();
        policy.courier_limits.push(CourierLimits {
            courier: CourierId::parse("sf").unwrap(),
            polls_per_second: 0,
            polls_per_day: 10,
            pushes: true,
        });
        assert_eq!(policy.validate().unwrap_err().0, "courier_limits[0]");
        assert!(LogisticsPolicy::default().validate().is_ok());
    }
}
