//! The contract every `SegmentStore` adapter passes. The batch's SQL must say exactly
//! what the domain's rules say, so each SQL result is compared with the domain's answer.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm_domain::{CustomerId, Segment, rfm::RfmBounds, segmentation::SegmentConfig};
use futures::StreamExt;
use uuid::Uuid;

use super::{Profile, PurchasedItem, SegmentStore};
use crate::Error;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn ago(days: i64) -> DateTime<Utc> {
    now() - Duration::days(days)
}

fn profile(created_days_ago: i64, last_order_days_ago: Option<i64>, spent: f64) -> Profile {
    Profile {
        customer_id: CustomerId::generate(),
        version: 1,
        deleted: false,
        segment: Segment::New,
        created_at: ago(created_days_ago),
        total_orders: if last_order_days_ago.is_some() {
            (spent / 50.0) as i64 + 1
        } else {
            0
        },
        total_spent: spent,
        lifetime_value: spent,
        last_order_at: last_order_days_ago.map(ago),
        categories: vec!["shoes".into()],
        rfm: None,
    }
}

pub async fn run(store: &dyn SegmentStore) {
    store.ping().await.expect("ping");
    profiles(store).await;
    let live = rules_in_sql_match_the_domain(store).await;
    rfm_in_sql_matches_the_domain(store, &live).await;
    jobs(store).await;
    recommendation_data(store).await;
}

async fn profiles(store: &dyn SegmentStore) {
    let mut p = profile(10, Some(2), 120.0);
    p.version = 2;
    assert!(store.upsert_profile(&p).await.expect("insert"));
    assert_eq!(
        store.profile(p.customer_id).await.expect("get"),
        Some(p.clone())
    );
    let older = Profile {
        version: 1,
        total_spent: 1.0,
        ..p.clone()
    };
    assert!(
        !store.upsert_profile(&older).await.expect("older"),
        "older is ignored"
    );
    let scored = Profile {
        version: 3,
        rfm: Some(super::ScoredRfm {
            score: crm_domain::rfm::RfmScore {
                recency: 5,
                frequency: 2,
                monetary: 3,
            },
            segment: crm_domain::rfm::RfmSegment::PotentialLoyalist,
            computed_at: now(),
        }),
        ..p.clone()
    };
    assert!(store.upsert_profile(&scored).await.expect("scored"));
    assert_eq!(
        store.profile(p.customer_id).await.expect("get"),
        Some(scored.clone())
    );
    let newer = Profile {
        version: 4,
        deleted: true,
        ..p.clone()
    };
    assert!(store.upsert_profile(&newer).await.expect("newer"));
    let kept = Profile {
        rfm: scored.rfm,
        ..newer
    };
    assert_eq!(
        store.profile(p.customer_id).await.expect("get"),
        Some(kept),
        "a snapshot without scores keeps the stored ones"
    );
    assert_eq!(
        store.profile(CustomerId::generate()).await.expect("get"),
        None
    );
    assert_eq!(
        store.count_live().await.expect("count"),
        0,
        "deleted is not live"
    );
}

/// Every boundary of the rules, decided by SQL and by `SegmentConfig::decide`.
async fn rules_in_sql_match_the_domain(store: &dyn SegmentStore) -> Vec<CustomerId> {
    let rules = SegmentConfig::default();
    let cases = [
        profile(400, Some(90), 10.0),       // exactly 90 days: regular
        profile(400, Some(91), 10.0),       // 91: at risk
        profile(400, Some(180), 10.0),      // 180: at risk
        profile(400, Some(181), 10.0),      // 181: churned
        profile(400, Some(1), 999.99),      // regular
        profile(2000, Some(1000), 1_000.0), // exactly the VIP threshold, long ago: vip
        profile(30, None, 0.0),             // never ordered, 30 days: new
        profile(31, None, 0.0),             // 31: regular
        profile(91, None, 0.0),             // never ordered 91 days: at risk
        profile(181, None, 0.0),            // churned
    ];
    for case in &cases {
        store.upsert_profile(case).await.expect("insert");
    }
    let mut pending: Vec<CustomerId> = store
        .pending_changes(&rules, now())
        .map(|p| p.expect("pending").customer_id)
        .collect()
        .await;
    pending.sort_by_key(|id| id.as_uuid());
    let expected: Vec<CustomerId> = {
        let mut ids: Vec<CustomerId> = cases
            .iter()
            .filter(|c| c.decide(&rules, now()).segment != c.segment)
            .map(|c| c.customer_id)
            .collect();
        ids.sort_by_key(|id| id.as_uuid());
        ids
    };
    let wanted: Vec<Segment> = cases
        .iter()
        .map(|c| c.decide(&rules, now()).segment)
        .collect();
    use Segment::*;
    assert_eq!(
        wanted,
        [
            Regular, AtRisk, AtRisk, Churned, Regular, Vip, New, Regular, AtRisk, Churned
        ],
        "the domain's answers this test relies on"
    );
    assert_eq!(pending, expected, "SQL picks what the domain would change");
    assert_eq!(
        store.count_pending(&rules, now()).await.expect("count"),
        expected.len() as u64
    );
    for case in &cases {
        // Pretend customer-core stored the decisions: nothing is pending any more.
        let stored = Profile {
            version: case.version + 1,
            segment: case.decide(&rules, now()).segment,
            ..case.clone()
        };
        store.upsert_profile(&stored).await.expect("stored");
    }
    assert_eq!(store.count_pending(&rules, now()).await.expect("count"), 0);
    cases.iter().map(|c| c.customer_id).collect()
}

