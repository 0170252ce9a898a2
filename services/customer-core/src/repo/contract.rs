//! The contract every `CustomerRepository` adapter passes.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm_domain::{
    Customer, CustomerDraft, CustomerEvent, CustomerEventType, CustomerId, CustomerPatch,
};
use serde_json::json;
use uuid::Uuid;

use super::{Change, CustomerRepository, EventOutcome, FeedPosition};
use crate::Error;

/// A bus that records what it is given (after an optional delay, to make relays overlap).
#[derive(Default)]
pub struct RecordingBus {
    /// (exchange, message)
    pub published: std::sync::Mutex<Vec<(String, crm_platform::bus::Message)>>,
    pub delay: std::time::Duration,
}

#[async_trait::async_trait]
impl crm_platform::bus::EventBus for RecordingBus {
    async fn declare(
        &self,
        _: &crm_platform::bus::ConsumerConfig,
    ) -> Result<(), crm_platform::bus::BusError> {
        Ok(())
    }

    async fn publish(
        &self,
        exchange: &str,
        messages: &[crm_platform::bus::Message],
    ) -> Result<(), crm_platform::bus::BusError> {
        self.broadcast(exchange, messages).await
    }

    async fn broadcast(
        &self,
        exchange: &str,
        messages: &[crm_platform::bus::Message],
    ) -> Result<(), crm_platform::bus::BusError> {
        tokio::time::sleep(self.delay).await;
        let mut published = self.published.lock().unwrap();
        published.extend(messages.iter().map(|m| (exchange.to_owned(), m.clone())));
        Ok(())
    }

    async fn consume(
        &self,
        _: crm_platform::bus::ConsumerConfig,
        _: std::sync::Arc<dyn crm_platform::bus::Handler>,
        _: crm_platform::Shutdown,
    ) -> Result<(), crm_platform::bus::BusError> {
        Ok(())
    }

    async fn dead_letters(
        &self,
        _: &str,
        _: usize,
    ) -> Result<Vec<crm_platform::bus::DeadLetter>, crm_platform::bus::BusError> {
        Ok(Vec::new())
    }

    async fn depth(&self, _: &str) -> Result<u64, crm_platform::bus::BusError> {
        Ok(0)
    }
}

/// Every write leaves its `customer.*` event, with the snapshot, in order; the relay
/// publishes each once.
async fn outbox(repo: &dyn CustomerRepository) {
    let bus = RecordingBus::default();
    relay_all(repo, &bus).await;

    let created = customer("outbox@example.com");
    repo.insert(&created).await.expect("insert");
    let patch = CustomerPatch {
        last_name: Some(Some("Box".into())),
        ..CustomerPatch::default()
    };
    let updated = created.patched(&patch, Utc::now()).expect("patch");
    repo.update(
        &updated,
        &Change::Snapshot(CustomerEventType::CustomerUpdated),
    )
    .await
    .expect("update");
    let deleted = updated.deleted(Utc::now());
    repo.update(
        &deleted,
        &Change::Snapshot(CustomerEventType::CustomerDeleted),
    )
    .await
    .expect("delete");

    let mut batches = Vec::new();
    loop {
        let published = repo.relay_outbox(&bus, 2).await.expect("relay");
        if published == 0 {
            break;
        }
        batches.push(published);
    }
    assert_eq!(batches, [2, 1], "oldest first, in batches");
    let published: Vec<_> = bus
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m.clone())
        .collect();
    let keys: Vec<&str> = published.iter().map(|m| m.routing_key.as_str()).collect();
    assert_eq!(
        keys,
        ["customer.created", "customer.updated", "customer.deleted"]
    );
    for (message, version) in published.iter().zip(1..) {
        let event: CustomerEvent = serde_json::from_slice(&message.payload).expect("event json");
        assert_eq!(event.id.to_string(), message.id);
        assert_eq!(event.customer_id, created.id);
        assert_eq!(event.data["version"], version);
        assert_eq!(
            event.data["customer"]["version"], version,
            "the full snapshot"
        );
    }
    assert_eq!(
        repo.relay_outbox(&bus, 100).await.expect("relay"),
        0,
        "published once"
    );
}

