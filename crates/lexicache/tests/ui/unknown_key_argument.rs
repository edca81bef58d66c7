//! Compile-fail: a key template naming an argument the fn does not have.

use lexicache::{cached, invalidate};

#[cached(key = "user:{idx}")]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

#[invalidate(tags = ["users", "user:{self}"])]
async fn rename_user(id: u64, name: String) {
    let _ = (id, name);
}

fn main() {}
