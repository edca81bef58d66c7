//! Turns fred's connection notifications into [`CacheEvent::Connected`] and
//! [`CacheEvent::Disconnected`] on the backend's [`EventBus`].
//!
//! fred announces every (re)connection of every server and every connection error, including
//! each failed reconnect attempt. The listener keeps one state so subscribers see transitions
//! only: `Connected` once when the link comes up, `Disconnected` once when it goes down.

use std::sync::Arc;

use fred::clients::Client;
use fred::interfaces::EventInterface;
use lexicache_core::{CacheEvent, EventBus};
use tokio::sync::broadcast::error::RecvError;

/// The link state as last announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Unknown,
    Up,
    Down,
}

/// Spawns the listener on the current runtime. It must run before the client connects, so the
/// first `Connected` is not missed. It ends when the client quits (fred closes the streams).
pub(crate) fn spawn_listener(client: &Client, bus: EventBus, backend: Arc<str>) {
    let mut reconnects = client.reconnect_rx();
    let mut errors = client.error_rx();
    tokio::spawn(async move {
        let mut link = Link::Unknown;
        loop {
            let next = tokio::select! {
                r = reconnects.recv() => r.map(|_| None),
                r = errors.recv() => r.map(|(e, _server)| Some(e.to_string())),
            };
            match next {
                Ok(None) => {
                    if link != Link::Up {
                        link = Link::Up;
                        tracing::info!(backend = %backend, "redis connected");
                        bus.emit_with(|| CacheEvent::Connected {
                            backend: backend.clone(),
                        });
                    }
                }
                Ok(Some(reason)) => {
                    if link != Link::Down {
                        link = Link::Down;
                        tracing::warn!(backend = %backend, %reason, "redis disconnected");
                        bus.emit_with(|| CacheEvent::Disconnected {
                            backend: backend.clone(),
                            reason,
                        });
                    }
                }
                // Missed notifications do not matter: the next one says where the link is.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    });
}
