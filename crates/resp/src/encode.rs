//! Frames to bytes, in the connection's protocol version.
//!
//! RESP3-only types are written down-converted for a RESP2 connection, the
//! way Redis 7 does: null as `$-1`, a double as a bulk string, a boolean
//! as `:1`/`:0`, a blob error as a simple error, a verbatim string or big
//! number as a bulk string, a map as a flat array of key, value, ..., a set
//! and a push as an array, and an attribute as just the value it decorates.

use crate::frame::{Frame, Version};

/// Appends `frame`, written for `version`, to `out`.
pub fn encode(frame: &Frame, version: Version, out: &mut Vec<u8>) {
    match frame {
        Frame::SimpleString(text) => line(out, b'+', text),
        Frame::Error(text) => line(out, b'-', text),
        Frame::Integer(value) => header(out, b':', *value),
        Frame::BulkString(bytes) => bulk(out, b'$', bytes),
        Frame::Null => match version {
            Version::Resp2 => out.extend_from_slice(b"$-1\r\n"),
            Version::Resp3 => out.extend_from_slice(b"_\r\n"),
        },
        Frame::NullArray => match version {
            Version::Resp2 => out.extend_from_slice(b"*-1\r\n"),
            Version::Resp3 => out.extend_from_slice(b"_\r\n"),
        },
        Frame::Array(items) => aggregate(out, b'*', items, version),
        Frame::Double(value) => {
            let text = format_double(*value);
            match version {
                Version::Resp2 => bulk(out, b'$', text.as_bytes()),
                Version::Resp3 => line(out, b',', text.as_bytes()),
            }
        }
        Frame::Boolean(value) => match version {
            Version::Resp2 => header(out, b':', i64::from(*value)),
            Version::Resp3 => out.extend_from_slice(if *value { b"#t\r\n" } else { b"#f\r\n" }),
        },
        Frame::BlobError(bytes) => match version {
            Version::Resp2 => line(out, b'-', bytes),
            Version::Resp3 => bulk(out, b'!', bytes),
        },
        Frame::Verbatim { format, text } => match version {
            Version::Resp2 => bulk(out, b'$', text),
            Version::Resp3 => {
                header(out, b'=', (text.len() + 4) as i64);
                out.extend_from_slice(format);
                out.push(b':');
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
        },
        Frame::BigNumber(digits) => match version {
            Version::Resp2 => bulk(out, b'$', digits),
            Version::Resp3 => line(out, b'(', digits),
        },
        Frame::Map(pairs) => {
            match version {
                Version::Resp2 => header(out, b'*', (pairs.len() * 2) as i64),
                Version::Resp3 => header(out, b'%', pairs.len() as i64),
            }
            for (key, value) in pairs {
                encode(key, version, out);
                encode(value, version, out);
            }
        }
        Frame::Set(items) => {
            let type_byte = if version == Version::Resp3 {
                b'~'
            } else {
                b'*'
            };
            aggregate(out, type_byte, items, version);
        }
        Frame::Push(items) => {
            let type_byte = if version == Version::Resp3 {
                b'>'
            } else {
                b'*'
            };
            aggregate(out, type_byte, items, version);
        }
        Frame::Attribute { attributes, value } => {
            if version == Version::Resp3 {
                header(out, b'|', attributes.len() as i64);
                for (key, attribute) in attributes {
                    encode(key, version, out);
                    encode(attribute, version, out);
                }
            }
            encode(value, version, out);
        }
    }
}

/// [`encode`] into a new buffer.
pub fn encode_to_vec(frame: &Frame, version: Version) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, version, &mut out);
    out
}

/// The text of a double as Redis 7.0 writes it (`addReplyDouble`):
/// `inf`, `-inf`, `nan`, else C's `%.17g`: 17 significant digits without
/// trailing zeros, in exponent form (`1e+20`, `1.0000000000000001e-05`)
/// when the decimal exponent is below -4 or at least 17. So `1.1` reads
/// `1.1000000000000001`, as redis-server 7.0 answers `ZSCORE`; every
/// value reads back exactly.
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // %e with 16 decimals is 17 significant digits, rounded as C rounds;
    // its exponent decides the form, as in C's %g.
    let scientific = format!("{value:.16e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("Rust's {:e} always writes an exponent");
    let exponent: i32 = exponent
        .parse()
        .expect("Rust's {:e} writes a decimal exponent");
    if !(-4..17).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            without_trailing_zeros(mantissa),
            exponent.unsigned_abs()
        )
    } else {
        let decimals = usize::try_from(16 - exponent).unwrap_or(0);
        without_trailing_zeros(&format!("{value:.decimals$}")).to_owned()
    }
}

/// `%g`'s trimming: trailing zeros of a fraction, then a bare point.
fn without_trailing_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

fn line(out: &mut Vec<u8>, type_byte: u8, text: &[u8]) {
    out.push(type_byte);
    // A line cannot hold a line break: replace CR and LF as Redis does.
    out.extend(text.iter().map(|&byte| {
        if byte == b'\r' || byte == b'\n' {
            b' '
        } else {
            byte
        }
    }));
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut Vec<u8>, type_byte: u8, value: i64) {
    out.push(type_byte);
    write_decimal(out, value);
    out.extend_from_slice(b"\r\n");
}

/// Appends the decimal digits of `value` without allocating.
pub(crate) fn write_decimal(out: &mut Vec<u8>, value: i64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[start..]);
}

fn bulk(out: &mut Vec<u8>, type_byte: u8, bytes: &[u8]) {
    header(out, type_byte, bytes.len() as i64);
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

fn aggregate(out: &mut Vec<u8>, type_byte: u8, items: &[Frame], version: Version) {
    header(out, type_byte, items.len() as i64);
    for item in items {
        encode(item, version, out);
    }
}
