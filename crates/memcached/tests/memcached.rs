//! Memcached-specific behaviour against real servers: where keys land, key injection, the TTL
//! rule as the server sees it, cancellation, value limits, dead servers, backoff and health.
//!
//! The shared servers come from `LEXICACHE_TEST_MEMCACHED`; tests that stop or restart a
//! server, or change its settings, start a memcached of their own on a free port.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{connect, free_port, two_servers, unique_prefix, OwnMemcached, Raw};
use futures::FutureExt;
use lexicache_core::{Bytes, CacheBackend, CacheEvent, ErrorKind, HealthStatus};
use lexicache_memcached::{
    MemcachedBackend, DEFAULT_MAX_VALUE_SIZE, HASHED_KEY_MARKER, ITEM_OVERHEAD, MAX_WIRE_KEY_LEN,
};
use lexicache_service::CacheService;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const DAY: u64 = 86_400;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn keys_land_on_both_servers_where_the_ring_says() {
    let servers = two_servers();
    let cache = connect(&unique_prefix("spread")).await;
    let keys: Vec<String> = (0..200).map(|i| format!("spread:{i}")).collect();
    let items: Vec<(&str, Bytes)> = keys.iter().map(|k| (k.as_str(), b(k))).collect();
    cache
        .set_many(&items, Some(Duration::from_secs(60)))
        .await
        .unwrap();

    let mut raw = [
        Raw::connect(&servers[0]).await,
        Raw::connect(&servers[1]).await,
    ];
    let mut held = [0usize; 2];
    for key in &keys {
        let wire = cache.wire_key(key);
        let owner = cache.server_for(key);
        let owner_index = servers
            .iter()
            .position(|s| s == owner)
            .expect("a known server");
        let on_owner = raw[owner_index].get(&wire).await;
        assert_eq!(
            on_owner.as_deref(),
            Some(key.as_bytes()),
            "{key} on {owner}"
        );
        let on_other = raw[1 - owner_index].get(&wire).await;
        assert_eq!(
            on_other, None,
            "{key} also on the server the ring does not name"
        );
        held[owner_index] += 1;
    }
    assert!(
        held[0] >= 40 && held[1] >= 40,
        "both servers hold a fair share of 200 keys: {held:?}"
    );
    assert_eq!(
        cache
            .delete_many(&keys.iter().map(String::as_str).collect::<Vec<_>>())
            .await
            .unwrap(),
        200
    );
}

