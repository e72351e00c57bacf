//! Arbitrary text as a node configuration, parsed and validated as
//! `distcache node --config` does: accepted or refused, never a panic
//! (`distcache::hostile::node_config`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        distcache::hostile::node_config(text);
    }
});
