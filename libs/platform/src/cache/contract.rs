//! The contract every `VersionedCache` adapter passes.

use super::VersionedCache;

pub async fn run(cache: &dyn VersionedCache, name: &str) {
    let key = |k: &str| format!("contract:{name}:{k}");

    // A plain put and get.
    assert_eq!(
        cache.get(&key("a")).await,
        None,
        "{name}: empty cache misses"
    );
    cache.put(&key("a"), 1, b"one").await;
    assert_eq!(
        cache.get(&key("a")).await.as_deref(),
        Some(&b"one"[..]),
        "{name}: hit"
    );

    // A newer version replaces, an older one does not.
    cache.put(&key("a"), 2, b"two").await;
    cache.put(&key("a"), 1, b"one").await;
    assert_eq!(
        cache.get(&key("a")).await.as_deref(),
        Some(&b"two"[..]),
        "{name}: newer wins"
    );

    // The cache-aside race: a reader read version 2, a writer commits 3 and invalidates, then
    // the slow reader puts 2 back. The put must be refused.
    assert!(cache.invalidate(&key("a"), 3).await, "{name}: confirmed");
    assert_eq!(cache.get(&key("a")).await, None, "{name}: invalidated");
    cache.put(&key("a"), 2, b"stale").await;
    assert_eq!(
        cache.get(&key("a")).await,
        None,
        "{name}: stale put after invalidate refused"
    );
    cache.put(&key("a"), 3, b"three").await;
    assert_eq!(
        cache.get(&key("a")).await.as_deref(),
        Some(&b"three"[..]),
        "{name}: fresh put"
    );

    // A late invalidation of an older version keeps the newer value.
    cache.invalidate(&key("a"), 2).await;
    assert_eq!(
        cache.get(&key("a")).await.as_deref(),
        Some(&b"three"[..]),
        "{name}: late invalidation"
    );

    // Invalidation of a key never cached still blocks older puts.
    cache.invalidate(&key("b"), 5).await;
    cache.put(&key("b"), 4, b"old").await;
    assert_eq!(
        cache.get(&key("b")).await,
        None,
        "{name}: marker without value"
    );

    // Binary values, including the separator byte, survive.
    cache.put(&key("c"), 1, b"x:y!z\0").await;
    assert_eq!(
        cache.get(&key("c")).await.as_deref(),
        Some(&b"x:y!z\0"[..]),
        "{name}: binary"
    );

    assert!(cache.ping().await.is_ok(), "{name}: ping");
}
