//! Compile-fail: an argument the macros do not know.

use lexicache::{cache_in_request, cached};

#[cached(ttl = 60, expire = 30)]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

#[cache_in_request(ttl = 60)]
async fn permissions(id: u64) -> Vec<String> {
    vec![format!("read:{id}")]
}

fn main() {}
