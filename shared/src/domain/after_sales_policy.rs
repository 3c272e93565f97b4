//! The after-sales policy, as data operations can change: the return windows, the categories
//! excluded from no-reason returns, those whose return affects resale (accepted only with photo
//! evidence), the review triggers and the service-level deadlines. [`AfterSalesPolicy::check`]
//! decides whether a request is inside the policy and names the rule that refused it if not.
//!
//! Windows are counted from the order's `delivered_at` (the courier's delivery time of its last
//! parcel, as `OrderDelivered` carries it), as an exact span of hours on the UTC clock: 7 days is
//! 168 hours after that instant, whatever the shop's time zone. The last second before the end is
//! inside; the end itself is outside.

use super::ticket::ReviewReason;
use super::values::Invalid;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterSalesPolicy {
    /// Returns and exchanges for no reason, from delivery.
    pub no_reason_days: u32,
    /// Quality problems (faulty, damaged, wrong or not as described), from delivery.
    pub quality_days: u32,
    /// Catalogue categories never returned for no reason (opened underwear, say). Items flagged
    /// `no_reason_return_excluded` are excluded too.
    pub no_reason_excluded_categories: Vec<String>,
    /// Categories whose return affects resale (cosmetics, sealed electronics): a no-reason return
    /// needs photo evidence that the goods are unopened.
    pub resale_evidence_categories: Vec<String>,
    /// A refund above this goes to manual review.
    pub review_amount_above_minor: i64,
    /// A customer whose refunds this month exceed this share of their orders goes to review.
    pub review_refund_rate_pct: u32,
    pub complaint_first_response_hours: u32,
    pub major_first_response_hours: u32,
    pub major_plan_hours: u32,
    pub not_received_resolve_hours: u32,
    pub qc_days: u32,
    /// Days the customer has to send approved goods back.
    #[serde(default = "default_return_days")]
    pub return_days: u32,
    /// Days an archived order keeps its personal data (phone, recipient, street, house number,
    /// client IP) before the sweeper erases it.
    #[serde(default = "default_personal_data_days")]
    pub personal_data_days: u32,
    #[serde(default)]
    pub version: u32,
}

fn default_return_days() -> u32 {
    14
}

fn default_personal_data_days() -> u32 {
    180
}

impl Default for AfterSalesPolicy {
    fn default() -> Self {
        Self {
            no_reason_days: 7,
            quality_days: 30,
            no_reason_excluded_categories: vec!["underwear".into()],
            resale_evidence_categories: vec!["cosmetics".into()],
            review_amount_above_minor: 200_000,
            review_refund_rate_pct: 30,
            complaint_first_response_hours: 24,
            major_first_response_hours: 4,
            major_plan_hours: 24,
            not_received_resolve_hours: 48,
            qc_days: 7,
            return_days: default_return_days(),
            personal_data_days: default_personal_data_days(),
            version: 0,
        }
    }
}

/// Why a request is outside the policy: a stable rule code, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: &'static str,
    pub detail: String,
}

/// What the policy needs to know of one requested item.
pub struct RequestedItem<'a> {
    pub sku: &'a str,
    pub category: &'a str,
    pub no_reason_excluded: bool,
}

/// What review needs to know of the customer, counted by intake (orders) and by refunds paid
/// out of tickets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefundHistory {
    /// Orders ever placed, this one included.
    pub orders_ever: u32,
    pub month_orders: u32,
    pub month_refunds: u32,
}

impl AfterSalesPolicy {
    /// Why a refund of `amount_minor` to this customer needs a person's decision: a first
    /// order, this month's refunds above the rate (refunds per order this month, this one not
    /// yet counted), an amount above the limit, a customer risk control lists.
    pub fn review_reasons(&self, history: RefundHistory, amount_minor: i64, flagged: bool) -> Vec<ReviewReason> {
        let mut reasons = Vec::new();
        if history.orders_ever <= 1 {
            reasons.push(ReviewReason::FirstOrder);
        }
        let rate_pct = u64::from(history.month_refunds) * 100 / u64::from(history.month_orders.max(1));
        if rate_pct > u64::from(self.review_refund_rate_pct) {
            reasons.push(ReviewReason::RefundRateHigh);
        }
        if amount_minor > self.review_amount_above_minor {
            reasons.push(ReviewReason::AmountAboveLimit);
        }
        if flagged {
            reasons.push(ReviewReason::FlaggedCustomer);
        }
        reasons
    }

