//! Replaces a connection that stopped answering while commands keep arriving.
//!
//! fred's unresponsive check ([`RedisConfig::unresponsive_timeout`](crate::RedisConfig)) measures
//! the time since the last *write* on a connection. Steady traffic keeps that short, so a
//! connection whose replies stopped for good (a blackholed route, a peer gone without a FIN or
//! an RST) was never replaced: every command timed out, for as long as traffic kept coming.
//! [`watch`] closes the gap: on a command timeout it sends one `PING` with the unresponsive
//! timeout as its deadline (one at a time per client). If that goes unanswered too, the
//! connection is dead and fred is told to reconnect; if it is answered (a slow moment, a slow
//! command), nothing happens. A dead connection is thus replaced within the command timeout plus
//! the unresponsive timeout, whatever the traffic.

use std::sync::atomic::Ordering;

use fred::error::ErrorKind as FredKind;
use fred::interfaces::ClientLike;
use fred::types::config::Options;

use crate::backend::Shared;

/// Starts a stall check of `shared`'s connection after a command timed out, unless one runs
/// already or the unresponsive check is off.
pub(crate) fn watch(shared: &Shared) {
    let Some(limit) = shared.config.unresponsive_timeout else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if shared.stall_watch.swap(true, Ordering::AcqRel) {
        return;
    }
    let watching = shared.stall_watch.clone();
    let client = shared.client.clone();
    let name = shared.name.clone();
    runtime.spawn(async move {
        // Fail-fast: while disconnected (or after `quit`) there is no connection to replace.
        let options = Options {
            timeout: Some(limit),
            fail_fast: true,
            ..Options::default()
        };
        let ping = client.with_options(&options).ping::<()>(None).await;
        if ping.is_err_and(|e| *e.kind() == FredKind::Timeout) {
            tracing::warn!(
                backend = %name,
                unanswered_for = ?limit,
                "redis connection unresponsive; reconnecting"
            );
            let _ = tokio::time::timeout(limit, client.force_reconnection()).await;
        }
        watching.store(false, Ordering::Release);
    });
}
