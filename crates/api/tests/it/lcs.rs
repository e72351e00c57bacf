//! Redis's `LCS` over two keys of one store.

use std::collections::HashMap;

use api::lcs::{LCS_TABLE_BYTES_MAX, LcsAnswer, LcsMatch, longest_common_subsequence};
use api::{Error, HashOp, Limits, Op, Outcome, execute, read};
use cache::{Store, StoreConfig};
use proptest::prelude::*;

fn store() -> Store {
    Store::new(StoreConfig::new(1 << 24))
}

fn lcs(store: &mut Store, answer: LcsAnswer) -> Result<Outcome, Error> {
    let op = Op::Lcs {
        first: b"a".to_vec(),
        second: b"b".to_vec(),
        answer,
    };
    let by_read = read(store, &op, &Limits::default(), 1);
    let by_log = execute(store, &op, &Limits::default(), 1);
    assert_eq!(by_read, by_log, "LCS through the log and the read path");
    by_log
}

fn put(store: &mut Store, key: &str, value: &[u8]) {
    store
        .put(key.as_bytes(), value.to_vec(), None, 0)
        .expect("put");
}

/// The example of Redis's documentation: `ohmytext` and `mynewtext`.
#[test]
fn answers_as_redis_documents() {
    let mut store = store();
    put(&mut store, "a", b"ohmytext");
    put(&mut store, "b", b"mynewtext");
    assert_eq!(
        lcs(&mut store, LcsAnswer::Subsequence),
        Ok(Outcome::Value(Some(b"mytext".to_vec())))
    );
    assert_eq!(lcs(&mut store, LcsAnswer::Length), Ok(Outcome::Integer(6)));
    assert_eq!(
        lcs(&mut store, LcsAnswer::Matches),
        Ok(Outcome::LcsMatches {
            matches: vec![
                LcsMatch {
                    first: (4, 7),
                    second: (5, 8)
                },
                LcsMatch {
                    first: (2, 3),
                    second: (0, 1)
                },
            ],
            length: 6,
        })
    );
}

#[test]
fn absent_keys_are_empty_and_other_types_are_refused() {
    let mut store = store();
    assert_eq!(
        lcs(&mut store, LcsAnswer::Subsequence),
        Ok(Outcome::Value(Some(Vec::new())))
    );
    put(&mut store, "a", b"abc");
    assert_eq!(lcs(&mut store, LcsAnswer::Length), Ok(Outcome::Integer(0)));
    let hash = Op::Hash {
        key: b"b".to_vec(),
        op: HashOp::Set {
            pairs: vec![(b"f".to_vec(), b"v".to_vec())],
            only_new: false,
        },
    };
    execute(&mut store, &hash, &Limits::default(), 0).expect("hset");
    assert_eq!(lcs(&mut store, LcsAnswer::Length), Err(Error::WrongType));
}

#[test]
fn a_table_over_the_bound_is_refused_before_it_is_built() {
    let mut store = store();
    // 4 * 2049 * 4097 bytes > 32 MiB; 4 * 2049 * 4091 < 32 MiB.
    put(&mut store, "a", &[b'x'; 2048]);
    put(&mut store, "b", &[b'x'; 4096]);
    assert_eq!(
        lcs(&mut store, LcsAnswer::Length),
        Err(Error::TooLarge {
            what: "the LCS table".into(),
            size_bytes: 4 * 2049 * 4097,
            limit_bytes: LCS_TABLE_BYTES_MAX,
        })
    );
    put(&mut store, "b", &[b'x'; 4090]);
    assert_eq!(
        lcs(&mut store, LcsAnswer::Length),
        Ok(Outcome::Integer(2048))
    );
}

/// The LCS length by another method (memoised recursion from the front).
fn reference_length(
    first: &[u8],
    second: &[u8],
    memo: &mut HashMap<(usize, usize), usize>,
) -> usize {
    if first.is_empty() || second.is_empty() {
        return 0;
    }
    let key = (first.len(), second.len());
    if let Some(&length) = memo.get(&key) {
        return length;
    }
    let length = if first[0] == second[0] {
        1 + reference_length(&first[1..], &second[1..], memo)
    } else {
        reference_length(&first[1..], second, memo).max(reference_length(first, &second[1..], memo))
    };
    memo.insert(key, length);
    length
}

fn is_subsequence(short: &[u8], long: &[u8]) -> bool {
    let mut rest = long.iter();
    short.iter().all(|byte| rest.any(|other| other == byte))
}

proptest! {
    /// The subsequence is common to both, as long as the reference says,
    /// and the runs cover it exactly: each run's bytes are equal in both
    /// strings, runs come from the end backwards without overlap, and
    /// their lengths add up to the subsequence's.
    #[test]
    fn subsequence_and_runs_agree(
        first in proptest::collection::vec(0u8..4, 0..40),
        second in proptest::collection::vec(0u8..4, 0..40),
    ) {
        let (subsequence, matches) =
            longest_common_subsequence(&first, &second, true).expect("small");
        let expected = reference_length(&first, &second, &mut HashMap::new());
        prop_assert_eq!(subsequence.len(), expected);
        prop_assert!(is_subsequence(&subsequence, &first));
        prop_assert!(is_subsequence(&subsequence, &second));
        let mut covered = Vec::new();
        let mut previous: Option<LcsMatch> = None;
        for run in &matches {
            let (a, b) = (run.first, run.second);
            prop_assert_eq!(a.1 - a.0, b.1 - b.0);
            prop_assert_eq!(
                &first[a.0 as usize..=a.1 as usize],
                &second[b.0 as usize..=b.1 as usize]
            );
            if let Some(previous) = previous {
                prop_assert!(a.1 < previous.first.0 && b.1 < previous.second.0);
            }
            covered.splice(0..0, first[a.0 as usize..=a.1 as usize].iter().copied());
            previous = Some(*run);
        }
        prop_assert_eq!(covered, subsequence);
    }
}
