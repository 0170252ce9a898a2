//! The contract of an import's batch writes, run with the rest of `contract.rs`.

use chrono::Utc;
use crm_domain::{Customer, CustomerPatch, Email};

use super::{
    CustomerRepository,
    contract::{RecordingBus, customer, relay_all},
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
