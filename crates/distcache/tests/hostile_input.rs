//! Hostile input in the gate (issue 24): the checks the fuzz targets run
//! (`distcache::hostile`; `scripts/fuzz.sh` runs them under cargo-fuzz for
//! as long as one likes), here over generated and mutated inputs on the
//! stable compiler. Every peer message type a node decodes, and the node
//! configuration parser, must answer a value or an error, never panic.

#![cfg(not(madsim))]

use std::path::Path;

use distcache::hostile::{Outcome, PEER_MESSAGE_TYPES, node_config, peer_message};
use proptest::prelude::*;

/// A small deterministic generator (SplitMix64), so the corpus below is the
/// same on every run.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Inputs each kind accepts: every prefix of random strings is tried,
/// since a message is the whole input (trailing bytes are refused).
fn accepted_corpus(kind: u8, strings: usize) -> Vec<Vec<u8>> {
    let mut random = Bytes(u64::from(kind) + 1);
    let mut corpus = Vec::new();
    for _ in 0..strings {
        // Small numbers first: varints and enum tags below 251 are one
        // byte, so such strings decode more often.
        let mut bytes = random.fill(96);
        for byte in bytes.iter_mut().step_by(2) {
            *byte %= 4;
        }
        for len in 0..=bytes.len() {
            if peer_message(kind, &bytes[..len]) == Outcome::Accepted {
                corpus.push(bytes[..len].to_vec());
            }
        }
    }
    corpus
}

#[test]
fn every_peer_message_type_decodes_or_refuses_and_mutations_never_panic() {
    for kind in 0..PEER_MESSAGE_TYPES.len() as u8 {
        let corpus = accepted_corpus(kind, 300);
        // The inputs reach the decoder: some decode (else this test would
        // prove nothing for this type).
        assert!(
            !corpus.is_empty(),
            "no input decoded as {}",
            PEER_MESSAGE_TYPES[kind as usize]
        );
        for input in corpus.iter().take(50) {
            // Every single-byte change, a cut at every length, and bytes
            // added at the end: decoded or refused, never a panic.
            for position in 0..input.len() {
                for value in [0u8, 1, 0x7f, 0xfb, 0xfc, 0xfd, 0xfe, 0xff] {
                    let mut mutated = input.clone();
                    mutated[position] = value;
                    peer_message(kind, &mutated);
                }
                peer_message(kind, &input[..position]);
            }
            let mut longer = input.clone();
            longer.extend_from_slice(&[0xff; 9]);
            assert_eq!(peer_message(kind, &longer), Outcome::Refused);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_as_any_peer_message_never_panic(
        kind in 0u8..12,
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        peer_message(kind, &bytes);
    }
}

fn example_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster/node1.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn the_example_configuration_is_accepted() {
    assert_eq!(node_config(&example_config()), Outcome::Accepted);
}

/// Values that probe the parser's and the validation's bounds.
const EXTREMES: [&str; 10] = [
    "0",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "1e309",
    "\"\"",
    "\"\\u0000\"",
    "[]",
    "{}",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The example configuration with one line's value replaced by an
    /// extreme, or one line dropped: parsed and validated, or refused.
    #[test]
    fn mutated_configurations_never_panic(
        line in 0usize..200,
        extreme in 0usize..EXTREMES.len(),
        drop_line in any::<bool>(),
    ) {
        let text = example_config();
        let lines: Vec<&str> = text.lines().collect();
        let line = line % lines.len();
        let mutated: Vec<String> = lines
            .iter()
            .enumerate()
            .filter(|(index, _)| !(drop_line && *index == line))
            .map(|(index, text)| match text.split_once('=') {
                Some((key, _)) if index == line => format!("{key}= {}", EXTREMES[extreme]),
                _ => (*text).to_string(),
            })
            .collect();
        node_config(&mutated.join("\n"));
    }

    #[test]
    fn arbitrary_text_as_a_configuration_never_panics(text in "\\PC{0,400}") {
        node_config(&text);
    }
}
