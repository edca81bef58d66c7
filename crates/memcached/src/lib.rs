//! Memcached backend (in progress).