pub(super) fn event(
    customer: CustomerId,
    event_type: CustomerEventType,
    data: serde_json::Value,
    at: DateTime<Utc>,
) -> CustomerEvent {
    CustomerEvent {
        id: Uuid::now_v7(),
        customer_id: customer,
        event_type,
        data,
        source: "test".into(),
        timestamp: at,
    }
}

pub(super) fn order(id: &str, total: f64) -> serde_json::Value {
    json!({ "order_id": id, "total": total, "currency": "EUR",
            "items": [{ "product_id": "p-1", "quantity": 1, "price": total }] })
}

/// Activity: idempotent recording, projections, metrics, the feed.
async fn activity(repo: &dyn CustomerRepository) {
    let bus = RecordingBus::default();
    relay_all(repo, &bus).await;
    let customer = customer("activity@example.com");
    repo.insert(&customer).await.expect("insert");
    let id = customer.id;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap();
    let now = t0 + Duration::hours(1);

    let stranger = event(
        CustomerId::generate(),
        CustomerEventType::ProductViewed,
        json!({ "product_id": "p" }),
        t0,
    );
    assert_eq!(
        repo.record_event(&stranger, now).await.expect("record"),
        EventOutcome::UnknownCustomer
    );

    let placed = event(id, CustomerEventType::OrderPlaced, order("o-1", 30.0), t0);
    let completed = event(
        id,
        CustomerEventType::OrderCompleted,
        order("o-1", 30.0),
        t0 + Duration::minutes(5),
    );
    let EventOutcome::Applied {
        customer: after,
        changed,
    } = repo.record_event(&placed, now).await.expect("placed")
    else {
        panic!("placed not applied")
    };
    assert!(changed, "activity moved forward");
    assert_eq!(
        after.metrics.total_orders, 0,
        "a placed order is not a completed one"
    );
    let EventOutcome::Applied {
        customer: after, ..
    } = repo.record_event(&completed, now).await.expect("completed")
    else {
        panic!("completed not applied")
    };
    assert_eq!(
        (after.metrics.total_orders, after.metrics.total_spent),
        (1, 30.0)
    );
    assert_eq!(after.last_activity_at, completed.timestamp);
    assert_eq!(
        repo.get(id).await.expect("get"),
        Some(*after.clone()),
        "stored as returned"
    );

    // The same event again, and another event completing the same order: counted once.
    assert_eq!(
        repo.record_event(&completed, now).await.expect("again"),
        EventOutcome::Duplicate
    );
    let resent = CustomerEvent {
        id: Uuid::now_v7(),
        ..completed.clone()
    };
    repo.record_event(&resent, now).await.expect("resent");
    assert_eq!(
        repo.get(id)
            .await
            .expect("get")
            .unwrap()
            .metrics
            .total_orders,
        1
    );

    let second = event(
        id,
        CustomerEventType::OrderCompleted,
        order("o-2", 60.0),
        t0 + Duration::minutes(10),
    );
    repo.record_event(&second, now).await.expect("second order");
    let metrics = repo.get(id).await.expect("get").unwrap().metrics;
    assert_eq!(
        (
            metrics.total_orders,
            metrics.total_spent,
            metrics.average_order
        ),
        (2, 90.0, 45.0)
    );

    let ticket = event(
        id,
        CustomerEventType::SupportTicket,
        json!({ "ticket_id": "t-1", "subject": "Late" }),
        t0 + Duration::minutes(1),
    );
    let view = event(
        id,
        CustomerEventType::ProductViewed,
        json!({ "product_id": "p-9" }),
        t0 + Duration::minutes(2),
    );
    for e in [&ticket, &view] {
        assert!(matches!(
            repo.record_event(e, now).await.expect("record"),
            EventOutcome::Applied { .. }
        ));
    }

    // The feed: newest first, by type, a page at a time.
    let feed = repo.list_events(id, None, None, 10).await.expect("feed");
    let ids: Vec<Uuid> = feed.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [
            second.id,
            resent.id,
            completed.id,
            view.id,
            ticket.id,
            placed.id
        ]
    );
    assert_eq!(feed[0], second, "an event reads back whole");
    let orders = repo
        .list_events(id, Some(CustomerEventType::OrderCompleted), None, 10)
        .await
        .expect("by type");
    assert_eq!(orders.len(), 3);
    let page = repo
        .list_events(id, None, Some(FeedPosition::of(&feed[2])), 2)
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|e| e.id).collect::<Vec<_>>(),
        [view.id, ticket.id]
    );

    // An abandoned cart starts the notification flow.
    let cart = event(
        id,
        CustomerEventType::CartAbandoned,
        json!({ "cart_id": "c-1", "cart_value": 42.0, "items": [] }),
        t0 + Duration::minutes(20),
    );
    repo.record_event(&cart, now).await.expect("cart");

    // Purchase analytics: both completed orders, counted once, on their day.
    let day = t0.date_naive();
    let sales = repo.daily_sales(day, day).await.expect("daily sales");
    assert_eq!(sales.len(), 1);
    assert_eq!((sales[0].orders, sales[0].revenue), (2, 90.0));
    assert_eq!(
        (sales[0].segment, sales[0].currency.as_str()),
        (crm_domain::Segment::New, "EUR")
    );
    assert!(
        repo.daily_sales(day.succ_opt().unwrap(), day.succ_opt().unwrap())
            .await
            .unwrap()
            .is_empty()
    );

    // Every change announced itself; the notifications went to their own exchange.
    while repo.relay_outbox(&bus, 100).await.expect("relay") > 0 {}
    let published = bus.published.lock().unwrap().clone();
    let notifications: Vec<(&str, serde_json::Value)> = published
        .iter()
        .filter(|(exchange, _)| exchange == crm_platform::bus::NOTIFICATIONS_EXCHANGE)
        .map(|(_, m)| {
            (
                m.routing_key.as_str(),
                serde_json::from_slice(&m.payload).unwrap(),
            )
        })
        .collect();
    assert_eq!(notifications.len(), 2, "{notifications:?}");
    assert_eq!(notifications[0].0, "milestone.reached");
    assert_eq!(notifications[0].1["milestone"], "first_order");
    assert_eq!(notifications[1].0, "cart.abandoned.flow");
    assert_eq!(notifications[1].1["cart_id"], "c-1");
    let updates = published
        .iter()
        .filter(|(_, m)| m.routing_key == "customer.updated")
        .count();
    let final_version = repo.get(id).await.unwrap().unwrap().version;
    assert_eq!(
        updates as i64,
        final_version - 1,
        "one customer.updated per new version"
    );
}

