//! The contract of the store's batch writes (an import's rows, a consumer's events),
//! run with the rest of `contract.rs`.

use chrono::{Duration, TimeZone, Utc};
use crm_domain::{Customer, CustomerEvent, CustomerEventType, CustomerId, CustomerPatch, Email};
use uuid::Uuid;

use super::{
    CustomerRepository, EventOutcome,
    contract::{RecordingBus, customer, event, order, relay_all},
};
use crate::Error;

fn renamed(customer: &Customer, last_name: &str) -> Customer {
    let patch = CustomerPatch {
        last_name: Some(Some(last_name.into())),
        ..CustomerPatch::default()
    };
    customer.patched(&patch, Utc::now()).expect("a valid patch")
}

/// A batch is one transaction: its new customers, its changes and their events in the
/// outbox land together, or (another writer was first) none of them does.
pub async fn import_batches(repo: &dyn CustomerRepository) {
    let bus = RecordingBus::default();
    let kept = customer("batch-kept@example.com");
    repo.insert(&kept).await.expect("insert");
    relay_all(repo, &bus).await;

    // More rows than one statement takes.
    let many: Vec<Customer> = (0..1_100)
        .map(|n| customer(&format!("batch-{n}@example.com")))
        .collect();
    let changed = renamed(&kept, "Batch");
    repo.write_import_batch(&many, std::slice::from_ref(&changed))
        .await
        .expect("a batch");
    let emails: Vec<Email> = many
        .iter()
        .chain([&kept])
        .map(|c| c.email.clone())
        .collect();
    let found = repo.find_live_by_emails(&emails).await.expect("by e-mails");
    assert_eq!(
        found.len(),
        1_101,
        "every customer of the batch, and the changed one"
    );
    assert!(found.contains(&changed), "the change is stored");
    assert!(found.contains(&many[1_099]), "the last row is stored");
    let keys = relay_all(repo, &bus).await;
    let created = keys.iter().filter(|k| *k == "customer.created").count();
    assert_eq!(
        (created, keys.len()),
        (1_100, 1_101),
        "one event per row: {keys:?}"
    );

    // An e-mail taken meanwhile fails the whole batch.
    let fresh = customer("batch-fresh@example.com");
    let twin = customer("batch-7@example.com");
    let written = repo.write_import_batch(&[fresh.clone(), twin], &[]).await;
    assert!(matches!(written, Err(Error::EmailTaken)), "{written:?}");
    // So does a customer changed meanwhile (the batch read version 1, it is at 2).
    let stale = renamed(&kept, "Stale");
    let written = repo
        .write_import_batch(std::slice::from_ref(&fresh), &[stale])
        .await;
    assert!(
        matches!(written, Err(Error::VersionConflict)),
        "{written:?}"
    );
    assert_eq!(
        repo.get(fresh.id).await.expect("get"),
        None,
        "nothing written"
    );
    assert!(relay_all(repo, &bus).await.is_empty(), "nothing announced");

    // Deleted customers are not found by their e-mail.
    let deleted = changed.deleted(Utc::now());
    repo.write_import_batch(&[], std::slice::from_ref(&deleted))
        .await
        .expect("a deletion written as a change");
    let found = repo
        .find_live_by_emails(std::slice::from_ref(&kept.email))
        .await
        .expect("by e-mail");
    assert!(found.is_empty(), "{found:?}");
}

/// A batch of events is recorded as each would be alone, in one transaction: outcomes
/// in the order given, events of one customer all counted, the same event once.
pub async fn event_batches(repo: &dyn CustomerRepository) {
    let bus = RecordingBus::default();
    let (ada, bob) = (
        customer("batch-ada@example.com"),
        customer("batch-bob@example.com"),
    );
    repo.insert(&ada).await.expect("insert");
    repo.insert(&bob).await.expect("insert");
    relay_all(repo, &bus).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap();
    let now = t0 + Duration::hours(1);
    let completed = |customer: &Customer, order_id: &str, total: f64, minutes: i64| {
        let data = order(order_id, total);
        let at = t0 + Duration::minutes(minutes);
        event(customer.id, CustomerEventType::OrderCompleted, data, at)
    };
    let first = completed(&ada, "o-1", 10.0, 1);
    let stranger = CustomerEvent {
        id: Uuid::now_v7(),
        customer_id: CustomerId::generate(),
        ..first.clone()
    };
    let batch = [
        first.clone(),
        completed(&bob, "o-2", 20.0, 2),
        stranger,
        completed(&ada, "o-3", 30.0, 3),
        first,
    ];
    let outcomes = repo.record_events(&batch, now).await.expect("a batch");
    let kinds: Vec<&str> = outcomes
        .iter()
        .map(|outcome| match outcome {
            EventOutcome::Applied { .. } => "applied",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::UnknownCustomer => "unknown",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["applied", "applied", "unknown", "applied", "duplicate"]
    );
    let ada = repo.get(ada.id).await.expect("get").expect("ada");
    assert_eq!(
        (ada.metrics.total_orders, ada.metrics.total_spent),
        (2, 40.0),
        "both of her orders, the repeated event once"
    );
    let bob = repo.get(bob.id).await.expect("get").expect("bob");
    assert_eq!(bob.metrics.total_orders, 1);
    let keys = relay_all(repo, &bus).await;
    let updated = keys.iter().filter(|k| *k == "customer.updated").count();
    assert_eq!(
        updated, 3,
        "each applied event announces its change: {keys:?}"
    );
}
