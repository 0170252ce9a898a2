//! RFM scores, 1-5 each (5 best), by quintiles over the whole customer base: recency =
//! days since the last order (fewer is better), frequency = total orders, monetary =
//! total spent. The batch computes the quintile bounds and stores them; one customer is
//! scored against the stored bounds. Equal values always get equal scores.
//!
//! The segment name comes from R and FM, the mean of F and M rounded up:
//!
//! | R \ FM | 1 | 2 | 3 | 4 | 5 |
//! |---|---|---|---|---|---|
//! | 5 | new | potential loyalist | potential loyalist | champions | champions |
//! | 4 | promising | potential loyalist | potential loyalist | loyal | loyal |
//! | 3 | about to sleep | about to sleep | needs attention | loyal | loyal |
//! | 2 | hibernating | hibernating | at risk | at risk | cannot lose |
//! | 1 | lost | hibernating | at risk | at risk | cannot lose |

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::customer::wire_enum;

/// Four ascending cut points that split a base into five groups of about equal size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quintiles(pub [f64; 4]);

impl Quintiles {
    /// Nearest-rank 20th, 40th, 60th and 80th percentiles; `None` for an empty base.
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let at = |p: usize| values[(p * n).div_ceil(100).max(1) - 1];
        Some(Self([at(20), at(40), at(60), at(80)]))
    }

    /// 1 + how many cut points `value` is above: 1 (lowest fifth) to 5 (highest).
    fn rank(&self, value: f64) -> u8 {
        1 + self.0.iter().filter(|cut| value > **cut).count() as u8
    }
}

/// What RFM looks at of one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RfmInput {
    /// `None` when the customer never ordered.
    pub days_since_last_order: Option<i64>,
    pub total_orders: i64,
    pub total_spent: f64,
}

/// The stored quintile bounds of the whole base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RfmBounds {
    /// Over customers who ordered.
    pub recency: Option<Quintiles>,
    pub frequency: Quintiles,
    pub monetary: Quintiles,
    pub computed_at: DateTime<Utc>,
}