#[tokio::test]
async fn hostile_keys_cannot_inject_commands() {
    let servers = two_servers();
    let prefix = unique_prefix("inject");
    let cache = connect(&prefix).await;
    let canary = format!("{prefix}canary");
    let mut raw = [
        Raw::connect(&servers[0]).await,
        Raw::connect(&servers[1]).await,
    ];
    for r in &mut raw {
        r.set(&canary, b"alive", 60).await;
    }

    let hostile = [
        "a\r\nflush_all\r\n".to_owned(),
        "x y".to_owned(),
        "k\0".to_owned(),
        format!("z\r\ndelete {canary}\r\n"),
        format!("{canary} 0 0 1\r\nX\r\nget"),
        format!("{canary}\nflush_all"),
        "\r\n".to_owned(),
        " ".to_owned(),
        "\u{7f}".to_owned(),
        format!("{HASHED_KEY_MARKER}{}", "0".repeat(64)),
    ];
    for (i, k) in hostile.iter().enumerate() {
        cache
            .set(k, b(&format!("v{i}")), Some(Duration::from_secs(60)))
            .await
            .unwrap();
    }
    let refs: Vec<&str> = hostile.iter().map(String::as_str).collect();
    let items: Vec<(&str, Bytes)> = refs.iter().map(|k| (*k, b("batch"))).collect();
    cache
        .set_many(&items, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(cache
        .get_many(&refs)
        .await
        .unwrap()
        .iter()
        .all(|v| v.as_deref() == Some(&b"batch"[..])));
    for (i, k) in hostile.iter().enumerate() {
        cache
            .set(k, b(&format!("v{i}")), Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(cache.exists(k).await.unwrap(), "{k:?}");
    }

    for r in &mut raw {
        assert_eq!(
            r.get(&canary).await.as_deref(),
            Some(&b"alive"[..]),
            "the canary survived every hostile key"
        );
    }
    for (i, k) in hostile.iter().enumerate() {
        assert_eq!(
            cache.get(k).await.unwrap(),
            Some(b(&format!("v{i}"))),
            "{k:?}"
        );
    }
    assert_eq!(
        cache.delete_many(&refs).await.unwrap(),
        hostile.len() as u64
    );
    for r in &mut raw {
        assert_eq!(r.get(&canary).await.as_deref(), Some(&b"alive"[..]));
        r.delete(&canary).await;
    }
}

#[tokio::test]
async fn cancelled_gets_never_return_another_keys_value() {
    let backend = MemcachedBackend::builder()
        .servers(two_servers())
        .prefix(unique_prefix("cancel"))
        .pool_size(2)
        .build()
        .unwrap();
    common::assert_reachable(&backend).await;
    let keys: Vec<String> = (0..40).map(|i| format!("cancel:{i}")).collect();
    // Values of different lengths, so a misread reply would not even parse the same way.
    let value = |i: usize| Bytes::from(format!("{}:{}", keys[i], "x".repeat(i * 37)));
    for (i, key) in keys.iter().enumerate() {
        backend
            .set(key, value(i), Some(Duration::from_secs(120)))
            .await
            .unwrap();
    }

    let mut cancelled = 0;
    for round in 0..600 {
        let i = round % keys.len();
        let get = backend.get(&keys[i]);
        let outcome = match round % 4 {
            // Polled once: the request is written and the future dropped before any reply.
            0 => get.now_or_never(),
            1 => tokio::time::timeout(Duration::ZERO, get).await.ok(),
            2 => tokio::time::timeout(Duration::from_micros(100), get)
                .await
                .ok(),
            _ => tokio::time::timeout(Duration::from_millis(1), get)
                .await
                .ok(),
        };
        match outcome {
            Some(got) => assert_eq!(got.unwrap(), Some(value(i)), "{}", keys[i]),
            None => cancelled += 1,
        }
        let j = (i * 7 + 3) % keys.len();
        assert_eq!(
            backend.get(&keys[j]).await.unwrap(),
            Some(value(j)),
            "after a cancelled get, {} read its own value",
            keys[j]
        );
        let many = [keys[j].as_str(), keys[i].as_str()];
        assert_eq!(
            backend.get_many(&many).await.unwrap(),
            vec![Some(value(j)), Some(value(i))]
        );
    }
    assert!(
        cancelled > 100,
        "only {cancelled} of 600 gets were cancelled"
    );
}

#[tokio::test]
async fn forty_day_ttl_is_sent_as_absolute_time_and_reads_back() {
    let servers = two_servers();
    let cache = connect(&unique_prefix("ttl40")).await;
    cache
        .set("forty", b("days"), Some(Duration::from_secs(40 * DAY)))
        .await
        .unwrap();
    cache
        .set("thirty", b("days"), Some(Duration::from_secs(30 * DAY)))
        .await
        .unwrap();
    // Sent as relative seconds, 40 days would be read as a Unix time in 1970: expired at once.
    assert_eq!(cache.get("forty").await.unwrap(), Some(b("days")));
    for (key, days) in [("forty", 40), ("thirty", 30)] {
        let mut raw = Raw::connect(cache.server_for(key)).await;
        let left = raw.ttl(&cache.wire_key(key)).await.expect("a hit");
        let full = (days * DAY) as i64;
        assert!(
            (full - 10..=full + 2).contains(&left),
            "{key}: the server holds {left} s to live, expected about {full}"
        );
    }
    assert!(servers.iter().any(|s| s == cache.server_for("forty")));
}

#[tokio::test]
async fn sub_second_ttl_rounds_up_to_one_second_and_none_means_no_expiry() {
    let cache = connect(&unique_prefix("ttl-small")).await;
    cache
        .set("tiny", b("v"), Some(Duration::from_millis(1)))
        .await
        .unwrap();
    cache.set("forever", b("v"), None).await.unwrap();
    cache
        .set("fraction", b("v"), Some(Duration::from_millis(2_200)))
        .await
        .unwrap();
    let ttl = |key: &'static str| {
        let cache = cache.clone();
        async move {
            Raw::connect(cache.server_for(key))
                .await
                .ttl(&cache.wire_key(key))
                .await
        }
    };
    // memcached reports -1 for "never expires", which a TTL rounded down to 0 would become.
    let tiny = ttl("tiny").await;
    assert!(matches!(tiny, None | Some(0 | 1)), "tiny: {tiny:?}");
    assert_eq!(ttl("forever").await, Some(-1));
    let fraction = ttl("fraction").await.expect("a hit");
    assert!(
        (2..=3).contains(&fraction),
        "2.2 s rounds up to 3 s: {fraction}"
    );
}

#[tokio::test]
async fn clear_and_delete_pattern_are_unsupported_and_capabilities_say_so() {
    let cache = connect(&unique_prefix("unsupported")).await;
    cache
        .set("k", b("v"), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let caps = cache.capabilities();
    assert!(!caps.clear && !caps.pattern_delete && !caps.list_keys);
    assert!(caps.native_ttl && caps.distributed && caps.native_batch);
    assert!(!caps.in_process && !caps.tokio_clock);
    assert_eq!(caps.max_key_len, lexicache_core::DEFAULT_MAX_KEY_LEN);
    assert_eq!(caps.max_value_size, Some(DEFAULT_MAX_VALUE_SIZE));
    for err in [
        cache.clear().await.unwrap_err(),
        cache.delete_pattern("*").await.map(drop).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(!err.is_retryable());
    }
    assert_eq!(
        cache.get("k").await.unwrap(),
        Some(b("v")),
        "nothing was removed"
    );
}

#[tokio::test]
async fn value_of_the_limit_round_trips_under_the_longest_key_and_one_more_byte_is_rejected() {
    let prefix = unique_prefix("limit");
    let cache = connect(&prefix).await;
    let max = cache.capabilities().max_value_size.expect("a limit");
    assert_eq!(
        max, DEFAULT_MAX_VALUE_SIZE,
        "read from the servers' item_size_max (1 MiB)"
    );
    // The longest key memcached stores as is: the worst case for the item's overhead.
    let key = "k".repeat(MAX_WIRE_KEY_LEN - prefix.len());
    assert_eq!(cache.wire_key(&key).len(), MAX_WIRE_KEY_LEN);
    let value = Bytes::from((0..max).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    cache
        .set(&key, value.clone(), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(cache.get(&key).await.unwrap() == Some(value));
    let over = Bytes::from(vec![1u8; max + 1]);
    let err = cache.set(&key, over, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge, "{err}");
    assert!(cache.delete(&key).await.unwrap());
}

#[tokio::test]
async fn connect_reads_the_item_size_limit_of_the_servers() {
    let server = OwnMemcached::start(free_port(), &["-I", "2m"]).await;
    let cache = MemcachedBackend::builder()
        .server(&server.addr)
        .connect()
        .await
        .unwrap();
    let max = cache.capabilities().max_value_size.expect("a limit");
    assert_eq!(max, 2 * 1024 * 1024 - ITEM_OVERHEAD);
    let key = "k".repeat(MAX_WIRE_KEY_LEN);
    let value = Bytes::from(vec![7u8; max]);
    cache.set(&key, value.clone(), None).await.unwrap();
    assert!(cache.get(&key).await.unwrap() == Some(value));
    let err = cache
        .set(&key, Bytes::from(vec![7u8; max + 1]), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    // A lazily built backend cannot ask, and uses memcached's default.
    let lazy = MemcachedBackend::builder()
        .server(&server.addr)
        .build()
        .unwrap();
    assert_eq!(
        lazy.capabilities().max_value_size,
        Some(DEFAULT_MAX_VALUE_SIZE)
    );
}

/// A key of `cache` held by `server`.
fn key_on(cache: &MemcachedBackend, server: &str, tag: &str) -> String {
    (0..)
        .map(|i| format!("{tag}:{i}"))
        .find(|k| cache.server_for(k) == server)
        .expect("some key lands on every server")
}

#[tokio::test]
async fn dead_server_keys_fail_fast_while_live_server_keys_keep_working() {
    let live = common::servers()[0].clone();
    let dead = format!("127.0.0.1:{}", free_port());
    let timeout = Duration::from_secs(5);
    let cache = MemcachedBackend::builder()
        .servers([live.clone(), dead.clone()])
        .prefix(unique_prefix("dead"))
        .connect_timeout(timeout)
        .command_timeout(timeout)
        .backoff(Duration::from_secs(30), Duration::from_secs(60))
        .build()
        .unwrap();
    let live_key = key_on(&cache, &live, "live");
    let dead_key = key_on(&cache, &dead, "dead");
    cache
        .set(&live_key, b("here"), Some(Duration::from_secs(60)))
        .await
        .unwrap();

    // The first call finds the server refusing connections; later ones do not even try.
    for attempt in 0..3 {
        let started = Instant::now();
        let err = cache.get(&dead_key).await.unwrap_err();
        assert!(
            started.elapsed() < timeout,
            "attempt {attempt} waited for the timeout"
        );
        assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
        assert!(err.is_retryable());
        assert!(err.message().contains(&dead), "{err}");
        if attempt > 0 {
            assert!(err.message().contains("marked down"), "{err}");
        }
    }
    for err in [
        cache.set(&dead_key, b("x"), None).await.unwrap_err(),
        cache.delete(&dead_key).await.map(drop).unwrap_err(),
        cache.exists(&dead_key).await.map(drop).unwrap_err(),
        cache
            .get_many(&[live_key.as_str(), dead_key.as_str()])
            .await
            .map(drop)
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    }
    assert_eq!(cache.get(&live_key).await.unwrap(), Some(b("here")));
    assert_eq!(
        cache.get_many(&[live_key.as_str()]).await.unwrap(),
        vec![Some(b("here"))]
    );

    // The typed facade degrades: the default for the dead server's key, the value for the other.
    let service = CacheService::builder(cache.clone()).build();
    assert!(
        service
            .set(
                &live_key,
                &"typed".to_owned(),
                Some(Duration::from_secs(60))
            )
            .await
    );
    assert_eq!(service.get::<String>(&dead_key).await, None);
    assert_eq!(
        service.get::<String>(&live_key).await.as_deref(),
        Some("typed")
    );
    assert!(service.try_get::<String>(&dead_key).await.is_err());
    assert!(cache.delete(&live_key).await.unwrap());
}

#[tokio::test]
async fn health_reports_each_server_and_degrades_when_one_is_down() {
    let live = common::servers()[0].clone();
    let dead = format!("127.0.0.1:{}", free_port());
    let mixed = MemcachedBackend::builder()
        .servers([live.clone(), dead.clone()])
        .build()
        .unwrap();
    let health = mixed.health_check(Duration::from_secs(2)).await;
    assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
    assert!(
        health.reason.as_deref().unwrap_or("").contains(&dead),
        "{health:?}"
    );
    let live_detail = &health.details[&format!("server.{live}")];
    assert!(live_detail.starts_with("up, version 1."), "{live_detail}");
    assert!(
        health.details[&format!("server.{dead}")].starts_with("down: "),
        "{health:?}"
    );
    assert_eq!(health.details["servers_up"], "1");

    let all_dead = MemcachedBackend::builder().server(&dead).build().unwrap();
    let health = all_dead.health_check(Duration::from_secs(2)).await;
    assert_eq!(health.status, HealthStatus::Unhealthy, "{health:?}");

    let both = MemcachedBackend::builder()
        .servers(two_servers())
        .build()
        .unwrap();
    let health = both.health_check(Duration::from_secs(2)).await;
    assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
    assert_eq!(health.details["servers_up"], "2");
}

#[tokio::test]
async fn server_that_comes_back_is_used_again_after_the_backoff() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let backoff = Duration::from_millis(300);
    let cache = MemcachedBackend::builder()
        .server(&addr)
        .prefix(unique_prefix("comeback"))
        .backoff(backoff, Duration::from_secs(1))
        .build()
        .unwrap();
    let mut events = cache.events().subscribe();

    let err = cache.set("k", b("v"), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(matches!(
        events.try_recv(),
        Ok(CacheEvent::Disconnected { reason, .. }) if reason.contains(&addr)
    ));

    let _server = OwnMemcached::start(port, &[]).await;
    // Until the backoff passes the server stays marked down; afterwards the next call connects.
    let started = Instant::now();
    let stored = loop {
        match cache.set("k", b("v"), None).await {
            Ok(()) => break started.elapsed(),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "never came back: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(
        stored <= backoff + Duration::from_secs(2),
        "took {stored:?}"
    );
    assert_eq!(cache.get("k").await.unwrap(), Some(b("v")));
    assert!(matches!(
        events.try_recv(),
        Ok(CacheEvent::Connected { .. })
    ));
    assert!(cache
        .health_check(Duration::from_secs(2))
        .await
        .is_healthy());
}

#[tokio::test]
async fn unanswered_command_times_out_and_its_connection_is_dropped() {
    // A server that answers `version` once, then reads commands without ever answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut socket = BufReader::new(socket);
        let mut line = String::new();
        socket.read_line(&mut line).await.unwrap();
        assert_eq!(line, "version\r\n");
        socket
            .get_mut()
            .write_all(b"VERSION 1.6.0\r\n")
            .await
            .unwrap();
        let mut commands = Vec::new();
        loop {
            line.clear();
            if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            commands.push(line.clone());
        }
        let _ = closed_tx.send(commands);
    });
    let timeout = Duration::from_millis(200);
    let cache = MemcachedBackend::builder()
        .server(&addr)
        .command_timeout(timeout)
        .build()
        .unwrap();
    // The health check's `version` leaves one clean connection in the pool.
    assert!(cache
        .health_check(Duration::from_secs(2))
        .await
        .is_healthy());

    let err = cache.get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());
    // The timed-out connection was closed, not pooled: the server sees it end.
    let commands = tokio::time::timeout(Duration::from_secs(5), closed_rx)
        .await
        .expect("the connection was closed")
        .unwrap();
    assert_eq!(commands, ["get k\r\n"]);
}

#[tokio::test]
async fn batches_spread_over_both_servers_and_keep_order() {
    let cache = connect(&unique_prefix("batch")).await;
    let keys: Vec<String> = (0..300)
        .map(|i| format!("b:{i} {}", "é".repeat(i % 3)))
        .collect();
    let items: Vec<(&str, Bytes)> = keys.iter().map(|k| (k.as_str(), b(k))).collect();
    cache
        .set_many(&items, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let per_server = keys.iter().fold(HashMap::new(), |mut m, k| {
        *m.entry(cache.server_for(k).to_owned()).or_insert(0) += 1;
        m
    });
    assert_eq!(per_server.len(), 2, "{per_server:?}");

    let mut asked: Vec<&str> = keys.iter().rev().map(String::as_str).collect();
    asked.push("b:missing");
    asked.push(keys[5].as_str());
    let got = cache.get_many(&asked).await.unwrap();
    for (k, v) in asked.iter().zip(&got) {
        let want = (*k != "b:missing").then(|| b(k));
        assert_eq!(v, &want, "{k}");
    }
    assert_eq!(cache.delete_many(&asked).await.unwrap(), keys.len() as u64);
    assert!(cache
        .get_many(&asked)
        .await
        .unwrap()
        .iter()
        .all(Option::is_none));
}
