//! Standalone-server behaviour beyond the shared suite: namespace isolation checked with a raw
//! client, health details, credentials errors and password redaction, and connection events.

mod common;

use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend, CacheEvent, ErrorKind, EventBus, HealthStatus};
use lexicache_redis::fred::clients::Client;
use lexicache_redis::fred::interfaces::{ClientLike, KeysInterface};
use lexicache_redis::fred::types::{ClusterHash, CustomCommand};
use lexicache_redis::RedisBackend;
use tokio::sync::broadcast;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn raw_exists(raw: &Client, key: &str) -> bool {
    raw.exists::<u64, _>(key).await.expect("EXISTS") == 1
}

/// Writes `{prefix}{name}` for every prefix and name through the raw client.
async fn seed(raw: &Client, prefixes: &[&str], names: &[&str]) {
    for p in prefixes {
        for n in names {
            let _: () = raw
                .set(format!("{p}{n}"), "v", None, None, false)
                .await
                .expect("raw SET");
        }
    }
}

/// Checks which `{prefix}{name}` keys still exist, and removes them all afterwards.
async fn survivors(raw: &Client, prefixes: &[&str], names: &[&str]) -> Vec<String> {
    let mut alive = Vec::new();
    for p in prefixes {
        for n in names {
            let key = format!("{p}{n}");
            if raw_exists(raw, &key).await {
                alive.push(key.clone());
            }
            let _: u64 = raw.del(key).await.expect("raw DEL");
        }
    }
    alive
}

#[tokio::test]
async fn clear_and_delete_pattern_leave_look_alike_tenants_untouched() {
    let base = common::unique("isolation");
    let backend = common::standalone().await;
    let raw = common::raw_standalone().await;
    // Look-alike tenants: a glob metacharacter where the other has a literal, a longer name
    // sharing the prefix, and classes and escapes that would match `t1` if unescaped.
    let t1 = format!("{base}t1:");
    let t1_star = format!("{base}t1*:");
    let t10 = format!("{base}t10:");
    let t_q = format!("{base}t?:");
    let t_class = format!("{base}t[1]:");
    let t_bs = format!("{base}t\\1:");
    let bare = format!("{base}t1");
    let prefixes = [
        t1.as_str(),
        t1_star.as_str(),
        t10.as_str(),
        t_q.as_str(),
        t_class.as_str(),
        t_bs.as_str(),
        bare.as_str(),
    ];
    let names = ["a", "b", "x:1"];

    for (victim, op) in [
        (t1.as_str(), "clear"),
        (t1_star.as_str(), "delete_pattern"),
        (t_q.as_str(), "clear"),
        (t_class.as_str(), "delete_pattern"),
        (t_bs.as_str(), "clear"),
    ] {
        seed(&raw, &prefixes, &names).await;
        let tenant = backend.with_prefix(victim);
        if op == "clear" {
            tenant.clear().await.expect("clear");
        } else {
            assert_eq!(
                tenant.delete_pattern("*").await.expect("delete_pattern"),
                names.len() as u64,
                "delete_pattern(*) of {victim:?} counts its own keys only"
            );
        }
        let alive = survivors(&raw, &prefixes, &names).await;
        let expected: Vec<String> = prefixes
            .iter()
            .filter(|p| **p != victim)
            .flat_map(|p| names.iter().map(move |n| format!("{p}{n}")))
            .collect();
        assert_eq!(alive, expected, "{op} of {victim:?} reached other keys");
    }
}

#[tokio::test]
async fn delete_pattern_filters_what_redis_matches_more_widely() {
    // Redis's `?` is one byte and it has no `[!..]`: the backend widens the pattern it sends
    // and filters, so these globs behave as lexicache's glob module says.
    let backend = common::standalone()
        .await
        .with_prefix(common::unique("widening"));
    for k in ["h-é", "h-ab", "c:a", "c:z", "c:zz"] {
        backend.set(k, b(k), None).await.expect("set");
    }
    assert_eq!(backend.delete_pattern("h-?").await.expect("h-?"), 1);
    assert_eq!(backend.get("h-ab").await.expect("get"), Some(b("h-ab")));
    assert_eq!(backend.delete_pattern("c:[!a]").await.expect("c:[!a]"), 1);
    assert_eq!(
        backend
            .get_many(&["c:a", "c:z", "c:zz"])
            .await
            .expect("get_many"),
        vec![Some(b("c:a")), None, Some(b("c:zz"))]
    );
    backend.clear().await.expect("clear");
}

#[tokio::test]
async fn ttl_is_sent_in_milliseconds_rounded_up() {
    let backend = common::standalone()
        .await
        .with_prefix(common::unique("ttl"));
    let raw = common::raw_standalone().await;
    backend
        .set("k", b("v"), Some(Duration::from_micros(1_500_300)))
        .await
        .expect("set");
    let pttl: i64 = raw
        .pttl(format!("{}k", backend.prefix()))
        .await
        .expect("PTTL");
    assert!(
        (1001..=1501).contains(&pttl),
        "PTTL {pttl} for a 1500.3 ms ttl"
    );
    backend.set("none", b("v"), None).await.expect("set");
    let pttl: i64 = raw
        .pttl(format!("{}none", backend.prefix()))
        .await
        .expect("PTTL");
    assert_eq!(pttl, -1, "no ttl means no expiry");
    backend.clear().await.expect("clear");
}

