//! Through `CacheService`, a tampered or foreign value is a miss from `get` and a
//! `Serialization` error from `try_get`, never a panic or a forged value.

use std::sync::Arc;

use lexicache_core::{Bytes, CacheBackend, ErrorKind};
use lexicache_memory::MemoryBackend;
use lexicache_serde::{
    Aead, Compressing, Encrypted, EncryptionKey, Json, Postcard, Signed, SigningKey,
};
use lexicache_service::CacheService;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Account {
    id: u64,
    owner: String,
    balance: i64,
}

fn account() -> Account {
    Account {
        id: 7,
        owner: "alice".into(),
        balance: 100,
    }
}

fn key() -> SigningKey {
    SigningKey::new(1, *b"service-test-signing-key-32bytes").unwrap()
}

#[tokio::test]
async fn tampered_signed_value_is_a_miss_from_get_and_an_error_from_try_get() {
    let backend = Arc::new(MemoryBackend::new());
    let cache = CacheService::builder(backend.clone())
        .serializer(Signed::new(Compressing::new(Postcard), [key()]).unwrap())
        .build();
    cache.try_set("account:7", &account(), None).await.unwrap();
    assert_eq!(
        cache.try_get::<Account>("account:7").await.unwrap(),
        Some(account())
    );

    // Flip one payload byte in the stored bytes (the write drops the kept object, as a
    // remote backend has none).
    let mut stored = backend.get("account:7").await.unwrap().unwrap().to_vec();
    stored[12] ^= 0x01;
    backend
        .set("account:7", Bytes::from(stored), None)
        .await
        .unwrap();

    let errors_before = cache.metrics().errors;
    assert_eq!(cache.get::<Account>("account:7").await, None);
    assert_eq!(cache.metrics().errors, errors_before + 1);
    let err = cache.try_get::<Account>("account:7").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization);
    assert!(err.message().starts_with("bad MAC"), "{err}");
}

#[tokio::test]
async fn value_moved_to_another_key_is_a_miss() {
    let backend = Arc::new(MemoryBackend::new());
    let cache = CacheService::builder(backend.clone())
        .serializer(Signed::new(Json, [key()]).unwrap())
        .build();
    cache.try_set("account:7", &account(), None).await.unwrap();
    let stored = backend.get("account:7").await.unwrap().unwrap();
    backend.set("account:8", stored, None).await.unwrap();
    assert_eq!(cache.get::<Account>("account:8").await, None);
    let err = cache.try_get::<Account>("account:8").await.unwrap_err();
    assert!(err.message().starts_with("bad MAC"), "{err}");
}

#[tokio::test]
async fn unsigned_value_planted_in_the_backend_is_a_miss() {
    let backend = Arc::new(MemoryBackend::new());
    let cache = CacheService::builder(backend.clone())
        .serializer(Signed::new(Json, [key()]).unwrap())
        .build();
    // Both the old unenveloped JSON and a well-formed unsigned envelope.
    let forged = Account {
        balance: 1_000_000,
        ..account()
    };
    for bytes in [
        lexicache_core::Bytes::from(serde_json::to_vec(&forged).unwrap()),
        lexicache_core::Serializer::encode(&Json, "account:7", &forged).unwrap(),
    ] {
        backend.set("account:7", bytes, None).await.unwrap();
        assert_eq!(cache.get::<Account>("account:7").await, None);
        let err = cache.try_get::<Account>("account:7").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Serialization);
    }
}

#[tokio::test]
async fn encrypted_stack_round_trips_through_the_service_and_hides_the_value() {
    let backend = Arc::new(MemoryBackend::new());
    let sealed = Encrypted::new(
        Compressing::new(Postcard),
        [EncryptionKey::generate(1, Aead::Aes256Gcm).unwrap()],
    )
    .unwrap();
    let cache = CacheService::builder(backend.clone())
        .serializer(sealed)
        .build();
    cache.try_set("account:7", &account(), None).await.unwrap();
    let stored = backend.get("account:7").await.unwrap().unwrap();
    assert!(!stored.windows(5).any(|w| w == b"alice"));
    assert_eq!(
        cache.try_get::<Account>("account:7").await.unwrap(),
        Some(account())
    );
}
