//! Recommendations: products bought together with (in the same orders as) and viewed
//! together with (by the same people as) what the customer recently bought or viewed,
//! each pair weighted by how recent the customer's own interaction is (half-life 30
//! days), never what the customer already bought. When that yields too few: the best
//! sellers of the customer's preferred categories, then the overall best sellers.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use crm_domain::{CustomerId, ValidationErrors, limits::MAX_RECOMMENDATIONS};

use crate::{
    Error, Result,
    store::{CoOccurrence, SegmentStore},
};

/// An interaction this many days old counts half.
const HALF_LIFE_DAYS: f64 = 30.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub product_id: String,
    /// Co-occurrence weight for bought / viewed together; units sold for best sellers.
    pub score: f64,
    pub reason: String,
}

/// What `recommend` found, and whether the customer's profile was there to learn from.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommended {
    pub products: Vec<Recommendation>,
    pub customer_seen: bool,
}

pub async fn recommend(
    store: &dyn SegmentStore,
    customer: CustomerId,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<Recommended> {
    let limit = match limit {
        0 => MAX_RECOMMENDATIONS,
        1..=MAX_RECOMMENDATIONS => limit,
        _ => {
            let message = format!("must be 1 to {MAX_RECOMMENDATIONS}");
            return Err(ValidationErrors::single("limit", message).into());
        }
    };
    // A customer whose first snapshot is still on its way has no profile yet: it gets
    // the best sellers, and the caller learns it was not seen.
    let profile = store.profile(customer).await?;
    if profile.as_ref().is_some_and(|p| p.deleted) {
        return Err(Error::NotFound(customer));
    }
    let customer_seen = profile.is_some();
    let categories: Vec<String> = profile.map(|p| p.categories).unwrap_or_default();
    let bought: HashSet<String> = store.purchased(customer).await?.into_iter().collect();
    let mut picked = rank(
        &store.bought_together(customer).await?,
        &store.viewed_together(customer).await?,
        &bought,
        now,
    );
    picked.truncate(limit as usize);
    // Enough best sellers to fill the list even when the customer bought many of them.
    let wanted = limit + bought.len().min(100) as u32;
    let categories = categories.iter().map(|c| Some(c.as_str()));
    for category in categories.chain([None]) {
        if picked.len() >= limit as usize {
            break;
        }
        for seller in store.best_sellers(category, wanted).await? {
            if picked.len() >= limit as usize {
                break;
            }
            if bought.contains(&seller.product_id)
                || picked.iter().any(|p| p.product_id == seller.product_id)
            {
                continue;
            }
            let reason = match category {
                Some(category) => format!("best seller in {category}"),
                None => "best seller".into(),
            };
            picked.push(Recommendation {
                product_id: seller.product_id,
                score: seller.sold as f64,
                reason,
            });
        }
    }
    Ok(Recommended {
        products: picked,
        customer_seen,
    })
}

/// Scores candidates from both co-occurrence lists, best first; each explained by the
/// pair that contributed most.
pub fn rank(
    bought_together: &[CoOccurrence],
    viewed_together: &[CoOccurrence],
    already_bought: &HashSet<String>,
    now: DateTime<Utc>,
) -> Vec<Recommendation> {
    // candidate -> (total score, best contribution, its reason)
    let mut scores: HashMap<&str, (f64, f64, String)> = HashMap::new();
    let lists = [
        (bought_together, "bought together with"),
        (viewed_together, "viewed together with"),
    ];
    for (pairs, how) in lists {
        for pair in pairs {
            if already_bought.contains(&pair.candidate) {
                continue;
            }
            let age_days = (now - pair.anchor_at).num_seconds().max(0) as f64 / 86_400.0;
            let weight = pair.together as f64 * 0.5_f64.powf(age_days / HALF_LIFE_DAYS);
            let entry = scores
                .entry(pair.candidate.as_str())
                .or_insert((0.0, 0.0, String::new()));
            entry.0 += weight;
            if weight > entry.1 {
                entry.1 = weight;
                entry.2 = format!("{how} {}", pair.anchor);
            }
        }
    }
    let mut ranked: Vec<Recommendation> = scores
        .into_iter()
        .map(|(product, (score, _, reason))| Recommendation {
            product_id: product.to_owned(),
            score,
            reason,
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.product_id.cmp(&b.product_id))
    });
    ranked
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn pair(anchor: &str, days_ago: i64, candidate: &str, together: i64) -> CoOccurrence {
        CoOccurrence {
            anchor: anchor.into(),
            anchor_at: now() - Duration::days(days_ago),
            candidate: candidate.into(),
            together,
        }
    }

    #[test]
    fn recent_interactions_weigh_more_and_each_pick_says_why() {
        let bought = [pair("old", 60, "a", 3), pair("new", 0, "b", 1)];
        let viewed = [pair("seen", 0, "c", 2)];
        let ranked = rank(&bought, &viewed, &HashSet::new(), now());
        let order: Vec<&str> = ranked.iter().map(|r| r.product_id.as_str()).collect();
        // a: 3 orders, but 60 days ago (two half-lives) = 0.75; b = 1; c = 2.
        assert_eq!(order, ["c", "b", "a"]);
        assert!((ranked[2].score - 0.75).abs() < 1e-9);
        assert_eq!(ranked[0].reason, "viewed together with seen");
        assert_eq!(ranked[1].reason, "bought together with new");
    }

    #[test]
    fn scores_add_up_and_what_was_bought_is_left_out() {
        let bought = [
            pair("x", 0, "a", 1),
            pair("y", 0, "a", 2),
            pair("x", 0, "mine", 9),
        ];
        let already: HashSet<String> = ["mine".to_owned()].into();
        let ranked = rank(&bought, &[], &already, now());
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].score, 3.0);
        assert_eq!(
            ranked[0].reason, "bought together with y",
            "the strongest pair"
        );
    }
}
