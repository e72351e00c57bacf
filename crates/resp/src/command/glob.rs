//! Redis's glob-style pattern matching (`KEYS`, `SCAN MATCH`, `CONFIG GET`).
//!
//! `*` any run of bytes, `?` one byte, `[abc]` one of, `[^abc]` none of,
//! `[a-z]` a range (either order), `\x` the byte `x` literally. An
//! unclosed `[` matches the rest of the class as written, as in Redis.

/// Whether `text` matches `pattern` (case-sensitive).
///
/// Runs in O(pattern × text) time at worst: a `*` remembers one restart
/// point instead of recursing, so hostile patterns cannot blow up.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let mut pattern_at = 0;
    let mut text_at = 0;
    // Where to resume after the last `*`: (pattern after it, text position).
    let mut star: Option<(usize, usize)> = None;
    while text_at < text.len() {
        if let Some(consumed) = match_one(pattern, pattern_at, text[text_at]) {
            pattern_at += consumed;
            text_at += 1;
            continue;
        }
        if pattern.get(pattern_at) == Some(&b'*') {
            while pattern.get(pattern_at) == Some(&b'*') {
                pattern_at += 1;
            }
            star = Some((pattern_at, text_at));
            continue;
        }
        match star {
            Some((after_star, start)) => {
                pattern_at = after_star;
                text_at = start + 1;
                star = Some((after_star, start + 1));
            }
            None => return false,
        }
    }
    pattern[pattern_at.min(pattern.len())..]
        .iter()
        .all(|&byte| byte == b'*')
}

/// If the pattern element at `at` (not `*`) matches `byte`, how many
/// pattern bytes it spans.
fn match_one(pattern: &[u8], at: usize, byte: u8) -> Option<usize> {
    match *pattern.get(at)? {
        b'*' => None,
        b'?' => Some(1),
        b'\\' if at + 1 < pattern.len() => (pattern[at + 1] == byte).then_some(2),
        b'[' => match_class(pattern, at, byte),
        literal => (literal == byte).then_some(1),
    }
}

fn match_class(pattern: &[u8], open: usize, byte: u8) -> Option<usize> {
    let mut at = open + 1;
    let negate = pattern.get(at) == Some(&b'^');
    if negate {
        at += 1;
    }
    let mut matched = false;
    while at < pattern.len() && pattern[at] != b']' {
        if pattern[at] == b'\\' && at + 1 < pattern.len() {
            matched |= pattern[at + 1] == byte;
            at += 2;
        } else if at + 2 < pattern.len() && pattern[at + 1] == b'-' && pattern[at + 2] != b']' {
            let (low, high) = if pattern[at] <= pattern[at + 2] {
                (pattern[at], pattern[at + 2])
            } else {
                (pattern[at + 2], pattern[at])
            };
            matched |= (low..=high).contains(&byte);
            at += 3;
        } else {
            matched |= pattern[at] == byte;
            at += 1;
        }
    }
    // `at` is on the `]`, or past the end for an unclosed class.
    let span = at.min(pattern.len() - 1) - open + 1;
    (matched != negate).then_some(span)
}
