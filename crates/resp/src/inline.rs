//! Inline commands: `SET key "hello world"` typed on a raw connection.
//!
//! The rules are Redis's (`sdssplitargs`): words split on whitespace;
//! `"..."` takes the escapes `\n \r \t \b \a \\ \"` and `\xHH`; `'...'`
//! takes only `\'`; a closing quote must end the word; a quote opened
//! inside a word continues that word.

use crate::error::ProtocolError;

/// Splits one inline line (without its line ending) into words.
///
/// # Errors
///
/// [`ProtocolError::UnbalancedQuotes`] when a quote is not closed or is
/// closed in the middle of a word.
pub fn split_inline(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut words = Vec::new();
    let mut position = 0;
    loop {
        while position < line.len() && is_space(line[position]) {
            position += 1;
        }
        if position >= line.len() {
            return Ok(words);
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        loop {
            let Some(&byte) = line.get(position) else {
                if quote.is_some() {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                break;
            };
            match quote {
                Some(b'"') => {
                    if byte == b'\\'
                        && position + 3 < line.len()
                        && line[position + 1] == b'x'
                        && let (Some(high), Some(low)) =
                            (hex_value(line[position + 2]), hex_value(line[position + 3]))
                    {
                        word.push(high * 16 + low);
                        position += 4;
                        continue;
                    }
                    if byte == b'\\' && position + 1 < line.len() {
                        word.push(match line[position + 1] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        position += 2;
                        continue;
                    }
                    if byte == b'"' {
                        // The closing quote must end the word.
                        if line.get(position + 1).is_some_and(|next| !is_space(*next)) {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                        position += 1;
                        break;
                    }
                    word.push(byte);
                }
                Some(_) => {
                    if byte == b'\\' && line.get(position + 1) == Some(&b'\'') {
                        word.push(b'\'');
                        position += 2;
                        continue;
                    }
                    if byte == b'\'' {
                        if line.get(position + 1).is_some_and(|next| !is_space(*next)) {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                        position += 1;
                        break;
                    }
                    word.push(byte);
                }
                None => match byte {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        position += 1;
                        break;
                    }
                    b'"' | b'\'' => quote = Some(byte),
                    _ => word.push(byte),
                },
            }
            position += 1;
        }
        words.push(word);
    }
}

/// C's `isspace` in the "C" locale.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}
