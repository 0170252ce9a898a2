//! The contract every `CustomerRepository` adapter passes.

use chrono::{TimeZone, Utc};
use crm_domain::{Customer, CustomerDraft, CustomerId, CustomerPatch};

use super::CustomerRepository;
use crate::Error;

fn customer(email: &str) -> Customer {
    let draft = CustomerDraft {
        email: email.into(),
        first_name: Some("Katherine".into()),
        tags: vec!["VIP".into(), "newsletter".into()],
        ..CustomerDraft::default()
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    Customer::create(CustomerId::generate(), draft, now).expect("valid customer")
}

pub async fn run(repo: &dyn CustomerRepository) {
    repo.ping().await.expect("ping");

    // Insert and read back every field.
    let alice = customer("alice@example.com");
    repo.insert(&alice).await.expect("insert");
    assert_eq!(repo.get(alice.id).await.expect("get"), Some(alice.clone()));
    assert_eq!(repo.get(CustomerId::generate()).await.expect("get"), None);

    // One live customer per e-mail.
    let twin = customer("alice@example.com");
    assert!(matches!(repo.insert(&twin).await, Err(Error::EmailTaken)));

    // Optimistic concurrency: an update must name the next version.
    let patch = CustomerPatch {
        last_name: Some(Some("Johnson".into())),
        ..CustomerPatch::default()
    };
    let v2 = alice.patched(&patch, Utc::now()).expect("patch");
    assert_eq!(v2.version, 2);
    repo.update(&v2).await.expect("update to v2");
    assert_eq!(repo.get(alice.id).await.expect("get"), Some(v2.clone()));
    assert!(
        matches!(repo.update(&v2).await, Err(Error::VersionConflict)),
        "writing v2 again over v2 is a conflict"
    );
    let ghost = customer("ghost@example.com");
    let ghost_v2 = ghost.patched(&patch, Utc::now()).expect("patch");
    assert!(matches!(
        repo.update(&ghost_v2).await,
        Err(Error::NotFound(_))
    ));

    // Changing the e-mail to a taken one is refused.
    let bob = customer("bob@example.com");
    repo.insert(&bob).await.expect("insert bob");
    let steal = CustomerPatch {
        email: Some("alice@example.com".into()),
        ..CustomerPatch::default()
    };
    let bob_v2 = bob.patched(&steal, Utc::now()).expect("patch");
    assert!(matches!(repo.update(&bob_v2).await, Err(Error::EmailTaken)));

    // A deleted customer frees the e-mail but stays readable.
    let deleted = v2.deleted(Utc::now());
    repo.update(&deleted).await.expect("soft delete");
    assert_eq!(
        repo.get(alice.id).await.expect("get"),
        Some(deleted.clone())
    );
    repo.insert(&twin).await.expect("e-mail is free again");

    // Pages exclude deleted customers, follow id order and end.
    let mut live = vec![bob.clone(), twin.clone()];
    for i in 0..5 {
        let c = customer(&format!("page{i}@example.com"));
        repo.insert(&c).await.expect("insert");
        live.push(c);
    }
    live.sort_by_key(|c| c.id);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = repo.list(after, 3).await.expect("list");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page);
    }
    assert_eq!(seen, live);
}
