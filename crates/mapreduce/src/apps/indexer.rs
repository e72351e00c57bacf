//! An inverted index: for each word, the documents that contain it.

use std::collections::BTreeSet;

use super::wc::words;
use crate::KeyValue;

pub(super) fn map(document: &str, contents: &str) -> Vec<KeyValue> {
    // A BTreeSet, not a hash set: the same input always maps to the same
    // sequence of pairs.
    let distinct: BTreeSet<&str> = words(contents).collect();
    distinct
        .into_iter()
        .map(|word| KeyValue::new(word, document))
        .collect()
}

pub(super) fn reduce(values: &[String]) -> String {
    let mut documents: Vec<&str> = values.iter().map(String::as_str).collect();
    documents.sort_unstable();
    format!("{} {}", documents.len(), documents.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pair_per_distinct_word_and_sorted_documents() {
        let pairs = map("doc", "b a b");
        assert_eq!(
            pairs,
            vec![KeyValue::new("a", "doc"), KeyValue::new("b", "doc")]
        );
        assert_eq!(reduce(&["y".into(), "x".into()]), "2 x,y");
    }
}
