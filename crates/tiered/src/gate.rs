//! Generations that keep a stale L2 read out of L1.
//!
//! A fill (an L2 read copied into L1, or a local write's new value) races invalidations: the
//! L2 read may return the old value just before another process writes, and that process's
//! invalidation may arrive before the fill lands. Without care, the fill would then put the
//! old value back into L1 after its invalidation, where it would stay until its L1 TTL.
//!
//! So every key hashes to one of [`STRIPES`] stripes, each with a generation, and there is one
//! global generation. An invalidation bumps its key's stripe (or, for a pattern, a clear, a
//! gap or a lost subscription, the global generation) and then removes from L1, under the
//! stripe's lock (the global lock exclusively). A fill takes a [`Snapshot`] of both
//! generations *before* its L2 operation and lands only if, under the same locks, neither has
//! moved. An invalidation therefore either happens before the fill's check, and the fill is
//! dropped, or after it, and removes what the fill wrote.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, RwLock};

/// Stripes of the per-key generations. A collision only costs a dropped fill.
pub(crate) const STRIPES: usize = 1024;

struct Stripe {
    lock: Mutex<()>,
    generation: AtomicU64,
}

pub(crate) struct Gate {
    global_lock: RwLock<()>,
    global: AtomicU64,
    stripes: Box<[Stripe]>,
}

/// The generations a fill saw before its L2 operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    stripe: usize,
    global: u64,
    local: u64,
}

/// FNV-1a: a few nanoseconds for a short key, and no state.
fn stripe_of(key: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h as usize) % STRIPES
}

impl Gate {
    pub(crate) fn new() -> Self {
        Self {
            global_lock: RwLock::new(()),
            global: AtomicU64::new(0),
            stripes: (0..STRIPES)
                .map(|_| Stripe {
                    lock: Mutex::new(()),
                    generation: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// The generations now, taken before the L2 operation a fill copies.
    pub(crate) fn snapshot(&self, key: &str) -> Snapshot {
        let stripe = stripe_of(key);
        Snapshot {
            stripe,
            global: self.global.load(Ordering::SeqCst),
            local: self.stripes[stripe].generation.load(Ordering::SeqCst),
        }
    }

    /// Whether neither generation `snap` saw has moved; called under the stripe's lock.
    fn unchanged(&self, snap: Snapshot) -> bool {
        self.global.load(Ordering::SeqCst) == snap.global
            && self.stripes[snap.stripe].generation.load(Ordering::SeqCst) == snap.local
    }

    /// Runs `fill` if no invalidation touched the key since `snap`; returns whether it ran.
    pub(crate) async fn fill<F: Future>(&self, snap: Snapshot, fill: F) -> bool {
        let _global = self.global_lock.read().await;
        let stripe = &self.stripes[snap.stripe];
        let _stripe = stripe.lock.lock().await;
        if !self.unchanged(snap) {
            return false;
        }
        fill.await;
        true
    }

    /// Lands a local write's copy: runs `set` if no invalidation touched the key since `snap`,
    /// else `remove`, and in both cases bumps the key's stripe, so a read of L2 that started
    /// before the write (and may have seen the old value) cannot land after it, nor can an
    /// older concurrent write.
    pub(crate) async fn write<S: Future, R: Future>(&self, snap: Snapshot, set: S, remove: R) {
        let _global = self.global_lock.read().await;
        let stripe = &self.stripes[snap.stripe];
        let _stripe = stripe.lock.lock().await;
        if self.unchanged(snap) {
            set.await;
        } else {
            remove.await;
        }
        stripe.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Invalidates one key: bumps its stripe, then runs `remove`.
    pub(crate) async fn invalidate_key<F: Future>(&self, key: &str, remove: F) -> F::Output {
        let _global = self.global_lock.read().await;
        let stripe = &self.stripes[stripe_of(key)];
        let _stripe = stripe.lock.lock().await;
        stripe.generation.fetch_add(1, Ordering::SeqCst);
        remove.await
    }

    /// Invalidates everything: bumps the global generation, then runs `remove`.
    pub(crate) async fn invalidate_all<F: Future>(&self, remove: F) -> F::Output {
        let _global = self.global_lock.write().await;
        self.global.fetch_add(1, Ordering::SeqCst);
        remove.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fill_lands_when_nothing_was_invalidated() {
        let gate = Gate::new();
        let snap = gate.snapshot("k");
        assert!(gate.fill(snap, async {}).await);
    }

    #[tokio::test]
    async fn a_fill_is_dropped_after_its_key_was_invalidated() {
        let gate = Gate::new();
        let snap = gate.snapshot("k");
        gate.invalidate_key("k", async {}).await;
        assert!(!gate.fill(snap, async {}).await);
    }

    #[tokio::test]
    async fn a_fill_is_dropped_after_a_global_invalidation() {
        let gate = Gate::new();
        let snap = gate.snapshot("k");
        gate.invalidate_all(async {}).await;
        assert!(!gate.fill(snap, async {}).await);
    }

    #[tokio::test]
    async fn a_write_drops_reads_that_started_before_it() {
        let gate = Gate::new();
        let read = gate.snapshot("k");
        let write = gate.snapshot("k");
        let mut landed = false;
        gate.write(write, async { landed = true }, async {}).await;
        assert!(landed);
        assert!(!gate.fill(read, async {}).await);
    }

    #[tokio::test]
    async fn the_older_of_two_racing_writes_removes_instead_of_landing() {
        let gate = Gate::new();
        let (first, second) = (gate.snapshot("k"), gate.snapshot("k"));
        gate.write(second, async {}, async { panic!("the first to land sets") })
            .await;
        let mut removed = false;
        gate.write(
            first,
            async { panic!("a write older than a landed one") },
            async {
                removed = true;
            },
        )
        .await;
        assert!(removed);
    }

    #[tokio::test]
    async fn another_stripe_does_not_drop_a_fill() {
        let gate = Gate::new();
        let other = (0..)
            .map(|i| format!("other{i}"))
            .find(|k| stripe_of(k) != stripe_of("k"))
            .unwrap();
        let snap = gate.snapshot("k");
        gate.invalidate_key(&other, async {}).await;
        assert!(gate.fill(snap, async {}).await);
    }
}
