//! Arbitrary bytes as every peer message type a node decodes (the first
//! byte picks the type): decoded to a value whose encoding is stable, or
//! refused; never a panic (`distcache::hostile::peer_message`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&kind, bytes)) = data.split_first() {
        distcache::hostile::peer_message(kind, bytes);
    }
});
