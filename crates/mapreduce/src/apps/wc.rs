//! Word count.
//!
//! The lab's map emits `(word, "1")` for every occurrence and its reduce
//! counts the values. Ours combines inside map, as the MapReduce paper's
//! combiner does: one `(word, n)` per distinct word of the input, and
//! reduce sums. The output is the same (`word total`), but intermediate
//! data shrinks from one pair per word of text to one per distinct word,
//! which is what lets a few hundred MB be counted without gigabytes of
//! pairs in memory.

use std::collections::BTreeMap;

use super::AppError;
use crate::KeyValue;

/// The words of `text`: maximal runs of letters, where a letter is a char
/// with Unicode's `Alphabetic` property (`char::is_alphabetic`). That is
/// the general category L (what Go's `unicode.IsLetter` tests) plus letter
/// numbers such as `Ⅻ` and the combining vowel signs of some scripts, so a
/// word in Devanagari is not cut at every vowel sign. The sequential and
/// the distributed runs share this function, so they always agree.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|character: char| !character.is_alphabetic())
        .filter(|word| !word.is_empty())
}

pub(super) fn map(contents: &str) -> Vec<KeyValue> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for word in words(contents) {
        *counts.entry(word).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .map(|(word, count)| KeyValue::new(word, count.to_string()))
        .collect()
}

pub(super) fn reduce(key: &str, values: &[String]) -> Result<String, AppError> {
    let mut total: u64 = 0;
    for value in values {
        let count: u64 = value.parse().map_err(|_| AppError::Malformed {
            key: key.to_string(),
            value: value.clone(),
        })?;
        total = total
            .checked_add(count)
            .ok_or_else(|| AppError::Malformed {
                key: key.to_string(),
                value: format!("a total over {}", u64::MAX),
            })?;
    }
    Ok(total.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_maximal_runs_of_letters() {
        let found: Vec<&str> = words("It's 42 o'clock—naïve Ωmega, 東京!x").collect();
        assert_eq!(
            found,
            ["It", "s", "o", "clock", "naïve", "Ωmega", "東京", "x"]
        );
        assert_eq!(words("  12 -- ").count(), 0);
    }

    #[test]
    fn map_combines_and_reduce_sums() {
        assert_eq!(
            map("b a b"),
            vec![KeyValue::new("a", "1"), KeyValue::new("b", "2")]
        );
        assert_eq!(reduce("b", &["2".into(), "3".into()]).unwrap(), "5");
        assert!(matches!(
            reduce("b", &["two".into()]),
            Err(AppError::Malformed { .. })
        ));
    }
}
