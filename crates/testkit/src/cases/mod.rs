//! The behaviour cases, one module per theme. Each case is an `async fn` over a
//! [`Ctx`](crate::ctx::Ctx) that panics with a precise message when the backend misbehaves; which cases
//! apply to which backends is decided in [`crate::registry`].

pub(crate) mod absent;
pub(crate) mod basic;
pub(crate) mod batch;
pub(crate) mod concurrency;
pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod listing;
pub(crate) mod namespace;
pub(crate) mod objects;
pub(crate) mod pattern;
pub(crate) mod ttl;
pub(crate) mod values;
