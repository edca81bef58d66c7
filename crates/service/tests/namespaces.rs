//! Namespaces cannot be escaped: `("a:b", "c")` and `("a", "b:c")`, and tenants holding `:`,
//! `{` or `*`, map to distinct storage keys, on memory, Redis and memcached, and one tenant's
//! globs and `clear` never reach another's keys.

use std::collections::HashMap;

use lexicache_core::CacheBackend;
use lexicache_memcached::MemcachedBackend;
use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_service::layers::namespace_prefix;
use lexicache_service::CacheService;
use lexicache_testkit::servers;
use proptest::prelude::*;

/// Names and keys made of the characters that matter: separators, hash-tag braces, glob
/// metacharacters, the escape character itself and plain letters.
fn tricky() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(':'),
            Just('{'),
            Just('}'),
            Just('*'),
            Just('%'),
            Just('\\'),
            Just('a'),
            Just('b'),
            Just('3'),
            Just('A'),
        ],
        0..8,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The storage key determines the (namespace, key) pair: two different pairs never share
    /// one. (A name and the same name with one trailing `:` are the same namespace.)
    #[test]
    fn different_namespace_and_key_pairs_never_share_a_storage_key(
        (n1, k1, n2, k2) in (tricky(), tricky(), tricky(), tricky())
    ) {
        let canonical = |n: &str| n.strip_suffix(':').unwrap_or(n).to_owned();
        let same_pair = canonical(&n1) == canonical(&n2) && k1 == k2;
        let s1 = format!("{}{k1}", namespace_prefix(&n1));
        let s2 = format!("{}{k2}", namespace_prefix(&n2));
        prop_assert_eq!(s1 == s2, same_pair, "{:?}+{:?} vs {:?}+{:?}", n1, k1, n2, k2);
    }

    /// The prefix holds no hash-tag brace, glob metacharacter or separator but its last `:`.
    #[test]
    fn a_prefix_holds_no_brace_glob_character_or_inner_separator(name in tricky()) {
        let prefix = namespace_prefix(&name);
        prop_assert!(prefix.ends_with(':'));
        let body = &prefix[..prefix.len() - 1];
        prop_assert!(!body.contains([':', '{', '}', '*', '?', '[', ']', '\\']), "{}", prefix);
    }
}

/// Writes `value` as `key` in namespace `name` over `store`, for each pair, then checks each
/// reads its own value back, that the storage keys are distinct, and that a tenant's `clear`
/// and `*` delete only touch its own keys.
async fn assert_isolated(store: impl CacheBackend + Clone + 'static, label: &str) {
    let pairs = [
        ("a:b", "c"),
        ("a", "b:c"),
        ("a:", "b:c:d"),
        ("a:b:", "c:d"),
        ("{t}", "k"),
        ("{t", "}k"),
        ("*", "k"),
        ("t*", "k"),
        ("t", "*k"),
        ("%3A", "k"),
        (":", "k"),
    ];
    let service = |name: &str| {
        CacheService::builder(store.clone())
            .namespace(format!("{label}{name}"))
            .build()
    };
    for (name, key) in pairs {
        let value = format!("{name}|{key}");
        assert!(
            service(name).set(key, &value, None).await,
            "{label}: set {name:?}/{key:?}"
        );
    }
    let mut storage = HashMap::new();
    for (name, key) in pairs {
        let expected = format!("{name}|{key}");
        let got: Option<String> = service(name).try_get(key).await.unwrap();
        assert_eq!(
            got.as_deref(),
            Some(expected.as_str()),
            "{label}: {name:?}/{key:?}"
        );
        let full = format!("{}{key}", namespace_prefix(&format!("{label}{name}")));
        assert!(
            store.get(&full).await.unwrap().is_some(),
            "{label}: stored as {full:?}"
        );
        assert!(
            storage.insert(full.clone(), (name, key)).is_none(),
            "{label}: {full:?} twice"
        );
    }
    // `*` and `t*` are names, not patterns: clearing them leaves `t` and `{t}` alone.
    let star = service("*");
    if store.capabilities().pattern_delete {
        assert_eq!(star.delete_pattern("*").await.unwrap(), 1, "{label}");
        star.clear().await.unwrap();
        service("t*").clear().await.unwrap();
        for (name, key) in pairs {
            let gone = matches!(name, "*" | "t*");
            let got: Option<String> = service(name).try_get(key).await.unwrap();
            assert_eq!(
                got.is_none(),
                gone,
                "{label}: {name:?}/{key:?} after clears"
            );
        }
    }
    for (name, key) in pairs {
        service(name).delete(key).await;
    }
}

#[tokio::test]
async fn namespaces_never_meet_on_memory() {
    assert_isolated(MemoryBackend::new(), "").await;
}

#[tokio::test]
async fn namespaces_never_meet_on_redis() {
    let url = servers::redis_url();
    let redis = RedisBackend::builder()
        .url(&url)
        .prefix(servers::unique_namespace("namespaces"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url}: {e}; {}", servers::HOW_TO_START));
    assert_isolated(redis, "").await;
}

#[tokio::test]
async fn namespaces_never_meet_on_memcached() {
    let list = servers::memcached_servers();
    let memcached = MemcachedBackend::builder()
        .servers(list.clone())
        .prefix(servers::unique_namespace("namespaces"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("memcached at {list:?}: {e}; {}", servers::HOW_TO_START));
    assert_isolated(memcached, "").await;
}

#[tokio::test]
async fn a_tenant_with_hash_tag_braces_cannot_pin_its_keys_to_one_cluster_slot() {
    // `{t}` in a key makes Redis Cluster hash only `t`: every key of the tenant would land on
    // one node. Encoded, the braces are gone from the storage key.
    let store = MemoryBackend::new();
    let tenant = CacheService::builder(store.clone())
        .namespace("{t}")
        .build();
    assert!(tenant.set("user:1", &1u8, None).await);
    let stored = store.keys("*", 10).await.unwrap();
    assert_eq!(stored, ["%7Bt%7D:user:1"]);
}
