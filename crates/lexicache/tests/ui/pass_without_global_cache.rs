//! Without `cache = ...` and without a global cache, a `#[cached]` fn runs uncached; with the
//! global cache installed it is memoized.

use std::sync::atomic::{AtomicU32, Ordering};

use lexicache::memo;
use lexicache::{cached, CacheService};

static RUNS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60)]
async fn double(x: u32) -> u32 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    x * 2
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert!(memo::global().is_none());
    assert_eq!(double(2).await, 4);
    assert_eq!(double(2).await, 4);
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);

    assert!(memo::set_global(CacheService::memory().build()));
    assert_eq!(double(2).await, 4);
    assert_eq!(double(2).await, 4);
    assert_eq!(RUNS.load(Ordering::SeqCst), 3);
}