    pub fn sla_hours(&self) -> super::sla::SlaHours {
        super::sla::SlaHours {
            first_response: self.complaint_first_response_hours,
            major_first_response: self.major_first_response_hours,
            major_plan: self.major_plan_hours,
            not_received_resolution: self.not_received_resolve_hours,
        }
    }

    pub fn validate(&self) -> Result<(), (String, Invalid)> {
        let bad = |field: &str, detail: &str| Err((field.to_owned(), Invalid::new("policy-invalid", detail)));
        for (field, days) in [("no_reason_days", self.no_reason_days), ("quality_days", self.quality_days)] {
            if !(1..=365).contains(&days) {
                return bad(field, "1 to 365 days");
            }
        }
        for (field, hours) in [
            ("complaint_first_response_hours", self.complaint_first_response_hours),
            ("major_first_response_hours", self.major_first_response_hours),
            ("major_plan_hours", self.major_plan_hours),
            ("not_received_resolve_hours", self.not_received_resolve_hours),
        ] {
            if !(1..=24 * 30).contains(&hours) {
                return bad(field, "1 to 720 hours");
            }
        }
        if !(1..=60).contains(&self.qc_days) {
            return bad("qc_days", "1 to 60 days");
        }
        if !(1..=60).contains(&self.return_days) {
            return bad("return_days", "1 to 60 days");
        }
        if self.personal_data_days > 3_650 {
            return bad("personal_data_days", "0 to 3650 days");
        }
        if !(1..=100).contains(&self.review_refund_rate_pct) {
            return bad("review_refund_rate_pct", "1 to 100");
        }
        if self.review_amount_above_minor < 0 {
            return bad("review_amount_above_minor", "zero or more");
        }
        Ok(())
    }

    /// How long after delivery anything may still be asked: the longer window.
    pub fn after_sales_span(&self) -> Duration {
        Duration::days(i64::from(self.no_reason_days.max(self.quality_days)))
    }

    /// The end of the window for `reason`: the first instant outside it.
    pub fn window_end(&self, delivered_at: OffsetDateTime, no_reason: bool) -> OffsetDateTime {
        let days = if no_reason { self.no_reason_days } else { self.quality_days };
        delivered_at + Duration::days(i64::from(days))
    }

