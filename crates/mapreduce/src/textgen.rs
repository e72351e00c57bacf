//! Deterministic text for tests and benchmarks: the suites need inputs like
//! the lab's Project Gutenberg books without shipping books.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Words drawn with a skewed (roughly Zipf-like) frequency: common words
/// early in the list are picked far more often. Some are not ASCII, so the
/// word splitter's Unicode handling is exercised.
const VOCABULARY: &[&str] = &[
    "the",
    "and",
    "of",
    "to",
    "a",
    "in",
    "that",
    "he",
    "was",
    "it",
    "his",
    "her",
    "with",
    "as",
    "had",
    "you",
    "for",
    "she",
    "not",
    "but",
    "said",
    "on",
    "at",
    "him",
    "be",
    "all",
    "have",
    "which",
    "from",
    "they",
    "Sherlock",
    "Holmes",
    "Watson",
    "Tom",
    "Sawyer",
    "Huck",
    "Jim",
    "Gregor",
    "Samsa",
    "Dorian",
    "Gray",
    "Victor",
    "monster",
    "Ernest",
    "Gwendolen",
    "Grimm",
    "wolf",
    "river",
    "raft",
    "window",
    "street",
    "evening",
    "ghost",
    "naïve",
    "café",
    "Ærøskøbing",
    "Straße",
    "Ωmega",
    "東京",
    "İstanbul",
    "señor",
    "Zürich",
    "fiancée",
    "œuvre",
];

/// Punctuation and digits between words: never letters, so they split words.
const SEPARATORS: &[&str] = &[
    " ", " ", " ", " ", " ", " ", ", ", ". ", "; ", "!\n", "?\n", "\n", " -- ", " '", "' ",
    " 1887 ", " (", ") ", "\n\n",
];

/// About `size_bytes` bytes (at least that many, at most one word more) of
/// text, the same for the same `seed`.
pub fn generate_text(seed: u64, size_bytes: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut text = String::with_capacity(size_bytes + 64);
    // Bounded: every round appends at least one byte.
    while text.len() < size_bytes {
        // Squaring a uniform draw skews towards the front of the list.
        let uniform: f64 = rng.r#gen();
        let index = ((uniform * uniform) * VOCABULARY.len() as f64) as usize;
        text.push_str(VOCABULARY[index.min(VOCABULARY.len() - 1)]);
        text.push_str(SEPARATORS[rng.gen_range(0..SEPARATORS.len())]);
    }
    text
}

/// The lab's eight input names (its inputs are these Project Gutenberg
/// books; ours are generated). `early_exit` relies on two of them holding
/// `sherlock` and `tom`.
pub const LAB_INPUT_NAMES: [&str; 8] = [
    "pg-being_ernest.txt",
    "pg-dorian_gray.txt",
    "pg-frankenstein.txt",
    "pg-grimm.txt",
    "pg-huckleberry_finn.txt",
    "pg-metamorphosis.txt",
    "pg-sherlock_holmes.txt",
    "pg-tom_sawyer.txt",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_text_and_about_the_size_asked() {
        let text = generate_text(7, 10_000);
        assert_eq!(text, generate_text(7, 10_000));
        assert_ne!(text, generate_text(8, 10_000));
        assert!(
            text.len() >= 10_000 && text.len() < 10_100,
            "{}",
            text.len()
        );
    }
}
