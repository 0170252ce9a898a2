use super::*;
use crate::repo::SqliteRepository;
use crm_platform::cache::MemoryCache;

async fn service() -> CustomerService {
    let repo = SqliteRepository::in_memory().await.expect("sqlite");
    CustomerService::new(Arc::new(repo), Arc::new(MemoryCache::new(100)))
}

fn draft(email: &str) -> CustomerDraft {
    CustomerDraft {
        email: email.into(),
        ..CustomerDraft::default()
    }
}

#[tokio::test]
async fn a_read_after_an_update_never_sees_the_old_cached_value() {
    let service = service().await;
    let created = service.create(draft("a@example.com")).await.unwrap();
    assert_eq!(service.get(created.id).await.unwrap().version, 1); // now cached
    let patch = CustomerPatch {
        first_name: Some(Some("Ada".into())),
        ..Default::default()
    };
    service.update(created.id, &patch, None).await.unwrap();
    let read = service.get(created.id).await.unwrap();
    assert_eq!(read.version, 2);
    assert_eq!(read.first_name.unwrap().as_str(), "Ada");
}

#[tokio::test]
async fn a_stale_expected_version_is_refused_and_changes_nothing() {
    let service = service().await;
    let created = service.create(draft("a@example.com")).await.unwrap();
    let patch = CustomerPatch {
        first_name: Some(Some("Ada".into())),
        ..Default::default()
    };
    service.update(created.id, &patch, Some(1)).await.unwrap();
    let again = service.update(created.id, &patch, Some(1)).await;
    assert!(matches!(
        again,
        Err(Error::StaleVersion {
            expected: 1,
            current: 2
        })
    ));
}

#[tokio::test]
async fn an_empty_patch_is_not_a_new_version() {
    let service = service().await;
    let created = service.create(draft("a@example.com")).await.unwrap();
    let same = service
        .update(created.id, &CustomerPatch::default(), None)
        .await
        .unwrap();
    assert_eq!(same.version, 1);
}

#[tokio::test]
async fn deleting_twice_is_one_change() {
    let service = service().await;
    let created = service.create(draft("a@example.com")).await.unwrap();
    assert_eq!(service.delete(created.id, None).await.unwrap().version, 2);
    assert_eq!(service.delete(created.id, None).await.unwrap().version, 2);
    let patch = CustomerPatch {
        first_name: Some(Some("Ada".into())),
        ..Default::default()
    };
    assert!(matches!(
        service.update(created.id, &patch, None).await,
        Err(Error::Deleted(_))
    ));
}

#[tokio::test]
async fn a_segment_is_set_once_and_never_on_a_deleted_customer() {
    let service = service().await;
    let created = service.create(draft("a@example.com")).await.unwrap();
    let vip = service
        .set_segment(created.id, Segment::Vip, "ltv", None)
        .await
        .unwrap();
    assert_eq!((vip.segment, vip.version), (Segment::Vip, 2));
    let again = service
        .set_segment(created.id, Segment::Vip, "ltv", None)
        .await
        .unwrap();
    assert_eq!(again.version, 2, "the same segment is no change");
    assert_eq!(
        service.get(created.id).await.unwrap().segment,
        Segment::Vip,
        "not cached stale"
    );
    service.delete(created.id, None).await.unwrap();
    let refused = service
        .set_segment(created.id, Segment::Churned, "time", None)
        .await;
    assert!(matches!(refused, Err(Error::Deleted(_))));
    let other = service.create(draft("b@example.com")).await.unwrap();
    let stale = service
        .set_segment(other.id, Segment::Vip, "ltv", Some(0))
        .await;
    assert!(
        matches!(stale, Err(Error::StaleVersion { .. })),
        "decided from an old snapshot"
    );
}

#[tokio::test]
async fn pages_have_a_cursor_until_the_last() {
    let service = service().await;
    for i in 0..5 {
        service
            .create(draft(&format!("c{i}@example.com")))
            .await
            .unwrap();
    }
    let first = service.list(None, Some(2), false).await.unwrap();
    assert_eq!(first.customers.len(), 2);
    let second = service
        .list(first.next_cursor.as_deref(), Some(2), false)
        .await
        .unwrap();
    let third = service
        .list(second.next_cursor.as_deref(), Some(2), false)
        .await
        .unwrap();
    assert_eq!(third.customers.len(), 1);
    assert_eq!(third.next_cursor, None);
    assert!(matches!(
        service.list(Some("!!"), None, false).await,
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        service.list(None, Some(101), false).await,
        Err(Error::Invalid(_))
    ));
}