/// Bounds, scores and names from SQL equal the domain's over the same base, ties
/// included.
async fn rfm_in_sql_matches_the_domain(store: &dyn SegmentStore, live: &[CustomerId]) {
    let mut live = live.to_vec();
    for (days, spent) in [
        (Some(3), 50.0),
        (Some(3), 50.0),
        (Some(40), 700.0),
        (None, 0.0),
    ] {
        let p = profile(200, days, spent);
        store.upsert_profile(&p).await.expect("insert");
        live.push(p.customer_id);
    }
    let mut base = Vec::new();
    for id in &live {
        base.push(store.profile(*id).await.expect("get").expect("stored"));
    }
    assert_eq!(base.len() as u64, store.count_live().await.expect("count"));
    let inputs: Vec<_> = base.iter().map(|p| p.rfm_input(now())).collect();
    let expected = RfmBounds::compute(&inputs, now()).expect("a base");

    let bounds = store
        .compute_bounds(now())
        .await
        .expect("bounds")
        .expect("a base");
    assert_eq!(bounds, expected);
    assert_eq!(
        store.bounds().await.expect("stored"),
        Some(expected.clone())
    );
    let scored = store.score_all(&bounds, now()).await.expect("score");
    assert_eq!(scored, base.len() as u64);
    let later = now() + Duration::hours(1);
    let rescored = store.score_all(&bounds, later).await.expect("again");
    assert_eq!(rescored, 0, "unchanged scores are not rewritten");
    for p in &base {
        let rfm = store
            .profile(p.customer_id)
            .await
            .expect("get")
            .and_then(|p| p.rfm)
            .expect("scored");
        let domain = p.score(&expected, now());
        assert_eq!((rfm.score, rfm.segment), (domain.score, domain.segment));
        assert_eq!(rfm.computed_at, now());
    }
    let counts = store.counts().await.expect("counts");
    assert_eq!(counts.by_segment.values().sum::<u64>(), base.len() as u64);
    assert_eq!(
        counts.by_rfm_segment.values().sum::<u64>(),
        base.len() as u64
    );
}

async fn jobs(store: &dyn SegmentStore) {
    let stale_after = Duration::minutes(10);
    let mut job = store.start_job(now(), stale_after).await.expect("start");
    assert_eq!(job.status, crm_domain::JobStatus::Running);
    match store.start_job(now(), stale_after).await {
        Err(Error::AlreadyRunning(Some(id))) => assert_eq!(id, job.id),
        other => panic!("a second start must be refused, got {other:?}"),
    }
    job.progress.total = Some(10);
    job.progress.done = 10;
    job.add(crate::batch::CHANGED, 2);
    job.finish(now(), None);
    store.save_job(&job, now()).await.expect("save");
    assert_eq!(store.job(job.id).await.expect("get"), Some(job.clone()));
    assert_eq!(store.job(Uuid::now_v7()).await.expect("get"), None);

    // A job whose process died stops blocking after a while.
    let dead = store
        .start_job(now(), stale_after)
        .await
        .expect("start again");
    let later = now() + Duration::minutes(11);
    let next = store
        .start_job(later, stale_after)
        .await
        .expect("dead one is failed");
    let dead = store.job(dead.id).await.expect("get").expect("kept");
    assert_eq!(dead.status, crm_domain::JobStatus::Failed);
    assert!(dead.error.expect("why").contains("abandoned"));
    assert_eq!(next.status, crm_domain::JobStatus::Running);
}

async fn recommendation_data(store: &dyn SegmentStore) {
    let (me, other, third) = (
        CustomerId::generate(),
        CustomerId::generate(),
        CustomerId::generate(),
    );
    let item = |product: &str, quantity, category: Option<&str>| PurchasedItem {
        product_id: product.into(),
        quantity,
        category: category.map(str::to_owned),
    };
    let order = Uuid::now_v7();
    store
        .record_purchase(
            order,
            me,
            "o-1",
            &[item("tent", 1, Some("outdoor"))],
            ago(1),
        )
        .await
        .expect("purchase");
    store
        .record_purchase(order, me, "o-1", &[item("tent", 1, None)], ago(1))
        .await
        .expect("redelivered");
    let together = [item("tent", 1, None), item("stove", 2, Some("outdoor"))];
    store
        .record_purchase(Uuid::now_v7(), other, "o-9", &together, ago(3))
        .await
        .expect("purchase");
    store
        .record_purchase(
            Uuid::now_v7(),
            third,
            "o-5",
            &[item("stove", 5, None)],
            ago(3),
        )
        .await
        .expect("purchase");
    for (who, product) in [(me, "boots"), (other, "boots"), (other, "socks")] {
        store
            .record_view(Uuid::now_v7(), who, product, Some("outdoor"), ago(2))
            .await
            .expect("view");
    }

    assert_eq!(store.purchased(me).await.expect("bought"), ["tent"]);
    let bought = store.bought_together(me).await.expect("bought together");
    assert_eq!(bought.len(), 1);
    assert_eq!(
        (
            bought[0].anchor.as_str(),
            bought[0].candidate.as_str(),
            bought[0].together
        ),
        ("tent", "stove", 1)
    );
    assert_eq!(bought[0].anchor_at, ago(1));
    let viewed = store.viewed_together(me).await.expect("viewed together");
    assert_eq!(viewed.len(), 1);
    assert_eq!(viewed[0].candidate, "socks");
    let sellers = store
        .best_sellers(Some("outdoor"), 10)
        .await
        .expect("sellers");
    let sold: Vec<(&str, i64)> = sellers
        .iter()
        .map(|s| (s.product_id.as_str(), s.sold))
        .collect();
    assert_eq!(
        sold,
        [("stove", 7), ("tent", 2)],
        "a redelivered order counts once"
    );
    assert!(
        store
            .best_sellers(Some("kitchen"), 10)
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(
        store.best_sellers(None, 1).await.expect("overall")[0].product_id,
        "stove"
    );
}
