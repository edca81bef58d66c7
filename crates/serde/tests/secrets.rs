//! The secret store over the memory backend: encrypted at rest, bound to the name, listed by
//! prefix, and never printed.

use std::sync::Arc;

use lexicache_core::{CacheBackend, ErrorKind};
use lexicache_memory::MemoryBackend;
use lexicache_serde::{
    Aead, BackendSecretStore, EncryptionKey, Envelope, Flags, Secret, SecretStore,
};

fn key(id: u32) -> EncryptionKey {
    EncryptionKey::new(id, Aead::ChaCha20Poly1305, [id as u8 ^ 0x77; 32]).unwrap()
}

fn store() -> (Arc<MemoryBackend>, BackendSecretStore<Arc<MemoryBackend>>) {
    let backend = Arc::new(MemoryBackend::new());
    let store = BackendSecretStore::new(backend.clone(), [key(1)]).unwrap();
    (backend, store)
}

#[tokio::test]
async fn set_get_delete_round_trip() {
    let (_, store) = store();
    assert!(store.get("api/token").await.unwrap().is_none());
    store
        .set("api/token", &Secret::from("s3cr3t-token"))
        .await
        .unwrap();
    let got = store.get("api/token").await.unwrap().unwrap();
    assert_eq!(got.expose(), b"s3cr3t-token");
    store
        .set("api/token", &Secret::from(vec![0u8, 255, 1]))
        .await
        .unwrap();
    assert_eq!(
        store.get("api/token").await.unwrap().unwrap().expose(),
        [0, 255, 1]
    );
    assert!(store.delete("api/token").await.unwrap());
    assert!(!store.delete("api/token").await.unwrap());
    assert!(store.get("api/token").await.unwrap().is_none());
}

#[tokio::test]
async fn secrets_are_encrypted_at_rest() {
    let (backend, store) = store();
    store
        .set("db/password", &Secret::from("hunter2-hunter2"))
        .await
        .unwrap();
    let stored = backend.get("secret:db/password").await.unwrap().unwrap();
    assert!(!stored.windows(7).any(|w| w == b"hunter2"));
    let env = Envelope::parse(&stored).unwrap();
    assert!(env.header().flags().contains(Flags::ENCRYPTED));
    assert_eq!(env.key_id(), Some(1));
}

#[tokio::test]
async fn the_same_secret_encrypts_differently_each_time() {
    let (backend, store) = store();
    store.set("a", &Secret::from("same")).await.unwrap();
    let first = backend.get("secret:a").await.unwrap().unwrap();
    store.set("a", &Secret::from("same")).await.unwrap();
    let second = backend.get("secret:a").await.unwrap().unwrap();
    assert_ne!(first, second);
}

#[tokio::test]
async fn ciphertexts_swapped_between_names_fail_to_decrypt() {
    let (backend, store) = store();
    store.set("alice", &Secret::from("alice-pw")).await.unwrap();
    store.set("bob", &Secret::from("bob-pw")).await.unwrap();
    let a = backend.get("secret:alice").await.unwrap().unwrap();
    let b = backend.get("secret:bob").await.unwrap().unwrap();
    backend.set("secret:alice", b, None).await.unwrap();
    backend.set("secret:bob", a, None).await.unwrap();
    for name in ["alice", "bob"] {
        let err = store.get(name).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Serialization);
        assert!(err.message().starts_with("decrypt failed"), "{err}");
        assert!(!format!("{err:?}").contains("-pw"));
    }
}

#[tokio::test]
async fn list_by_prefix_returns_sorted_names_of_this_store_only() {
    let (backend, store) = store();
    for name in [
        "db/user",
        "db/password",
        "dbx/other",
        "api/token",
        "db/[weird]*",
    ] {
        store.set(name, &Secret::from(name)).await.unwrap();
    }
    // A cache entry beside the store's keys is not a secret.
    backend
        .set("db/cache", lexicache_core::Bytes::from_static(b"x"), None)
        .await
        .unwrap();
    assert_eq!(
        store.list("db/").await.unwrap(),
        ["db/[weird]*", "db/password", "db/user"]
    );
    assert_eq!(store.list("db/[").await.unwrap(), ["db/[weird]*"]);
    assert_eq!(store.list("").await.unwrap().len(), 5);
    assert!(store.list("nothing").await.unwrap().is_empty());
}

