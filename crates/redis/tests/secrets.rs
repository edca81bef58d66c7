//! The encrypted secret store of `lexicache-serde` over Redis: encrypted at rest on the server,
//! bound to each secret's name, listed by prefix with `SCAN`, on standalone and cluster.

mod common;

use lexicache_core::{CacheBackend, ErrorKind};
use lexicache_redis::fred::interfaces::KeysInterface;
use lexicache_redis::RedisBackend;
use lexicache_serde::{Aead, BackendSecretStore, EncryptionKey, Secret, SecretStore};

fn key() -> EncryptionKey {
    EncryptionKey::new(7, Aead::Aes256Gcm, [0x5a; 32]).expect("a 32-byte key")
}

fn store(backend: RedisBackend) -> BackendSecretStore<RedisBackend> {
    BackendSecretStore::new(backend, [key()]).expect("one key")
}

#[tokio::test]
async fn secrets_round_trip_encrypted_at_rest_on_redis() {
    let prefix = common::unique("secrets-at-rest");
    let secrets = store(common::standalone().await.with_prefix(prefix.clone()));
    secrets
        .set("db/password", &Secret::from("hunter2-hunter2"))
        .await
        .unwrap();
    let got = secrets.get("db/password").await.unwrap().unwrap();
    assert_eq!(got.expose(), b"hunter2-hunter2");

    // What Redis holds, read with a raw client, does not contain the secret.
    let raw = common::raw_standalone().await;
    let stored: Vec<u8> = raw
        .get(format!("{prefix}secret:db/password"))
        .await
        .unwrap();
    assert!(!stored.is_empty());
    assert!(!stored.windows(7).any(|w| w == b"hunter2"));

    assert!(secrets.delete("db/password").await.unwrap());
    assert!(secrets.get("db/password").await.unwrap().is_none());
}

#[tokio::test]
async fn ciphertexts_swapped_between_names_on_redis_fail_to_decrypt() {
    let backend = common::standalone()
        .await
        .with_prefix(common::unique("secrets-swap"));
    let secrets = store(backend.clone());
    secrets
        .set("alice", &Secret::from("alice-pw"))
        .await
        .unwrap();
    secrets.set("bob", &Secret::from("bob-pw")).await.unwrap();
    let a = backend.get("secret:alice").await.unwrap().unwrap();
    let b = backend.get("secret:bob").await.unwrap().unwrap();
    backend.set("secret:alice", b, None).await.unwrap();
    backend.set("secret:bob", a, None).await.unwrap();
    for name in ["alice", "bob"] {
        let err = secrets.get(name).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Serialization, "{err}");
    }
}

#[tokio::test]
async fn secrets_are_listed_by_prefix_across_cluster_primaries() {
    let secrets = store(
        common::cluster()
            .await
            .with_prefix(common::unique("secrets-list")),
    );
    let names: Vec<String> = (0..30).map(|i| format!("svc/{i:02}")).collect();
    for name in &names {
        secrets
            .set(name, &Secret::from(name.as_str()))
            .await
            .unwrap();
    }
    secrets.set("other/x", &Secret::from("x")).await.unwrap();
    assert_eq!(secrets.list("svc/").await.unwrap(), names);
    assert_eq!(secrets.list("other/").await.unwrap(), ["other/x"]);
    assert_eq!(secrets.list("").await.unwrap().len(), 31);
}
