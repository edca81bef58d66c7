//! Any bytes through the base codecs, into a typed struct and into loose shapes: an error or a
//! value, never a panic, and never an error message quoting the input.
#![no_main]

use lexicache_core::Serializer;
use lexicache_serde::{Json, Postcard};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
    nested: Vec<(u8, Vec<u8>)>,
}

fn check<T: serde::de::DeserializeOwned, S: Serializer>(s: &S, data: &[u8]) {
    if let Err(e) = s.decode::<T>("fuzz", data) {
        assert_eq!(e.kind(), lexicache_core::ErrorKind::Serialization);
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Record, _>(&Json, data);
    check::<serde_json::Value, _>(&Json, data);
    check::<Vec<String>, _>(&Json, data);
    check::<Record, _>(&Postcard, data);
    check::<Vec<u8>, _>(&Postcard, data);
    check::<(u32, String, bool), _>(&Postcard, data);
});
