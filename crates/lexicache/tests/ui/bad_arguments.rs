//! Compile-fail: malformed macro arguments (a ttl that is not whole seconds, a flag without a
//! value, a duplicate) are errors at the argument.

use lexicache::cached;

#[cached(ttl = "5m")]
async fn a(id: u64) -> u64 {
    id
}

#[cached(ttl = 0)]
async fn b(id: u64) -> u64 {
    id
}

#[cached(key = "user:{id:?}")]
async fn c(id: u64) -> u64 {
    id
}

#[cached(tags = "users")]
async fn d(id: u64) -> u64 {
    id
}

#[cached(condition = is_ok)]
async fn e(id: u64) -> Result<u64, String> {
    Ok(id)
}

#[cached(protect)]
async fn f(id: u64) -> u64 {
    id
}

#[cached(ttl = 1, ttl = 2)]
async fn g(id: u64) -> u64 {
    id
}

struct Counter {
    cache: lexicache::CacheService,
    n: u64,
}

impl Counter {
    #[cached(cache = self.cache)]
    async fn bump(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }
}

fn main() {}
