//! `RedisPubSub`: ordered delivery, namespacing, and the subscription's own state (`Active`,
//! `Lost`, `Lagged`) across killed connections, a restarted server and slow consumers, on the
//! shared standalone server, the cluster and a private server.

mod common;

use std::time::Duration;

use futures::future::try_join_all;
use lexicache_core::{Bytes, ErrorKind, PubSub, Subscription, SubscriptionEvent};
use lexicache_redis::fred::clients::Client;
use lexicache_redis::fred::interfaces::ClientLike;
use lexicache_redis::fred::types::config::{Config, ReconnectPolicy};
use lexicache_redis::fred::types::{Builder, ClusterHash, CustomCommand};
use lexicache_redis::{RedisBackend, RedisPubSub, EVENT_QUEUE, SUBSCRIBER_BROADCAST_CAPACITY};
use lexicache_testkit::process::RedisProcess;

/// The bound on every wait for an event: generous, so a loaded machine does not fail a test,
/// and finite, so a broken subscription fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn channels(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// A client name no other test uses, to find this test's subscriber in `CLIENT LIST`.
fn client_name(test: &str) -> String {
    common::unique(test).replace(':', "-")
}

async fn next(sub: &mut Subscription) -> SubscriptionEvent {
    tokio::time::timeout(WAIT, sub.recv())
        .await
        .unwrap_or_else(|_| panic!("no subscription event within {WAIT:?}"))
        .expect("the subscription ended")
}

async fn expect_active(sub: &mut Subscription) {
    let event = next(sub).await;
    assert_eq!(event, SubscriptionEvent::Active);
}

/// Waits for `Lost`, then `Active`, allowing only messages before the `Lost`.
async fn expect_lost_then_active(sub: &mut Subscription) {
    loop {
        match next(sub).await {
            SubscriptionEvent::Lost { reason } => {
                assert!(!reason.is_empty());
                break;
            }
            SubscriptionEvent::Message { .. } => {}
            other => panic!("expected Lost, got {other:?}"),
        }
    }
    match next(sub).await {
        SubscriptionEvent::Active => {}
        other => panic!("expected Active after Lost, got {other:?}"),
    }
}

/// Publishes until it is accepted: the publishing client may still be reconnecting.
async fn publish_when_connected(pubsub: &RedisPubSub, channel: &str, payload: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match pubsub.publish(channel, b(payload)).await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert!(
                    matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout),
                    "{e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("could not publish within {WAIT:?}: {e}"),
        }
    }
}

/// Reads events until the message `payload` on `channel` arrives; only messages may come
/// before it.
async fn expect_message(sub: &mut Subscription, channel: &str, payload: &str) {
    loop {
        match next(sub).await {
            SubscriptionEvent::Message {
                channel: c,
                payload: p,
            } if c == channel && p == b(payload) => return,
            SubscriptionEvent::Message { .. } => {}
            other => panic!("expected message {payload:?}, got {other:?}"),
        }
    }
}

async fn raw_client(url: &str) -> Client {
    let client = Builder::from_config(Config::from_url(url).expect("a valid URL"))
        .build()
        .expect("a raw fred client");
    client
        .init()
        .await
        .unwrap_or_else(|e| panic!("cannot connect a raw client to {url}: {e}"));
    client
}

