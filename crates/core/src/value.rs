//! [`CacheValue`]: the bytes of an entry, plus (in-process only) the decoded value.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// A decoded value kept beside its bytes by in-process backends.
pub type Object = Arc<dyn Any + Send + Sync>;

/// One cache entry as it crosses the [`CacheBackend`](crate::CacheBackend) boundary.
///
/// The bytes are the contract: every backend stores and returns them. In-process backends
/// (those whose [`Capabilities::in_process`](crate::Capabilities::in_process) is true) also keep
/// the decoded value that was written, so a typed hit is an `Arc` clone and a downcast instead of
/// a decode. Remote backends ignore the object and return entries without one.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use lexicache_core::CacheValue;
///
/// let v = CacheValue::with_object(Bytes::from_static(b"42"), Arc::new(42u32));
/// assert_eq!(v.object_as::<u32>().as_deref(), Some(&42));
/// assert!(v.object_as::<String>().is_none());
/// assert_eq!(*v.into_object_as::<u32>().unwrap(), 42);
/// ```
#[derive(Clone)]
pub struct CacheValue {
    bytes: Bytes,
    object: Option<Object>,
}

impl CacheValue {
    /// An entry of bytes only.
    #[must_use]
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self {
            bytes,
            object: None,
        }
    }

    /// An entry of bytes plus the decoded value they encode.
    ///
    /// The caller guarantees that decoding `bytes` gives a value equal to `object`.
    #[must_use]
    pub fn with_object(bytes: Bytes, object: Object) -> Self {
        Self {
            bytes,
            object: Some(object),
        }
    }

    /// The encoded bytes.
    #[must_use]
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Consumes the entry, returning its bytes.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The decoded value, if the backend kept one.
    #[must_use]
    pub fn object(&self) -> Option<&Object> {
        self.object.as_ref()
    }

    /// The decoded value as a `T`, if one was kept and it is a `T`.
    #[must_use]
    pub fn object_as<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.object.clone()?.downcast::<T>().ok()
    }

    /// Consumes the entry, returning its decoded value as a `T` without touching its reference
    /// count; the entry comes back unchanged when it holds no `T`.
    ///
    /// # Errors
    ///
    /// The entry itself, when no object was kept or it is not a `T`.
    pub fn into_object_as<T: Any + Send + Sync>(self) -> Result<Arc<T>, Self> {
        match self.object {
            Some(object) if object.is::<T>() => object
                .downcast::<T>()
                .map_err(|object| Self::with_object(self.bytes, object)),
            _ => Err(self),
        }
    }

    /// Drops the decoded value, keeping only the bytes.
    #[must_use]
    pub fn without_object(self) -> Self {
        Self::from_bytes(self.bytes)
    }
}

impl From<Bytes> for CacheValue {
    fn from(bytes: Bytes) -> Self {
        Self::from_bytes(bytes)
    }
}

impl fmt::Debug for CacheValue {
    // Values are never printed: they may hold user data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheValue")
            .field("len", &self.bytes.len())
            .field("has_object", &self.object.is_some())
            .finish()
    }
}
