//! Early refresh: XFetch, stale-while-revalidate and TTL jitter (being written).
