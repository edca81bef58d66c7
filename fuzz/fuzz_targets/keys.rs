//! Any key (any bytes, made text) and any length limit through `KeyRules`: no panic; a key is
//! accepted exactly when it is non-empty and within the limit in bytes; a refusal is a
//! `KeyInvalid` error that never quotes the key; `check` adds the backend and operation;
//! `validate_all` reports the first bad key of a batch; `key_hash` is 16 hex digits.
#![no_main]

use arbitrary::Arbitrary;
use lexicache_core::{key_hash, ErrorKind, KeyRules, Operation};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    max_len: u16,
    key: Vec<u8>,
    batch: Vec<String>,
}

fuzz_target!(|input: Input| {
    let key = String::from_utf8_lossy(&input.key);
    let rules = if input.max_len == u16::MAX {
        KeyRules::new()
    } else {
        KeyRules::new().max_len(usize::from(input.max_len))
    };
    let limit = rules.max_key_len();
    assert!(limit >= 1);

    let ok = !key.is_empty() && key.len() <= limit;
    match rules.validate(&key) {
        Ok(()) => assert!(ok, "accepted {} bytes over {limit}", key.len()),
        Err(e) => {
            assert!(!ok, "refused a {}-byte key under {limit}: {e}", key.len());
            assert_eq!(e.kind(), ErrorKind::KeyInvalid);
            // The message names the rule, never the key (which may be user data). Only keys
            // no message could contain by chance are checked: long, with a non-ASCII or
            // control character.
            if key.len() >= 16 && key.chars().any(|c| !c.is_ascii() || c.is_control()) {
                assert!(!e.to_string().contains(&*key), "{e}");
            }
        }
    }
    match rules.check(&key, "fuzz", Operation::Get) {
        Ok(()) => assert!(ok),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::KeyInvalid);
            assert_eq!(e.backend(), "fuzz");
            assert_eq!(e.operation(), Some(Operation::Get));
        }
    }

    let first_bad = input
        .batch
        .iter()
        .position(|k| k.is_empty() || k.len() > limit);
    let all = rules.validate_all(input.batch.iter().map(String::as_str));
    assert_eq!(all.is_err(), first_bad.is_some());
    if let (Err(e), Some(i)) = (all, first_bad) {
        assert_eq!(
            e.to_string(),
            rules.validate(&input.batch[i]).unwrap_err().to_string()
        );
    }

    let hash = key_hash(&key);
    assert_eq!(hash.len(), 16);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
});