    /// Whether a return, exchange or refund of `items` for `no_reason` (else a quality
    /// problem), with `evidence` photos, at `now`, is inside the policy.
    pub fn check(
        &self,
        delivered_at: OffsetDateTime,
        now: OffsetDateTime,
        no_reason: bool,
        items: &[RequestedItem<'_>],
        evidence: usize,
    ) -> Result<(), Refusal> {
        if now >= self.window_end(delivered_at, no_reason) {
            let (rule, days) = if no_reason {
                ("no-reason-window-closed", self.no_reason_days)
            } else {
                ("quality-window-closed", self.quality_days)
            };
            return Err(Refusal {
                rule,
                detail: format!("requests like this are taken within {days} days of delivery"),
            });
        }
        if !no_reason {
            return if evidence == 0 {
                Err(Refusal { rule: "evidence-required", detail: "a quality problem needs a photo of it".into() })
            } else {
                Ok(())
            };
        }
        let listed = |list: &[String], category: &str| list.iter().any(|c| c.eq_ignore_ascii_case(category));
        if let Some(item) =
            items.iter().find(|i| i.no_reason_excluded || listed(&self.no_reason_excluded_categories, i.category))
        {
            return Err(Refusal {
                rule: "category-excluded",
                detail: format!("{} is not returned without a reason", item.sku),
            });
        }
        if evidence == 0 {
            if let Some(item) = items.iter().find(|i| listed(&self.resale_evidence_categories, i.category)) {
                return Err(Refusal {
                    rule: "resale-evidence-required",
                    detail: format!("{} is taken back unopened only, shown by a photo", item.sku),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(category: &str) -> RequestedItem<'_> {
        RequestedItem { sku: "TEA", category, no_reason_excluded: false }
    }

    #[test]
    fn the_no_reason_window_takes_its_last_second_and_refuses_its_end() {
        let policy = AfterSalesPolicy::default();
        let delivered = OffsetDateTime::UNIX_EPOCH + Duration::days(100);
        let end = delivered + Duration::days(7);
        assert_eq!(policy.check(delivered, end - Duration::seconds(1), true, &[item("tea")], 0), Ok(()));
        let refused = policy.check(delivered, end, true, &[item("tea")], 0).unwrap_err();
        assert_eq!(refused.rule, "no-reason-window-closed");
        assert_eq!(policy.check(delivered, end, false, &[item("tea")], 1), Ok(()), "quality problems: 30 days");
    }

    #[test]
    fn excluded_categories_and_flagged_items_are_not_returned_for_no_reason() {
        let policy = AfterSalesPolicy::default();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1);
        let delivered = OffsetDateTime::UNIX_EPOCH;
        let refused = policy.check(delivered, now, true, &[item("tea"), item("Underwear")], 3).unwrap_err();
        assert_eq!(refused.rule, "category-excluded");
        let flagged = RequestedItem { no_reason_excluded: true, ..item("tea") };
        assert_eq!(policy.check(delivered, now, true, &[flagged], 3).unwrap_err().rule, "category-excluded");
        assert_eq!(policy.check(delivered, now, false, &[item("underwear")], 1), Ok(()), "a fault is taken back");
    }

    #[test]
    fn goods_whose_return_affects_resale_need_evidence_and_quality_problems_a_photo() {
        let policy = AfterSalesPolicy::default();
        let (delivered, now) = (OffsetDateTime::UNIX_EPOCH, OffsetDateTime::UNIX_EPOCH + Duration::hours(1));
        assert_eq!(
            policy.check(delivered, now, true, &[item("cosmetics")], 0).unwrap_err().rule,
            "resale-evidence-required"
        );
        assert_eq!(policy.check(delivered, now, true, &[item("cosmetics")], 1), Ok(()));
        assert_eq!(policy.check(delivered, now, false, &[item("tea")], 0).unwrap_err().rule, "evidence-required");
    }

    #[test]
    fn each_review_trigger_fires_alone() {
        let policy = AfterSalesPolicy::default();
        let regular = RefundHistory { orders_ever: 5, month_orders: 4, month_refunds: 1 };
        assert!(policy.review_reasons(regular, 200_000, false).is_empty(), "25 % and the limit itself pass");
        let first = RefundHistory { orders_ever: 1, ..regular };
        assert_eq!(policy.review_reasons(first, 100, false), [ReviewReason::FirstOrder]);
        let refunding = RefundHistory { month_refunds: 2, ..regular };
        assert_eq!(policy.review_reasons(refunding, 100, false), [ReviewReason::RefundRateHigh]);
        assert_eq!(policy.review_reasons(regular, 200_001, false), [ReviewReason::AmountAboveLimit]);
        assert_eq!(policy.review_reasons(regular, 100, true), [ReviewReason::FlaggedCustomer]);
    }

    #[test]
    fn a_policy_with_a_zero_window_is_refused() {
        let policy = AfterSalesPolicy { no_reason_days: 0, ..AfterSalesPolicy::default() };
        assert_eq!(policy.validate().unwrap_err().0, "no_reason_days");
        assert!(AfterSalesPolicy::default().validate().is_ok());
    }
}