#[tokio::test]
async fn list_honours_the_limit() {
    let backend = Arc::new(MemoryBackend::new());
    let store = BackendSecretStore::new(backend, [key(1)])
        .unwrap()
        .list_limit(2);
    for i in 0..5 {
        store
            .set(&format!("k{i}"), &Secret::from("v"))
            .await
            .unwrap();
    }
    assert_eq!(store.list("k").await.unwrap().len(), 2);
}

#[tokio::test]
async fn stores_with_other_prefixes_do_not_see_each_other() {
    let backend = Arc::new(MemoryBackend::new());
    let a = BackendSecretStore::new(backend.clone(), [key(1)])
        .unwrap()
        .prefix("a:");
    let b = BackendSecretStore::new(backend.clone(), [key(1)])
        .unwrap()
        .prefix("b:");
    a.set("x", &Secret::from("1")).await.unwrap();
    assert!(b.get("x").await.unwrap().is_none());
    assert_eq!(a.list("").await.unwrap(), ["x"]);
    assert!(b.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn rotation_keeps_old_secrets_readable_until_the_key_is_removed() {
    let (backend, store) = store();
    store.set("old", &Secret::from("one")).await.unwrap();
    store.rotate_key(key(2)).unwrap();
    store.set("new", &Secret::from("two")).await.unwrap();
    let stored = backend.get("secret:new").await.unwrap().unwrap();
    assert_eq!(Envelope::parse(&stored).unwrap().key_id(), Some(2));
    assert_eq!(store.get("old").await.unwrap().unwrap().expose(), b"one");
    assert!(store.remove_key(1).unwrap());
    let err = store.get("old").await.unwrap_err();
    assert!(err.message().contains("unknown key id 1"), "{err}");
    assert_eq!(store.get("new").await.unwrap().unwrap().expose(), b"two");
}

#[tokio::test]
async fn a_store_with_another_key_cannot_read_secrets() {
    let backend = Arc::new(MemoryBackend::new());
    let writer = BackendSecretStore::new(backend.clone(), [key(1)]).unwrap();
    writer.set("x", &Secret::from("v")).await.unwrap();
    let other_key = EncryptionKey::new(1, Aead::ChaCha20Poly1305, [0u8; 32]).unwrap();
    let reader = BackendSecretStore::new(backend, [other_key]).unwrap();
    let err = reader.get("x").await.unwrap_err();
    assert!(err.message().starts_with("decrypt failed"));
}

#[tokio::test]
async fn invalid_names_are_key_errors() {
    let backend = Arc::new(MemoryBackend::new());
    let store = BackendSecretStore::new(backend, [key(1)])
        .unwrap()
        .prefix("");
    let err = store.set("", &Secret::from("v")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyInvalid);
}

#[tokio::test]
async fn secrets_keys_and_stores_never_print_key_material_or_values() {
    let raw = [0xC3_u8; 32];
    let k = EncryptionKey::new(5, Aead::Aes256Gcm, raw).unwrap();
    let store: Arc<dyn SecretStore> =
        Arc::new(BackendSecretStore::new(MemoryBackend::new(), [k.clone()]).unwrap());
    let secret = Secret::from("correct horse battery staple");
    store.set("pw", &secret).await.unwrap();
    let got = store.get("pw").await.unwrap().unwrap();
    let shown = format!("{k:?} {store:?} {secret:?} {secret} {got:?} {got}");
    assert!(!shown.contains("horse"), "{shown}");
    assert!(!shown.contains("195"), "{shown}");
    assert!(!shown.to_lowercase().contains("c3"), "{shown}");
    assert!(shown.contains("<redacted>"));
}