#[tokio::test]
async fn default_ttl_applies_to_writes_without_ttl() {
    let backend = common::connect(
        common::standalone_builder()
            .prefix(common::unique("default-ttl"))
            .default_ttl(Duration::from_secs(60)),
        "standalone redis",
    )
    .await;
    let raw = common::raw_standalone().await;
    backend.set("k", b("v"), None).await.expect("set");
    backend
        .set_many(&[("m", b("v"))], None)
        .await
        .expect("set_many");
    for k in ["k", "m"] {
        let pttl: i64 = raw
            .pttl(format!("{}{k}", backend.prefix()))
            .await
            .expect("PTTL");
        assert!((59_000..=60_000).contains(&pttl), "PTTL of {k}: {pttl}");
    }
    backend.clear().await.expect("clear");
}

#[tokio::test]
async fn health_reports_ping_role_and_connection() {
    let backend = common::standalone().await;
    let health = backend.health_check(Duration::from_secs(5)).await;
    assert_eq!(health.status, HealthStatus::Healthy, "{:?}", health.reason);
    assert_eq!(health.details["role"], "master");
    assert_eq!(health.details["connected"], "true");
    assert_eq!(health.details["mode"], "standalone");
    assert!(health.details.contains_key("ping_us"));
}

#[tokio::test]
async fn capabilities_describe_a_distributed_store() {
    let backend = common::connect(
        common::standalone_builder().max_value_size(1024),
        "standalone redis",
    )
    .await;
    let caps = backend.capabilities();
    assert!(caps.distributed && caps.native_ttl && caps.native_batch);
    assert!(caps.pattern_delete && caps.clear);
    assert!(!caps.in_process && !caps.tokio_clock);
    assert_eq!(caps.max_key_len, lexicache_core::DEFAULT_MAX_KEY_LEN);
    assert_eq!(caps.max_value_size, Some(1024));
}

#[tokio::test]
async fn wrong_password_is_a_config_error_with_a_clear_message() {
    let password = "not-the-password-4f2a";
    let err = common::standalone_builder()
        .username("lexicache-no-such-user")
        .password(password)
        .connect()
        .await
        .expect_err("a user that does not exist must be rejected");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("WRONGPASS"), "{err}");
    assert!(err.to_string().contains("check the password"), "{err}");
    assert!(!err.to_string().contains(password), "{err}");
    assert!(!format!("{err:?}").contains(password), "{err:?}");
}

#[tokio::test]
async fn password_never_appears_in_debug_output() {
    let password = "hunter2-secret-9c1e";
    let url = format!("redis://app:{password}@127.0.0.1:1/0");
    let builder = RedisBackend::builder()
        .url(&url)
        .sentinel_password(password);
    assert!(!format!("{builder:?}").contains(password), "{builder:?}");
    let builder = builder
        .password(password)
        .connect_timeout(Duration::from_millis(200));
    assert!(!format!("{builder:?}").contains(password), "{builder:?}");
    let backend = builder.connect_lazy().expect("a lazy backend");
    let shown = format!("{backend:?} {:?}", backend.config());
    assert!(!shown.contains(password), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let err = backend
        .get("k")
        .await
        .expect_err("nothing listens on port 1");
    assert!(!format!("{err} {err:?}").contains(password), "{err:?}");
}

/// The next connection event on `rx`, within `wait`.
async fn next_connection_event(
    rx: &mut broadcast::Receiver<CacheEvent>,
    wait: Duration,
) -> CacheEvent {
    loop {
        let event = tokio::time::timeout(wait, rx.recv())
            .await
            .expect("a connection event in time")
            .expect("the bus stays open");
        if matches!(
            event,
            CacheEvent::Connected { .. } | CacheEvent::Disconnected { .. }
        ) {
            return event;
        }
    }
}

#[tokio::test]
async fn connection_events_follow_connect_kill_and_reconnect() {
    let bus = EventBus::new();
    let mut rx = bus.subscribe();
    let backend = common::connect(
        common::standalone_builder().name("evented").events(bus),
        "standalone redis",
    )
    .await;
    let wait = Duration::from_secs(10);
    match next_connection_event(&mut rx, wait).await {
        CacheEvent::Connected { backend } => assert_eq!(&*backend, "evented"),
        other => panic!("expected Connected first, got {other:?}"),
    }

    // Kill the backend's connection from another client, as an operator or a failover would.
    let id: i64 = backend
        .client()
        .custom(
            CustomCommand::new_static("CLIENT", ClusterHash::Random, false),
            vec!["ID"],
        )
        .await
        .expect("CLIENT ID");
    let raw = common::raw_standalone().await;
    let killed: i64 = raw
        .custom(
            CustomCommand::new_static("CLIENT", ClusterHash::Random, false),
            vec!["KILL".to_owned(), "ID".to_owned(), id.to_string()],
        )
        .await
        .expect("CLIENT KILL");
    assert_eq!(killed, 1);

    match next_connection_event(&mut rx, wait).await {
        CacheEvent::Disconnected { backend, reason } => {
            assert_eq!(&*backend, "evented");
            assert!(!reason.is_empty());
        }
        other => panic!("expected Disconnected after CLIENT KILL, got {other:?}"),
    }
    assert!(
        matches!(
            next_connection_event(&mut rx, wait).await,
            CacheEvent::Connected { .. }
        ),
        "the reconnect policy brings the connection back"
    );
    backend
        .with_prefix(common::unique("after-reconnect"))
        .set("k", b("v"), Some(Duration::from_secs(5)))
        .await
        .expect("commands work again after the reconnect");
    raw.quit().await.expect("QUIT");
}