/// The ids of the connections named `name` in the server's `CLIENT LIST`.
async fn connections_named(raw: &Client, name: &str) -> Vec<String> {
    let list: String = raw
        .custom(
            CustomCommand::new_static("CLIENT", ClusterHash::Random, false),
            vec!["LIST"],
        )
        .await
        .expect("CLIENT LIST");
    list.lines()
        .filter(|line| line.split(' ').any(|f| f == format!("name={name}")))
        .filter_map(|line| {
            line.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}

async fn kill_connection(raw: &Client, id: &str) {
    let killed: i64 = raw
        .custom(
            CustomCommand::new_static("CLIENT", ClusterHash::Random, false),
            vec!["KILL", "ID", id],
        )
        .await
        .expect("CLIENT KILL");
    assert_eq!(killed, 1, "the subscriber connection {id} was killed");
}

/// A transport in a fresh namespace of the standalone server, and its subscriber's name.
async fn standalone_pubsub(test: &str) -> (RedisPubSub, String) {
    let name = client_name(test);
    let pubsub = common::standalone()
        .await
        .with_prefix(common::unique(test))
        .pubsub()
        .with_client_name(&name);
    (pubsub, name)
}

#[tokio::test]
async fn a_subscriber_receives_1000_messages_in_publish_order_with_relative_channel_names() {
    let (pubsub, _) = standalone_pubsub("order").await;
    let mut sub = pubsub
        .subscribe(&channels(&["invalidate", "other"]))
        .await
        .unwrap();
    expect_active(&mut sub).await;
    for i in 0..1000 {
        let channel = if i % 3 == 0 { "other" } else { "invalidate" };
        pubsub.publish(channel, b(&i.to_string())).await.unwrap();
    }
    for i in 0..1000 {
        let channel = if i % 3 == 0 { "other" } else { "invalidate" };
        assert_eq!(
            next(&mut sub).await,
            SubscriptionEvent::Message {
                channel: channel.to_owned(),
                payload: b(&i.to_string()),
            },
            "message {i}"
        );
    }
    assert_eq!(sub.try_recv(), None, "nothing else was published");
}

#[tokio::test]
async fn channels_live_inside_the_prefix_under_one_hash_tag() {
    let backend = common::standalone().await.with_prefix("app:");
    assert_eq!(
        backend.pubsub().redis_channel("invalidate"),
        "{app:__lexicache}:invalidate"
    );
}

#[tokio::test]
async fn two_prefixes_do_not_hear_each_other() {
    let backend = common::standalone().await;
    let base = common::unique("prefixes");
    let first = backend.with_prefix(format!("{base}a:")).pubsub();
    let second = backend.with_prefix(format!("{base}b:")).pubsub();
    let mut first_sub = first.subscribe(&channels(&["events"])).await.unwrap();
    let mut second_sub = second.subscribe(&channels(&["events"])).await.unwrap();
    expect_active(&mut first_sub).await;
    expect_active(&mut second_sub).await;

    first.publish("events", b("for-a")).await.unwrap();
    second.publish("events", b("for-b")).await.unwrap();
    expect_message(&mut first_sub, "events", "for-a").await;
    expect_message(&mut second_sub, "events", "for-b").await;
    // A marker published after the others: once it arrives, anything the other prefix sent
    // would have arrived before it.
    first.publish("events", b("marker")).await.unwrap();
    assert_eq!(
        next(&mut first_sub).await,
        SubscriptionEvent::Message {
            channel: "events".to_owned(),
            payload: b("marker")
        }
    );
    assert_eq!(second_sub.try_recv(), None);
}

#[tokio::test]
async fn client_kill_of_the_subscriber_reports_lost_then_active_and_messages_flow_again() {
    let (pubsub, name) = standalone_pubsub("kill").await;
    let raw = common::raw_standalone().await;
    let mut sub = pubsub.subscribe(&channels(&["inv"])).await.unwrap();
    expect_active(&mut sub).await;
    pubsub.publish("inv", b("before")).await.unwrap();
    expect_message(&mut sub, "inv", "before").await;

    let ids = connections_named(&raw, &name).await;
    assert_eq!(
        ids.len(),
        1,
        "one subscriber connection named {name}: {ids:?}"
    );
    kill_connection(&raw, &ids[0]).await;
    // Published while the subscriber is gone: it may be lost, so `Lost` must come first.
    pubsub.publish("inv", b("during")).await.unwrap();
    expect_lost_then_active(&mut sub).await;

    pubsub.publish("inv", b("after")).await.unwrap();
    expect_message(&mut sub, "inv", "after").await;
    let ids_after = connections_named(&raw, &name).await;
    assert_eq!(ids_after.len(), 1, "the new connection is named too");
    assert_ne!(ids_after, ids, "a new connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_reports_lost_then_active_and_messages_flow_again() {
    let mut server = RedisProcess::start();
    let backend = RedisBackend::builder()
        .url(&server.url())
        .reconnect_policy(ReconnectPolicy::new_constant(0, 100))
        .connect()
        .await
        .unwrap();
    let pubsub = backend.pubsub();
    let mut sub = pubsub.subscribe(&channels(&["inv"])).await.unwrap();
    expect_active(&mut sub).await;
    pubsub.publish("inv", b("before")).await.unwrap();
    expect_message(&mut sub, "inv", "before").await;

    server.kill();
    expect_lost_then_active_after(&mut sub, || server.restart()).await;

    publish_when_connected(&pubsub, "inv", "after").await;
    expect_message(&mut sub, "inv", "after").await;
}

/// Waits for `Lost`, runs `revive`, then waits for `Active`.
async fn expect_lost_then_active_after(sub: &mut Subscription, revive: impl FnOnce()) {
    loop {
        match next(sub).await {
            SubscriptionEvent::Lost { .. } => break,
            SubscriptionEvent::Message { .. } => {}
            other => panic!("expected Lost, got {other:?}"),
        }
    }
    revive();
    assert_eq!(next(sub).await, SubscriptionEvent::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_made_while_the_server_is_down_reports_lost_then_active_once_it_starts() {
    let mut server = RedisProcess::start();
    let url = server.url();
    server.kill();
    let backend = RedisBackend::builder()
        .url(&url)
        .reconnect_policy(ReconnectPolicy::new_constant(0, 100))
        .connect_lazy()
        .unwrap();
    let pubsub = backend.pubsub();
    let mut sub = pubsub.subscribe(&channels(&["inv"])).await.unwrap();
    let err = pubsub.publish("inv", b("nobody")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    expect_lost_then_active_after(&mut sub, || server.restart()).await;
    publish_when_connected(&pubsub, "inv", "hello").await;
    expect_message(&mut sub, "inv", "hello").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_to_a_subscriber_that_does_not_read_is_reported_as_lagged_and_stays_bounded() {
    const BURST: u64 = 100_000;
    let (pubsub, _) = standalone_pubsub("lagged").await;
    let mut sub = pubsub.subscribe(&channels(&["burst"])).await.unwrap();
    expect_active(&mut sub).await;
    // The subscriber reads nothing while the burst is published.
    for chunk in 0..BURST / 1000 {
        try_join_all(
            (0..1000).map(|i| pubsub.publish("burst", b(&(chunk * 1000 + i).to_string()))),
        )
        .await
        .unwrap();
    }
    // Memory is bounded by construction (a bounded queue behind fred's bounded broadcast), so
    // a consumer that reads nothing is handed a bounded window of the burst: the rest is
    // reported as dropped. Every message is either delivered or counted.
    let (mut delivered, mut dropped, mut lag_events) = (0u64, 0u64, 0u64);
    while delivered + dropped < BURST {
        match next(&mut sub).await {
            SubscriptionEvent::Message { channel, .. } => {
                assert_eq!(channel, "burst");
                delivered += 1;
            }
            SubscriptionEvent::Lagged(n) => {
                dropped += n;
                lag_events += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delivered + dropped, BURST);
    assert!(lag_events >= 1, "the overflow was reported");
    // What was held is the queue and the broadcast buffer, plus what was still on the socket
    // when the consumer started reading: far less than the burst.
    let window = (EVENT_QUEUE + SUBSCRIBER_BROADCAST_CAPACITY) as u64;
    assert!(
        delivered < BURST / 4 && delivered >= window / 2,
        "{delivered} of {BURST} messages delivered to a consumer that read nothing \
         (queue + broadcast = {window})"
    );
    // Once the consumer keeps up, messages flow again, in order.
    pubsub.publish("burst", b("after")).await.unwrap();
    expect_message(&mut sub, "burst", "after").await;
}

#[tokio::test]
async fn dropping_the_subscription_closes_its_connection() {
    let (pubsub, name) = standalone_pubsub("drop").await;
    let raw = common::raw_standalone().await;
    let mut sub = pubsub.subscribe(&channels(&["inv"])).await.unwrap();
    expect_active(&mut sub).await;
    assert_eq!(connections_named(&raw, &name).await.len(), 1);
    drop(sub);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !connections_named(&raw, &name).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscriber connection outlived its subscription by {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn subscribing_to_no_channel_is_a_config_error() {
    let (pubsub, _) = standalone_pubsub("none").await;
    let err = pubsub.subscribe(&[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn debug_never_shows_the_password() {
    let backend = RedisBackend::builder()
        .url("redis://:pubsub-s3cret@127.0.0.1:6390/0")
        .connect_lazy()
        .unwrap();
    let pubsub = backend.pubsub();
    let debug = format!("{pubsub:?}");
    assert!(debug.contains("RedisPubSub"), "{debug}");
    assert!(!debug.contains("pubsub-s3cret"), "{debug}");
}

#[tokio::test]
async fn cluster_sharded_publish_subscribe_survives_a_client_kill_of_the_subscriber() {
    let name = client_name("cluster-kill");
    let pubsub = common::cluster()
        .await
        .with_prefix(common::unique("cluster-kill"))
        .pubsub()
        .with_client_name(&name);
    let mut sub = pubsub
        .subscribe(&channels(&["inv", "other"]))
        .await
        .unwrap();
    expect_active(&mut sub).await;
    for i in 0..100 {
        let channel = if i % 2 == 0 { "inv" } else { "other" };
        pubsub.publish(channel, b(&i.to_string())).await.unwrap();
    }
    for i in 0..100 {
        let channel = if i % 2 == 0 { "inv" } else { "other" };
        assert_eq!(
            next(&mut sub).await,
            SubscriptionEvent::Message {
                channel: channel.to_owned(),
                payload: b(&i.to_string())
            }
        );
    }

    // The sharded subscription lives on the node owning the channels' slot: find it there.
    let mut killed = 0;
    for (host, port) in common::cluster_nodes() {
        let raw = raw_client(&format!("redis://{host}:{port}")).await;
        for id in connections_named(&raw, &name).await {
            kill_connection(&raw, &id).await;
            killed += 1;
        }
    }
    assert_eq!(
        killed, 1,
        "exactly one subscriber connection, on the slot's owner"
    );
    expect_lost_then_active(&mut sub).await;

    pubsub.publish("other", b("after")).await.unwrap();
    expect_message(&mut sub, "other", "after").await;
}
