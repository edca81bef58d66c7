//! Compile-fail: `#[cached]` on a fn that is not async.

use lexicache::cached;

#[cached(ttl = 60)]
fn get_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {
    let _ = get_user(1);
}