pub(super) fn customer(email: &str) -> Customer {
    let draft = CustomerDraft {
        email: email.into(),
        first_name: Some("Katherine".into()),
        tags: vec!["VIP".into(), "newsletter".into()],
        // Consented, so milestones and carts send messages.
        preferences: crm_domain::PreferencesPatch {
            newsletter: Some(true),
            ..Default::default()
        },
        ..CustomerDraft::default()
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    Customer::create(CustomerId::generate(), draft, now).expect("valid customer")
}

pub async fn run(repo: &dyn CustomerRepository) {
    repo.ping().await.expect("ping");
    outbox(repo).await;

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
    repo.update(&v2, &Change::Snapshot(CustomerEventType::CustomerUpdated))
        .await
        .expect("update to v2");
    assert_eq!(repo.get(alice.id).await.expect("get"), Some(v2.clone()));
    assert!(
        matches!(
            repo.update(&v2, &Change::Snapshot(CustomerEventType::CustomerUpdated))
                .await,
            Err(Error::VersionConflict)
        ),
        "writing v2 again over v2 is a conflict"
    );
    let ghost = customer("ghost@example.com");
    let ghost_v2 = ghost.patched(&patch, Utc::now()).expect("patch");
    assert!(matches!(
        repo.update(
            &ghost_v2,
            &Change::Snapshot(CustomerEventType::CustomerUpdated)
        )
        .await,
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
    assert!(matches!(
        repo.update(
            &bob_v2,
            &Change::Snapshot(CustomerEventType::CustomerUpdated)
        )
        .await,
        Err(Error::EmailTaken)
    ));

    // A deleted customer frees the e-mail but stays readable.
    let deleted = v2.deleted(Utc::now());
    repo.update(
        &deleted,
        &Change::Snapshot(CustomerEventType::CustomerDeleted),
    )
    .await
    .expect("soft delete");
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
        let page = repo.list(after, 3, false).await.expect("list");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page);
    }
    assert_eq!(seen, live);
    // A full reindex asks for the deleted too.
    let everyone = repo.list(None, 100, true).await.expect("list");
    assert!(everyone.contains(&deleted));
    assert!(live.iter().all(|c| everyone.contains(c)));

    activity(repo).await;
    segment_change(repo).await;
    segment_changes(repo).await;
    super::contract_batches::import_batches(repo).await;
    super::contract_batches::event_batches(repo).await;
}

/// Two relays (replicas) over one outbox, with a slow broker so their rounds overlap:
/// every event is published exactly once.
pub async fn two_relays_publish_each_event_once(repo: std::sync::Arc<dyn CustomerRepository>) {
    let count = 40;
    for i in 0..count {
        repo.insert(&customer(&format!("relay{i}@example.com")))
            .await
            .expect("insert");
    }
    let bus = std::sync::Arc::new(RecordingBus {
        delay: std::time::Duration::from_millis(30),
        ..RecordingBus::default()
    });
    let relay = |repo: std::sync::Arc<dyn CustomerRepository>,
                 bus: std::sync::Arc<RecordingBus>| async move {
        while repo.relay_outbox(bus.as_ref(), 5).await.expect("relay") > 0 {}
    };
    tokio::join!(
        relay(repo.clone(), bus.clone()),
        relay(repo.clone(), bus.clone())
    );
    let published = bus.published.lock().unwrap().clone();
    let mut ids: Vec<&str> = published.iter().map(|(_, m)| m.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(published.len(), count, "no event published twice");
    assert_eq!(ids.len(), count);
}

/// The same event delivered to two consumers at once (two replicas, or a redelivery
/// racing the first): applied exactly once.
pub async fn a_racing_duplicate_is_applied_once(repo: std::sync::Arc<dyn CustomerRepository>) {
    let customer = customer("race@example.com");
    repo.insert(&customer).await.expect("insert");
    let at = Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap();
    let completed = event(
        customer.id,
        CustomerEventType::OrderCompleted,
        order("o-race", 25.0),
        at,
    );
    let now = Utc::now();
    let (first, second) = tokio::join!(
        repo.record_event(&completed, now),
        repo.record_event(&completed, now)
    );
    let outcomes = [first.expect("first"), second.expect("second")];
    let applied = outcomes
        .iter()
        .filter(|o| matches!(o, EventOutcome::Applied { .. }))
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == EventOutcome::Duplicate)
        .count();
    assert_eq!((applied, duplicates), (1, 1), "{outcomes:?}");
    let stored = repo.get(customer.id).await.expect("get").expect("customer");
    assert_eq!(
        (stored.metrics.total_orders, stored.metrics.total_spent),
        (1, 25.0)
    );
}

/// Relays the whole outbox to `bus`; the routing keys published (`bus` forgets them).
pub(super) async fn relay_all(repo: &dyn CustomerRepository, bus: &RecordingBus) -> Vec<String> {
    while repo.relay_outbox(bus, 100).await.expect("relay") > 0 {}
    let published = std::mem::take(&mut *bus.published.lock().unwrap());
    published.into_iter().map(|(_, m)| m.routing_key).collect()
}

/// A change with its event: the write, the activity and the outbox move together.
async fn segment_change(repo: &dyn CustomerRepository) {
    let bus = RecordingBus::default();
    relay_all(repo, &bus).await;
    let customer = customer("segment@example.com");
    repo.insert(&customer).await.expect("insert");
    let vip = customer.with_segment(crm_domain::Segment::Vip, Utc::now());
    let event =
        CustomerEvent::segment_changed(&vip, customer.segment, "lifetime value", Utc::now());

    repo.update(&vip, &Change::Activity(event.clone()))
        .await
        .expect("segment change");

    assert_eq!(repo.get(customer.id).await.expect("get"), Some(vip.clone()));
    let feed = repo
        .list_events(customer.id, None, None, 10)
        .await
        .expect("feed");
    assert_eq!(feed, std::slice::from_ref(&event), "in the activity");
    assert_eq!(feed[0].data["old_segment"], "new");
    assert_eq!(feed[0].data["new_segment"], "vip");
    let keys = relay_all(repo, &bus).await;
    assert_eq!(keys, ["customer.created", "customer.segment_changed"]);
    assert!(
        matches!(
            repo.update(&vip, &Change::Activity(event.clone())).await,
            Err(Error::VersionConflict)
        ),
        "a stale write changes nothing"
    );
}

/// Many decisions at once: what changes gets a version and an event each, in the
/// activity and the outbox; stale, deleted, unchanged and unknown ones are skipped.
async fn segment_changes(repo: &dyn CustomerRepository) {
    use crm_domain::Segment;

    use super::SegmentChange;

    let bus = RecordingBus::default();
    relay_all(repo, &bus).await;
    let mut stored = Vec::new();
    for i in 0..4 {
        let c = customer(&format!("bulk{i}@example.com"));
        repo.insert(&c).await.expect("insert");
        stored.push(c);
    }
    relay_all(repo, &bus).await;
    let change = |c: &Customer, segment, based_on_version| SegmentChange {
        id: c.id,
        segment,
        reason: "batch".into(),
        based_on_version,
    };
    let changes = [
        change(&stored[0], Segment::AtRisk, 1),
        change(&stored[1], Segment::Churned, 1),
        change(&stored[2], Segment::Vip, 0), // decided from an older version
        change(&stored[3], Segment::New, 1), // already new
        SegmentChange {
            id: CustomerId::generate(), // unknown
            ..change(&stored[0], Segment::Vip, 1)
        },
    ];

    let changed = repo
        .set_segments(&changes, Utc::now())
        .await
        .expect("set segments");

    let mut changed_ids: Vec<CustomerId> = changed.iter().map(|c| c.id).collect();
    changed_ids.sort_by_key(|id| id.as_uuid());
    let mut expected = vec![stored[0].id, stored[1].id];
    expected.sort_by_key(|id| id.as_uuid());
    assert_eq!(changed_ids, expected);
    let first = repo.get(stored[0].id).await.expect("get").expect("stored");
    assert_eq!((first.segment, first.version), (Segment::AtRisk, 2));
    assert_eq!(Some(&first), changed.iter().find(|c| c.id == first.id));
    let untouched = repo.get(stored[2].id).await.expect("get").expect("stored");
    assert_eq!((untouched.segment, untouched.version), (Segment::New, 1));
    let feed = repo
        .list_events(stored[1].id, None, None, 10)
        .await
        .expect("feed");
    assert_eq!(feed.len(), 1);
    assert_eq!(
        feed[0].event_type,
        CustomerEventType::CustomerSegmentChanged
    );
    assert_eq!(
        (&feed[0].data["old_segment"], &feed[0].data["new_segment"]),
        (&json!("new"), &json!("churned"))
    );
    let keys = relay_all(repo, &bus).await;
    assert_eq!(keys, ["customer.segment_changed"; 2]);
    let again = repo
        .set_segments(&changes, Utc::now())
        .await
        .expect("again");
    assert!(again.is_empty(), "the same decisions twice change nothing");
}

/// Bulk segment writes while events change the same customers: every call succeeds
/// (one waits for the other), none fails because another writer came first.
pub async fn bulk_segments_race_other_writers(repo: std::sync::Arc<dyn CustomerRepository>) {
    use crm_domain::Segment;

    use super::SegmentChange;

    let mut customers = Vec::new();
    for i in 0..10 {
        let c = customer(&format!("busy{i}@example.com"));
        repo.insert(&c).await.expect("insert");
        customers.push(c);
    }
    let changes: Vec<SegmentChange> = customers
        .iter()
        .map(|c| SegmentChange {
            id: c.id,
            segment: Segment::Churned,
            reason: "time".into(),
            based_on_version: c.version,
        })
        .collect();
    let at = Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap();
    let events = customers.iter().enumerate().map(|(i, c)| {
        let repo = repo.clone();
        let completed = event(
            c.id,
            CustomerEventType::OrderCompleted,
            order(&format!("o-busy-{i}"), 5.0),
            at,
        );
        tokio::spawn(async move { repo.record_event(&completed, Utc::now()).await.map(drop) })
    });
    let bulk = (0..10).map(|_| {
        let (repo, changes) = (repo.clone(), changes.clone());
        tokio::spawn(async move { repo.set_segments(&changes, Utc::now()).await.map(drop) })
    });
    let handles: Vec<_> = events.chain(bulk).collect();
    for outcome in futures::future::join_all(handles).await {
        outcome
            .expect("task")
            .expect("no writer fails because another came first");
    }
}