wire_enum!(
    /// The common RFM segment names (see the module's map).
    RfmSegment,
    "champions, loyal, potential_loyalist, new, promising, needs_attention, about_to_sleep, \
     at_risk, cannot_lose, hibernating, lost" {
        Champions = "champions",
        Loyal = "loyal",
        PotentialLoyalist = "potential_loyalist",
        New = "new",
        Promising = "promising",
        NeedsAttention = "needs_attention",
        AboutToSleep = "about_to_sleep",
        AtRisk = "at_risk",
        CannotLose = "cannot_lose",
        Hibernating = "hibernating",
        Lost = "lost",
    }
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RfmScore {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

impl RfmBounds {
    /// The bounds of a base; `None` when the base is empty.
    pub fn compute(base: &[RfmInput], now: DateTime<Utc>) -> Option<Self> {
        let recency = base
            .iter()
            .filter_map(|c| c.days_since_last_order)
            .map(|d| d as f64)
            .collect();
        Some(Self {
            recency: Quintiles::of(recency),
            frequency: Quintiles::of(base.iter().map(|c| c.total_orders as f64).collect())?,
            monetary: Quintiles::of(base.iter().map(|c| c.total_spent).collect())?,
            computed_at: now,
        })
    }

    pub fn score(&self, customer: &RfmInput) -> RfmScore {
        // Fewer days is better; who never ordered has the worst recency.
        let recency = match (customer.days_since_last_order, &self.recency) {
            (Some(days), Some(bounds)) => 6 - bounds.rank(days as f64),
            _ => 1,
        };
        RfmScore {
            recency,
            frequency: self.frequency.rank(customer.total_orders as f64),
            monetary: self.monetary.rank(customer.total_spent),
        }
    }
}

impl RfmScore {
    pub fn segment(&self) -> RfmSegment {
        use RfmSegment as S;
        let fm = (self.frequency + self.monetary).div_ceil(2);
        match (self.recency, fm) {
            (5, 4..) => S::Champions,
            (3..=4, 4..) => S::Loyal,
            (4..=5, 2..=3) => S::PotentialLoyalist,
            (5, _) => S::New,
            (4, _) => S::Promising,
            (3, 3) => S::NeedsAttention,
            (3, _) => S::AboutToSleep,
            (1..=2, 5..) => S::CannotLose,
            (1..=2, 3 | 4) => S::AtRisk,
            (1, 1) => S::Lost,
            _ => S::Hibernating,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn input(days: Option<i64>, orders: i64, spent: f64) -> RfmInput {
        RfmInput {
            days_since_last_order: days,
            total_orders: orders,
            total_spent: spent,
        }
    }

    #[test]
    fn five_distinct_values_get_one_score_each() {
        let q = Quintiles::of(vec![50.0, 10.0, 40.0, 20.0, 30.0]).unwrap();
        assert_eq!(q.0, [10.0, 20.0, 30.0, 40.0]);
        let ranks: Vec<u8> = [10.0, 20.0, 30.0, 40.0, 50.0]
            .iter()
            .map(|v| q.rank(*v))
            .collect();
        assert_eq!(ranks, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn ties_score_the_same_even_across_a_quintile_border() {
        // Eight of ten customers have one order: they cannot be split, so they share a score.
        let mut values = vec![1.0; 8];
        values.extend([5.0, 9.0]);
        let q = Quintiles::of(values).unwrap();
        assert_eq!(q.rank(1.0), 1);
        assert!(q.rank(5.0) > q.rank(1.0));
        assert_eq!(q.rank(9.0), 5);
        assert_eq!(
            Quintiles::of(vec![7.0; 3]).unwrap().rank(7.0),
            1,
            "all equal"
        );
    }

    #[test]
    fn an_empty_base_has_no_bounds() {
        assert_eq!(RfmBounds::compute(&[], now()), None);
        assert_eq!(Quintiles::of(Vec::new()), None);
    }

    #[test]
    fn recency_rewards_few_days_and_never_ordered_is_worst() {
        let base: Vec<RfmInput> = (1..=5)
            .map(|i| input(Some(i * 10), i, i as f64 * 100.0))
            .collect();
        let bounds = RfmBounds::compute(&base, now()).unwrap();
        assert_eq!(
            bounds.score(&base[0]),
            RfmScore {
                recency: 5,
                frequency: 1,
                monetary: 1
            }
        );
        assert_eq!(
            bounds.score(&base[4]),
            RfmScore {
                recency: 1,
                frequency: 5,
                monetary: 5
            }
        );
        let never = input(None, 0, 0.0);
        assert_eq!(
            bounds.score(&never),
            RfmScore {
                recency: 1,
                frequency: 1,
                monetary: 1
            }
        );
        // A customer outside the base is scored against the stored bounds.
        assert_eq!(
            bounds.score(&input(Some(0), 100, 1e6)),
            RfmScore {
                recency: 5,
                frequency: 5,
                monetary: 5
            }
        );
    }

    #[test]
    fn every_cell_of_the_segment_map() {
        use RfmSegment as S;
        // Rows R = 5 down to 1, columns FM = 1 to 5, as in the module's table.
        let map = [
            [
                S::New,
                S::PotentialLoyalist,
                S::PotentialLoyalist,
                S::Champions,
                S::Champions,
            ],
            [
                S::Promising,
                S::PotentialLoyalist,
                S::PotentialLoyalist,
                S::Loyal,
                S::Loyal,
            ],
            [
                S::AboutToSleep,
                S::AboutToSleep,
                S::NeedsAttention,
                S::Loyal,
                S::Loyal,
            ],
            [
                S::Hibernating,
                S::Hibernating,
                S::AtRisk,
                S::AtRisk,
                S::CannotLose,
            ],
            [S::Lost, S::Hibernating, S::AtRisk, S::AtRisk, S::CannotLose],
        ];
        for (row, r) in map.iter().zip([5u8, 4, 3, 2, 1]) {
            for (expected, fm) in row.iter().zip(1u8..=5) {
                let score = RfmScore {
                    recency: r,
                    frequency: fm,
                    monetary: fm,
                };
                assert_eq!(score.segment(), *expected, "R{r} FM{fm}");
            }
        }
        assert_eq!(RfmSegment::ALL.len(), 11);
    }

    #[test]
    fn fm_is_the_mean_of_f_and_m_rounded_up() {
        let score = RfmScore {
            recency: 5,
            frequency: 4,
            monetary: 3,
        };
        assert_eq!(score.segment(), RfmSegment::Champions, "FM = 3.5 → 4");
        let score = RfmScore {
            recency: 5,
            frequency: 3,
            monetary: 2,
        };
        assert_eq!(
            score.segment(),
            RfmSegment::PotentialLoyalist,
            "FM = 2.5 → 3"
        );
    }
}
