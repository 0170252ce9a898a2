//! The rule segmenter: a customer who never ordered is
//! judged from `created_at` (new, then at risk, then churned) instead of from a zero
//! date, and VIP depends on lifetime value alone, so time never demotes a VIP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CustomerMetrics, Segment};

/// The segment rules' thresholds, configurable per deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SegmentConfig {
    /// Lifetime value from which a customer is VIP.
    pub vip_threshold: f64,
    /// Days without an order after which a customer is churned.
    pub churn_days: i64,
    /// Days without an order after which a customer is at risk.
    pub at_risk_days: i64,
    /// Days after creation during which a customer is new.
    pub new_customer_days: i64,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            vip_threshold: 1_000.0,
            churn_days: 180,
            at_risk_days: 90,
            new_customer_days: 30,
        }
    }
}

/// A segment and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub segment: Segment,
    pub reason: String,
}

/// Whole days from `from` to `now` (a day is 24 hours; the future counts as 0).
pub fn days_since(from: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - from).num_days().max(0)
}

impl SegmentConfig {
    /// The segment of a customer created at `created_at` with these metrics, at `now`.
    pub fn segment(
        &self,
        metrics: &CustomerMetrics,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Segment {
        self.decide(metrics, created_at, now).segment
    }

    /// The segment and, in words, why.
    pub fn decide(
        &self,
        metrics: &CustomerMetrics,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Decision {
        let decision = |segment, reason: String| Decision { segment, reason };
        if metrics.lifetime_value >= self.vip_threshold {
            let reason = format!(
                "lifetime value {:.2} reached the VIP threshold {:.2}",
                metrics.lifetime_value, self.vip_threshold
            );
            return decision(Segment::Vip, reason);
        }
        // Inactivity counts from the last order, or from creation for who never ordered.
        let (since, what) = match metrics.last_order_date {
            Some(last) => (last, "the last order"),
            None => (created_at, "sign-up, without an order"),
        };
        let inactive = days_since(since, now);
        let age = days_since(created_at, now);
        if inactive > self.churn_days {
            decision(
                Segment::Churned,
                format!("{inactive} days since {what} (over {})", self.churn_days),
            )
        } else if inactive > self.at_risk_days {
            decision(
                Segment::AtRisk,
                format!("{inactive} days since {what} (over {})", self.at_risk_days),
            )
        } else if age <= self.new_customer_days {
            decision(
                Segment::New,
                format!(
                    "customer for {age} days (new for {})",
                    self.new_customer_days
                ),
            )
        } else {
            decision(Segment::Regular, format!("{inactive} days since {what}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn ago(days: i64) -> DateTime<Utc> {
        now() - Duration::days(days)
    }

    fn ordered(last_order_days_ago: i64, lifetime_value: f64) -> CustomerMetrics {
        CustomerMetrics {
            total_orders: 1,
            last_order_date: Some(ago(last_order_days_ago)),
            lifetime_value,
            ..CustomerMetrics::default()
        }
    }

    fn segment(metrics: CustomerMetrics, created_days_ago: i64) -> Segment {
        SegmentConfig::default().segment(&metrics, ago(created_days_ago), now())
    }

    #[test]
    fn vip_from_exactly_the_threshold_and_never_demoted_by_time() {
        assert_eq!(segment(ordered(1, 999.99), 400), Segment::Regular);
        assert_eq!(segment(ordered(1, 1_000.0), 400), Segment::Vip);
        assert_eq!(
            segment(ordered(1_000, 1_000.0), 2_000),
            Segment::Vip,
            "years without orders"
        );
    }

    #[test]
    fn at_risk_after_90_days_churned_after_180() {
        assert_eq!(
            segment(ordered(90, 10.0), 400),
            Segment::Regular,
            "exactly 90 days"
        );
        assert_eq!(segment(ordered(91, 10.0), 400), Segment::AtRisk, "91 days");
        assert_eq!(
            segment(ordered(180, 10.0), 400),
            Segment::AtRisk,
            "exactly 180 days"
        );
        assert_eq!(
            segment(ordered(181, 10.0), 400),
            Segment::Churned,
            "181 days"
        );
    }

    #[test]
    fn new_for_30_days_after_creation() {
        assert_eq!(
            segment(ordered(1, 10.0), 30),
            Segment::New,
            "exactly 30 days"
        );
        assert_eq!(segment(ordered(1, 10.0), 31), Segment::Regular, "31 days");
    }

    #[test]
    fn who_never_ordered_is_judged_from_creation() {
        let never = CustomerMetrics::default();
        assert_eq!(segment(never.clone(), 0), Segment::New);
        assert_eq!(segment(never.clone(), 30), Segment::New);
        assert_eq!(segment(never.clone(), 60), Segment::Regular);
        assert_eq!(segment(never.clone(), 91), Segment::AtRisk);
        assert_eq!(segment(never, 181), Segment::Churned);
    }

    #[test]
    fn partial_days_do_not_count() {
        let just_under_91 = now() - Duration::days(91) + Duration::seconds(1);
        let metrics = CustomerMetrics {
            last_order_date: Some(just_under_91),
            ..ordered(0, 10.0)
        };
        assert_eq!(
            SegmentConfig::default().segment(&metrics, ago(400), now()),
            Segment::Regular
        );
    }

    #[test]
    fn each_decision_says_why() {
        let config = SegmentConfig::default();
        let vip = config.decide(&ordered(1, 1_200.0), ago(400), now());
        assert_eq!(
            vip.reason,
            "lifetime value 1200.00 reached the VIP threshold 1000.00"
        );
        let churned = config.decide(&CustomerMetrics::default(), ago(200), now());
        assert_eq!(
            churned.reason,
            "200 days since sign-up, without an order (over 180)"
        );
        let at_risk = config.decide(&ordered(95, 1.0), ago(400), now());
        assert_eq!(at_risk.reason, "95 days since the last order (over 90)");
    }

    #[test]
    fn the_config_is_honoured() {
        let strict = SegmentConfig {
            vip_threshold: 100.0,
            at_risk_days: 10,
            churn_days: 20,
            new_customer_days: 1,
        };
        assert_eq!(
            strict.segment(&ordered(5, 100.0), ago(50), now()),
            Segment::Vip
        );
        assert_eq!(
            strict.segment(&ordered(11, 1.0), ago(50), now()),
            Segment::AtRisk
        );
        assert_eq!(
            strict.segment(&ordered(21, 1.0), ago(50), now()),
            Segment::Churned
        );
    }
}
