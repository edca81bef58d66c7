//! Any bytes: `Header::parse` and `Envelope::parse` return a result, never panic, and what
//! they report is consistent with the input.
#![no_main]

use lexicache_serde::{Envelope, Flags, Header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = Header::parse(data);
    if let Ok(env) = Envelope::parse(data) {
        assert_eq!(
            Ok(env.header()),
            header.as_ref().map(|h| *h).map_err(|_| ())
        );
        assert_eq!(env.len(), data.len());
        assert!(env.payload_len() <= data.len());
        let flags = env.header().flags();
        assert_eq!(
            env.key_id().is_some(),
            flags.contains(Flags::SIGNED) || flags.contains(Flags::ENCRYPTED)
        );
        let _ = env.to_string();
        assert_eq!(&data[..5], &env.header().to_bytes());
    }
});
