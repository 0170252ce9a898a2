//! The contract every `SearchIndex` adapter passes.

use chrono::{Duration, TimeZone, Utc};
use crm_domain::{Customer, CustomerDraft, CustomerId, CustomerStatus, Segment};

use super::{Applied, SearchIndex, SearchQuery};

pub fn customer(
    email: &str,
    first: &str,
    last: &str,
    phone: Option<&str>,
    tags: &[&str],
) -> Customer {
    let draft = CustomerDraft {
        email: email.into(),
        phone: phone.map(str::to_owned),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    // Ids from the e-mail, so that the requests an adapter sends are the same every run
    // (the Elasticsearch adapter's are checked against recordings).
    let mut id = [0u8; 16];
    for (i, byte) in email.bytes().enumerate() {
        id[i % 16] = id[i % 16].wrapping_mul(31).wrapping_add(byte);
    }
    let id = CustomerId::from(uuid::Uuid::from_bytes(id));
    Customer::create(id, draft, at).expect("valid")
}

fn ids(found: &super::SearchResults) -> Vec<CustomerId> {
    found.hits.iter().map(|h| h.customer.id).collect()
}

async fn search(index: &dyn SearchIndex, query: SearchQuery) -> super::SearchResults {
    index
        .search(&SearchQuery { limit: 20, ..query })
        .await
        .expect("search")
}

async fn text(index: &dyn SearchIndex, text: &str) -> Vec<CustomerId> {
    let query = SearchQuery {
        text: text.into(),
        ..Default::default()
    };
    ids(&search(index, query).await)
}

pub async fn run(index: &dyn SearchIndex) {
    let katherine = customer(
        "katherine.johnson@nasa.example",
        "Katherine",
        "Johnson",
        Some("+12025550123"),
        &["scientist"],
    );
    let mut dorothy = customer(
        "dorothy@nasa.example",
        "Dorothy",
        "Vaughan",
        None,
        &["manager"],
    );
    dorothy.created_at += Duration::days(10);
    dorothy.segment = Segment::Vip;
    let mary = customer(
        "mary@nasa.example",
        "Mary",
        "Jackson",
        Some("+12025559876"),
        &[],
    );
    for c in [&katherine, &dorothy, &mary] {
        assert_eq!(index.apply(c).await.expect("apply"), Applied::Indexed);
    }
    index.refresh().await.expect("refresh");

    // Typos, e-mail parts and phone endings.
    for query in [
        "Katherin",
        "jonson",
        "katherine.johnson",
        "0123",
        "KATHERINE johnson",
    ] {
        assert_eq!(text(index, query).await, [katherine.id], "{query}");
    }
    assert!(text(index, "xyz").await.is_empty());
    assert_eq!(
        text(index, "Katherine Vaughan").await.len(),
        2,
        "any word may match (best fields, OR)"
    );

    // Filters, and every customer when there is no text.
    let all = search(index, SearchQuery::default()).await;
    assert_eq!(all.total, 3);
    let vip = SearchQuery {
        segment: Some(Segment::Vip),
        ..Default::default()
    };
    assert_eq!(ids(&search(index, vip).await), [dorothy.id]);
    let tagged = SearchQuery {
        tags: vec!["scientist".into(), "manager".into()],
        ..Default::default()
    };
    assert_eq!(search(index, tagged).await.total, 2);
    let recent = SearchQuery {
        created_after: Some(katherine.created_at + Duration::days(1)),
        ..Default::default()
    };
    assert_eq!(ids(&search(index, recent).await), [dorothy.id]);

    // Pages: most recent activity first among equal scores, no overlap.
    let mut active = mary.clone();
    active.last_activity_at += Duration::days(30);
    active.version += 1;
    index.apply(&active).await.expect("apply");
    index.refresh().await.expect("refresh");
    let page = |offset| SearchQuery {
        offset,
        limit: 2,
        ..Default::default()
    };
    let first = index.search(&page(0)).await.expect("page");
    let second = index.search(&page(2)).await.expect("page");
    assert_eq!(
        (first.total, first.hits.len(), second.hits.len()),
        (3, 2, 1)
    );
    assert_eq!(
        first.hits[0].customer.id, mary.id,
        "most recently active first"
    );
    let mut seen = ids(&first);
    seen.extend(ids(&second));
    seen.sort_by_key(|id| id.as_uuid());
    seen.dedup();
    assert_eq!(seen.len(), 3);

    // A late, older snapshot never overwrites a newer one, even before a refresh.
    let renamed = Customer {
        first_name: Some(crm_domain::PersonName::parse("Kathy").unwrap()),
        version: katherine.version + 2,
        ..katherine.clone()
    };
    assert_eq!(
        index.apply(&renamed).await.expect("apply"),
        Applied::Indexed
    );
    let older = Customer {
        version: katherine.version + 1,
        ..katherine.clone()
    };
    assert_eq!(index.apply(&older).await.expect("apply"), Applied::Stale);
    index.refresh().await.expect("refresh");
    assert_eq!(text(index, "kathy").await, [katherine.id]);
    assert_eq!(index.apply(&older).await.expect("apply"), Applied::Stale);

    // Deleted: gone from default searches, found when asked for.
    let deleted = renamed.deleted(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
    index.apply(&deleted).await.expect("apply");
    index.refresh().await.expect("refresh");
    assert!(text(index, "kathy").await.is_empty());
    let asked = SearchQuery {
        status: Some(CustomerStatus::Deleted),
        ..Default::default()
    };
    assert_eq!(ids(&search(index, asked).await), [katherine.id]);

    // Merged away: gone for good.
    let merged = Customer {
        merged_into: Some(dorothy.id),
        version: mary.version + 5,
        ..mary.clone()
    };
    assert_eq!(index.apply(&merged).await.expect("apply"), Applied::Removed);
    assert_eq!(index.apply(&active).await.expect("apply"), Applied::Stale);
    index.refresh().await.expect("refresh");
    assert!(text(index, "mary").await.is_empty());
    assert_eq!(search(index, SearchQuery::default()).await.total, 1);

    // Exact words rank above near misses.
    let dorothie = customer("dorothie@nasa.example", "Dorothie", "Vaughn", None, &[]);
    index.apply(&dorothie).await.expect("apply");
    index.refresh().await.expect("refresh");
    assert_eq!(
        text(index, "Dorothy Vaughan").await,
        [dorothy.id, dorothie.id]
    );
}

/// The contract of every `IndexCatalog`: a generation is built beside the live index,
/// which keeps answering, and the swap makes searches read the new one.
pub async fn catalog(catalog: &dyn super::IndexCatalog) {
    let everyone = SearchQuery {
        limit: 10,
        ..Default::default()
    };
    let (live, created) = catalog.open_live().await.expect("open");
    assert!(created, "a first start creates the index");
    let old = customer("old@example.com", "Old", "Generation", None, &[]);
    live.apply(&old).await.expect("apply");
    live.refresh().await.expect("refresh");

    let generation = catalog.create_generation().await.expect("generation");
    let new = customer("new@example.com", "New", "Generation", None, &[]);
    generation.index.apply(&new).await.expect("apply");
    let before = live.search(&everyone).await.expect("search");
    assert_eq!(
        ids(&before),
        [old.id],
        "searches read the live index meanwhile"
    );

    let swapped = catalog.promote(&generation).await.expect("promote");
    let after = swapped.search(&everyone).await.expect("search");
    assert_eq!(ids(&after), [new.id], "searches read the new generation");
}
