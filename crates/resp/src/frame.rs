//! The value that travels on the wire: one RESP3 frame (RESP2 is a subset).

use bytes::Bytes;

/// Which protocol a connection speaks: RESP2 (the default) or RESP3
/// (after `HELLO 3`). It decides how [`encode`](crate::encode) writes the
/// RESP3-only types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// RESP2: simple strings, errors, integers, bulk strings, arrays.
    #[default]
    Resp2,
    /// RESP3: RESP2 plus null, double, boolean, blob error, verbatim
    /// string, big number, map, set, attribute and push.
    Resp3,
}

/// One RESP frame.
///
/// Text-like payloads are bytes: Redis does not require UTF-8 anywhere.
/// Simple strings and errors are one line, so [`encode`](crate::encode)
/// replaces any CR or LF in them with a space (as Redis does for errors).
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+OK`
    SimpleString(Bytes),
    /// `-ERR message`: the first word is the error's code by convention.
    Error(Bytes),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`
    BulkString(Bytes),
    /// RESP3 `_`; RESP2's null bulk string `$-1` decodes to this too.
    Null,
    /// RESP2's null array `*-1`; in RESP3 it is written as `_`.
    NullArray,
    /// `*2\r\n...`
    Array(Vec<Frame>),
    /// RESP3 `,3.14`
    Double(f64),
    /// RESP3 `#t` / `#f`
    Boolean(bool),
    /// RESP3 `!len\r\n...`: an error whose message may hold any bytes.
    BlobError(Bytes),
    /// RESP3 `=len\r\ntxt:...`: text with a three-byte format (`txt`, `mkd`).
    Verbatim {
        /// The format, e.g. `*b"txt"`.
        format: [u8; 3],
        /// The text after the `xxx:` prefix.
        text: Bytes,
    },
    /// RESP3 `(`: a signed decimal integer of any size, as its digits.
    BigNumber(Bytes),
    /// RESP3 `%`: key-value pairs in order.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~`: unordered distinct elements (kept in wire order).
    Set(Vec<Frame>),
    /// RESP3 `|`: out-of-band attributes that decorate the next value.
    Attribute {
        /// The attribute pairs.
        attributes: Vec<(Frame, Frame)>,
        /// The value they decorate.
        value: Box<Frame>,
    },
    /// RESP3 `>`: an out-of-band message (pub/sub, invalidation).
    Push(Vec<Frame>),
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::SimpleString(Bytes::from_static(b"OK"))
    }

    /// A simple string from text.
    pub fn simple(text: &str) -> Frame {
        Frame::SimpleString(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// An error from its full text, code first (`"ERR syntax error"`).
    pub fn error(text: &str) -> Frame {
        Frame::Error(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// A bulk string copied from bytes.
    pub fn bulk(bytes: impl AsRef<[u8]>) -> Frame {
        Frame::BulkString(Bytes::copy_from_slice(bytes.as_ref()))
    }

    /// An array of bulk strings: how clients send commands.
    pub fn command<I, A>(args: I) -> Frame
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        Frame::Array(args.into_iter().map(Frame::bulk).collect())
    }

    /// For a request (an array of bulk strings), the arguments; `None` for
    /// any other frame.
    pub fn into_args(self) -> Option<Vec<Bytes>> {
        let Frame::Array(items) = self else {
            return None;
        };
        items
            .into_iter()
            .map(|item| match item {
                Frame::BulkString(bytes) => Some(bytes),
                _ => None,
            })
            .collect()
    }
}
