//! Compile-fail: a `#[cached]` fn whose argument or return type is not `Serialize` is an error
//! at that argument or return type.

use lexicache::cached;

#[derive(Debug, Clone)]
struct Query {
    text: String,
}

#[cached(ttl = 60)]
async fn search(limit: u32, query: Query) -> Vec<String> {
    vec![query.text; limit as usize]
}

#[derive(Debug, Clone)]
struct Report {
    lines: u32,
}

#[cached(key = "report:{day}")]
async fn report(day: u32) -> Report {
    Report { lines: day }
}

fn main() {}
