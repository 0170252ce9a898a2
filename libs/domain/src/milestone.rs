//! Order milestones: the first order, the tenth, and lifetime
//! value crossing 1,000, 5,000 and 10,000. Each is reached once, at the order that
//! crosses it.

use serde::{Deserialize, Serialize};

use crate::CustomerMetrics;

pub const LIFETIME_VALUE_STEPS: [f64; 3] = [1_000.0, 5_000.0, 10_000.0];

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "milestone", rename_all = "snake_case")]
pub enum Milestone {
    FirstOrder,
    TenthOrder,
    LifetimeValue { threshold: f64 },
}

/// The milestones crossed between two states of a customer's metrics.
pub fn crossed(before: &CustomerMetrics, after: &CustomerMetrics) -> Vec<Milestone> {
    let mut reached = Vec::new();
    let orders = |n: i64| before.total_orders < n && after.total_orders >= n;
    if orders(1) {
        reached.push(Milestone::FirstOrder);
    }
    if orders(10) {
        reached.push(Milestone::TenthOrder);
    }
    for threshold in LIFETIME_VALUE_STEPS {
        if before.lifetime_value < threshold && after.lifetime_value >= threshold {
            reached.push(Milestone::LifetimeValue { threshold });
        }
    }
    reached
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(orders: i64, value: f64) -> CustomerMetrics {
        CustomerMetrics {
            total_orders: orders,
            lifetime_value: value,
            ..CustomerMetrics::default()
        }
    }

    #[test]
    fn each_milestone_is_reached_at_the_order_that_crosses_it() {
        assert_eq!(
            crossed(&metrics(0, 0.0), &metrics(1, 50.0)),
            [Milestone::FirstOrder]
        );
        assert_eq!(crossed(&metrics(1, 50.0), &metrics(2, 99.0)), []);
        assert_eq!(
            crossed(&metrics(9, 900.0), &metrics(10, 950.0)),
            [Milestone::TenthOrder]
        );
        assert_eq!(
            crossed(&metrics(2, 999.99), &metrics(3, 1_000.0)),
            [Milestone::LifetimeValue { threshold: 1_000.0 }],
            "exactly 1,000 counts"
        );
        assert_eq!(crossed(&metrics(3, 1_000.0), &metrics(4, 4_999.0)), []);
    }

    #[test]
    fn one_big_order_can_cross_several() {
        let reached = crossed(&metrics(0, 0.0), &metrics(1, 12_000.0));
        assert_eq!(
            reached,
            [
                Milestone::FirstOrder,
                Milestone::LifetimeValue { threshold: 1_000.0 },
                Milestone::LifetimeValue { threshold: 5_000.0 },
                Milestone::LifetimeValue {
                    threshold: 10_000.0
                },
            ]
        );
    }

    #[test]
    fn milestones_serialize_with_their_name() {
        let json = serde_json::to_value(Milestone::LifetimeValue { threshold: 5_000.0 }).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "milestone": "lifetime_value", "threshold": 5000.0 })
        );
    }
}
