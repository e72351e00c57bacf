//! The incremental decoder: bytes in, whole frames out.
//!
//! The decoder consumes complete elements from the front of the caller's
//! buffer as soon as they are there and keeps the partly built aggregates on
//! a stack, so every byte is examined once however the input is split:
//! feeding a frame one byte at a time costs linear time, not quadratic. The
//! only thing re-read on a later call is the header line of a bulk string
//! whose payload has not fully arrived (a few bytes), and a line without
//! its CRLF is searched from where the previous search stopped.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::frame::Frame;
use crate::inline::split_inline;
use crate::limits::Limits;

/// What the decoder accepts at the top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A server reading requests: arrays of bulk strings, or inline
    /// commands (a line of words, as typed into telnet). Empty arrays and
    /// empty lines are skipped, as Redis does.
    Requests,
    /// A client reading replies: any RESP3 frame.
    Replies,
}

/// A partly received aggregate.
#[derive(Debug)]
struct Partial {
    kind: AggregateKind,
    remaining: usize,
    items: Vec<Frame>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggregateKind {
    Array,
    Set,
    Push,
    /// Holds 2n items: key, value, key, value...
    Map,
    /// Holds 2n + 1 items: the attribute pairs, then the decorated value.
    Attribute,
}

/// One element read from the front of the buffer.
enum Element {
    Value(Frame),
    Open(AggregateKind, usize),
    /// A request with no arguments (`*0`, `*-1`), skipped.
    EmptyRequest,
}

/// Pre-allocation cap for an aggregate: a header alone must not make the
/// decoder allocate for a million elements that may never come.
const PREALLOCATE_ITEMS_MAX: usize = 1024;

/// Decodes RESP frames from a byte buffer that grows as data arrives.
///
/// # Contract
///
/// Pass the same buffer on every call, only ever appending to it between
/// calls: the decoder removes what it has consumed from the front. After an
/// error the stream is unusable: close the connection (or call
/// [`Decoder::reset`] and start on fresh input).
#[derive(Debug)]
pub struct Decoder {
    mode: Mode,
    limits: Limits,
    stack: Vec<Partial>,
    /// Bytes of the current frame consumed so far (for `max_frame_bytes`).
    frame_bytes: usize,
    /// Where the search for the current line's end resumes.
    line_scan_from: usize,
    /// While a request argument over `max_argument_bytes` is being read
    /// past: how many of its payload bytes are still to drop (its CRLF
    /// follows them).
    skipping_bytes: Option<usize>,
    /// The length of the current request's first argument over
    /// `max_argument_bytes`; the request is refused once it is read.
    oversized_argument: Option<usize>,
}

impl Decoder {
    /// A decoder for a server: requests (arrays of bulk strings, inline).
    pub fn requests(limits: Limits) -> Decoder {
        Decoder::new(Mode::Requests, limits)
    }

    /// A decoder for a client: replies (any RESP3 frame).
    pub fn replies(limits: Limits) -> Decoder {
        Decoder::new(Mode::Replies, limits)
    }

    /// A decoder in the given mode.
    pub fn new(mode: Mode, limits: Limits) -> Decoder {
        Decoder {
            mode,
            limits,
            stack: Vec::new(),
            frame_bytes: 0,
            line_scan_from: 0,
            skipping_bytes: None,
            oversized_argument: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether part of a frame has been consumed and the rest is awaited.
    pub fn is_mid_frame(&self) -> bool {
        !self.stack.is_empty()
    }

    /// Forgets any partly decoded frame.
    pub fn reset(&mut self) {
        self.stack.clear();
        self.frame_bytes = 0;
        self.line_scan_from = 0;
        self.skipping_bytes = None;
        self.oversized_argument = None;
    }

    /// Decodes the next whole frame from the front of `buffer`, removing
    /// what it consumed. `Ok(None)` means more bytes are needed (what was
    /// complete has been consumed and is kept inside the decoder).
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] for input that breaks the protocol or a limit.
    /// After [`ProtocolError::ArgumentTooLarge`] (recoverable) the refused
    /// request has been consumed whole and decoding may go on.
    pub fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        loop {
            if self.stack.is_empty() && self.mode == Mode::Requests {
                match buffer.first() {
                    None => return Ok(None),
                    Some(b'*') => {}
                    Some(_) => match self.decode_inline(buffer)? {
                        InlineOutcome::Incomplete => return Ok(None),
                        InlineOutcome::Empty => continue,
                        InlineOutcome::Frame(frame) => return Ok(Some(frame)),
                    },
                }
            }
            let Some(element) = self.decode_element(buffer)? else {
                return Ok(None);
            };
            let mut completed = match element {
                Element::EmptyRequest => {
                    self.reset();
                    continue;
                }
                Element::Value(frame) => frame,
                Element::Open(kind, len) => {
                    if len == 0 {
                        finish(kind, Vec::new())
                    } else {
                        if self.stack.len() >= self.limits.max_depth {
                            return Err(ProtocolError::TooDeep {
                                limit: self.limits.max_depth,
                            });
                        }
                        self.stack.push(Partial {
                            kind,
                            remaining: len,
                            items: Vec::with_capacity(len.min(PREALLOCATE_ITEMS_MAX)),
                        });
                        continue;
                    }
                }
            };
            // Attach the finished value to its parent, closing every
            // aggregate it completes.
            loop {
                let Some(top) = self.stack.last_mut() else {
                    let oversized = self.oversized_argument;
                    self.reset();
                    if let Some(length_bytes) = oversized {
                        return Err(ProtocolError::ArgumentTooLarge {
                            length_bytes,
                            limit_bytes: self.limits.max_argument_bytes,
                        });
                    }
                    return Ok(Some(completed));
                };
                top.items.push(completed);
                top.remaining -= 1;
                if top.remaining > 0 {
                    break;
                }
                let Some(done) = self.stack.pop() else {
                    unreachable!("the stack's top was just read");
                };
                completed = finish(done.kind, done.items);
            }
        }
    }

    /// Reads one element (a scalar, or an aggregate's header) from the front.
    fn decode_element(&mut self, buffer: &mut BytesMut) -> Result<Option<Element>, ProtocolError> {
        if let Some(remaining_bytes) = self.skipping_bytes {
            return self.skip_payload(buffer, remaining_bytes);
        }
        let Some(&type_byte) = buffer.first() else {
            return Ok(None);
        };
        if self.mode == Mode::Requests && !self.stack.is_empty() && type_byte != b'$' {
            return Err(ProtocolError::ExpectedBulk(type_byte));
        }
        if !is_type_byte(type_byte) {
            return Err(ProtocolError::UnknownType(type_byte));
        }
        let Some(cr) = self.find_line_end(buffer, type_byte)? else {
            return Ok(None);
        };
        let line = &buffer[1..cr];
        let header_bytes = cr + 2;
        let element = match type_byte {
            b'$' | b'!' | b'=' => {
                if line == b"-1" && type_byte == b'$' {
                    Element::Value(Frame::Null)
                } else {
                    if line.first() == Some(&b'?') {
                        return Err(ProtocolError::StreamedNotSupported);
                    }
                    let len = parse_length(line, self.limits.max_bulk_bytes)
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    if self.mode == Mode::Requests && len > self.limits.max_argument_bytes {
                        // Within the protocol's bound but over the value
                        // limit: read past it (holding none of it) and
                        // refuse the request once it is whole.
                        self.check_frame_size(header_bytes)?;
                        self.consume(buffer, header_bytes);
                        self.oversized_argument.get_or_insert(len);
                        return self.skip_payload(buffer, len);
                    }
                    let total = header_bytes + len + 2;
                    self.check_frame_size(total)?;
                    if buffer.len() < total {
                        // Come back to this header when the payload is in.
                        self.line_scan_from = cr;
                        return Ok(None);
                    }
                    if &buffer[header_bytes + len..total] != b"\r\n" {
                        return Err(ProtocolError::ExpectedCrlf);
                    }
                    self.consume(buffer, header_bytes);
                    let payload = buffer.split_to(len).freeze();
                    self.consume(buffer, 2);
                    return Ok(Some(Element::Value(bulk_value(type_byte, payload)?)));
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                if line.first() == Some(&b'?') {
                    return Err(ProtocolError::StreamedNotSupported);
                }
                if self.mode == Mode::Requests && line.first() == Some(&b'-') {
                    // Redis ignores a request `*-1` (or any negative count).
                    if parse_i64(line).is_none() {
                        return Err(ProtocolError::InvalidMultibulkLength);
                    }
                    Element::EmptyRequest
                } else if line == b"-1" && type_byte == b'*' {
                    Element::Value(Frame::NullArray)
                } else {
                    let len = parse_length(line, self.limits.max_aggregate_len)
                        .ok_or(ProtocolError::InvalidMultibulkLength)?;
                    match type_byte {
                        _ if self.mode == Mode::Requests && len == 0 => Element::EmptyRequest,
                        b'*' => Element::Open(AggregateKind::Array, len),
                        b'~' => Element::Open(AggregateKind::Set, len),
                        b'>' => Element::Open(AggregateKind::Push, len),
                        b'%' => Element::Open(AggregateKind::Map, len * 2),
                        _ => Element::Open(AggregateKind::Attribute, len * 2 + 1),
                    }
                }
            }
            b'+' => Element::Value(Frame::SimpleString(Bytes::copy_from_slice(line))),
            b'-' => Element::Value(Frame::Error(Bytes::copy_from_slice(line))),
            b':' => Element::Value(Frame::Integer(
                parse_i64(line).ok_or(ProtocolError::InvalidInteger)?,
            )),
            b',' => Element::Value(Frame::Double(
                parse_double(line).ok_or(ProtocolError::InvalidDouble)?,
            )),
            b'#' => Element::Value(Frame::Boolean(match line {
                b"t" => true,
                b"f" => false,
                _ => return Err(ProtocolError::InvalidBoolean),
            })),
            b'_' => {
                if !line.is_empty() {
                    return Err(ProtocolError::InvalidNull);
                }
                Element::Value(Frame::Null)
            }
            b'(' => {
                if !is_big_number(line) {
                    return Err(ProtocolError::InvalidBigNumber);
                }
                Element::Value(Frame::BigNumber(Bytes::copy_from_slice(line)))
            }
            other => return Err(ProtocolError::UnknownType(other)),
        };
        self.check_frame_size(header_bytes)?;
        self.consume(buffer, header_bytes);
        Ok(Some(element))
    }

    /// The index of the CR ending the line at the front of `buffer`, or
    /// `None` while the line is incomplete.
    fn find_line_end(
        &mut self,
        buffer: &BytesMut,
        type_byte: u8,
    ) -> Result<Option<usize>, ProtocolError> {
        let from = self.line_scan_from.max(1);
        match memchr::memchr(b'\r', &buffer[from.min(buffer.len())..]) {
            Some(offset) => {
                let cr = from + offset;
                if cr > self.limits.max_line_bytes {
                    return Err(line_too_long(type_byte, self.limits.max_line_bytes));
                }
                match buffer.get(cr + 1) {
                    None => {
                        self.line_scan_from = cr;
                        Ok(None)
                    }
                    Some(b'\n') => Ok(Some(cr)),
                    Some(_) => Err(ProtocolError::ExpectedCrlf),
                }
            }
            None => {
                if buffer.len() > self.limits.max_line_bytes {
                    return Err(line_too_long(type_byte, self.limits.max_line_bytes));
                }
                self.line_scan_from = buffer.len();
                Ok(None)
            }
        }
    }

    /// Reads an inline command: one line, split into words.
    fn decode_inline(&mut self, buffer: &mut BytesMut) -> Result<InlineOutcome, ProtocolError> {
        let from = self.line_scan_from.min(buffer.len());
        let Some(offset) = memchr::memchr(b'\n', &buffer[from..]) else {
            if buffer.len() > self.limits.max_line_bytes {
                return Err(ProtocolError::TooBigInlineRequest);
            }
            self.line_scan_from = buffer.len();
            return Ok(InlineOutcome::Incomplete);
        };
        let newline = from + offset;
        if newline > self.limits.max_line_bytes {
            return Err(ProtocolError::TooBigInlineRequest);
        }
        let line = buffer[..newline]
            .strip_suffix(b"\r")
            .unwrap_or(&buffer[..newline]);
        let words = split_inline(line)?;
        self.consume(buffer, newline + 1);
        self.reset();
        if words.is_empty() {
            return Ok(InlineOutcome::Empty);
        }
        Ok(InlineOutcome::Frame(Frame::Array(
            words
                .into_iter()
                .map(|word| Frame::BulkString(Bytes::from(word)))
                .collect(),
        )))
    }

    /// Drops what has arrived of an oversized argument's payload (and
    /// then its CRLF); once all of it is gone, the argument reads as an
    /// empty bulk string, a placeholder in a request that will be refused.
    fn skip_payload(
        &mut self,
        buffer: &mut BytesMut,
        remaining_bytes: usize,
    ) -> Result<Option<Element>, ProtocolError> {
        let dropped_bytes = remaining_bytes.min(buffer.len());
        // Not counted in frame_bytes: none of it is held.
        buffer.advance(dropped_bytes);
        let remaining_bytes = remaining_bytes - dropped_bytes;
        self.skipping_bytes = Some(remaining_bytes);
        if remaining_bytes > 0 || buffer.len() < 2 {
            return Ok(None);
        }
        if &buffer[..2] != b"\r\n" {
            return Err(ProtocolError::ExpectedCrlf);
        }
        self.consume(buffer, 2);
        self.skipping_bytes = None;
        Ok(Some(Element::Value(Frame::BulkString(Bytes::new()))))
    }

    fn check_frame_size(&self, more_bytes: usize) -> Result<(), ProtocolError> {
        if self.frame_bytes.saturating_add(more_bytes) > self.limits.max_frame_bytes {
            return Err(ProtocolError::FrameTooLarge {
                limit: self.limits.max_frame_bytes,
            });
        }
        Ok(())
    }

    fn consume(&mut self, buffer: &mut BytesMut, bytes: usize) {
        buffer.advance(bytes);
        self.frame_bytes += bytes;
        self.line_scan_from = 0;
    }
}

enum InlineOutcome {
    Incomplete,
    Empty,
    Frame(Frame),
}

fn is_type_byte(byte: u8) -> bool {
    matches!(
        byte,
        b'+' | b'-'
            | b':'
            | b'$'
            | b'*'
            | b'_'
            | b','
            | b'#'
            | b'!'
            | b'='
            | b'('
            | b'%'
            | b'~'
            | b'|'
            | b'>'
    )
}

fn line_too_long(type_byte: u8, limit: usize) -> ProtocolError {
    match type_byte {
        b'*' => ProtocolError::TooBigMultibulkCount,
        b'$' => ProtocolError::TooBigBulkCount,
        _ => ProtocolError::LineTooLong { limit },
    }
}

fn bulk_value(type_byte: u8, payload: Bytes) -> Result<Frame, ProtocolError> {
    Ok(match type_byte {
        b'$' => Frame::BulkString(payload),
        b'!' => Frame::BlobError(payload),
        _ => {
            if payload.len() < 4 || payload[3] != b':' {
                return Err(ProtocolError::InvalidVerbatim);
            }
            let format = [payload[0], payload[1], payload[2]];
            Frame::Verbatim {
                format,
                text: payload.slice(4..),
            }
        }
    })
}

fn finish(kind: AggregateKind, items: Vec<Frame>) -> Frame {
    match kind {
        AggregateKind::Array => Frame::Array(items),
        AggregateKind::Set => Frame::Set(items),
        AggregateKind::Push => Frame::Push(items),
        AggregateKind::Map => Frame::Map(pairs(items)),
        AggregateKind::Attribute => {
            let mut items = items;
            let value = items.pop().unwrap_or(Frame::Null);
            Frame::Attribute {
                attributes: pairs(items),
                value: Box::new(value),
            }
        }
    }
}

fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
    let mut result = Vec::with_capacity(items.len() / 2);
    let mut iter = items.into_iter();
    while let (Some(key), Some(value)) = (iter.next(), iter.next()) {
        result.push((key, value));
    }
    result
}

/// A non-negative decimal length no larger than `max`.
fn parse_length(line: &[u8], max: usize) -> Option<usize> {
    let value = parse_i64(line)?;
    let value = usize::try_from(value).ok()?;
    (value <= max).then_some(value)
}

/// A strict signed decimal: optional `-` (or `+`), then at least one digit,
/// nothing else, no overflow.
pub(crate) fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(digit - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

/// A RESP3 double: `inf`, `-inf`, `nan`, or a decimal with optional
/// fraction and exponent.
pub(crate) fn parse_double(text: &[u8]) -> Option<f64> {
    match text {
        b"inf" | b"+inf" => return Some(f64::INFINITY),
        b"-inf" => return Some(f64::NEG_INFINITY),
        b"nan" | b"-nan" => return Some(f64::NAN),
        _ => {}
    }
    let allowed =
        |byte: &u8| byte.is_ascii_digit() || matches!(byte, b'+' | b'-' | b'.' | b'e' | b'E');
    if text.is_empty() || !text.iter().all(allowed) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn is_big_number(text: &[u8]) -> bool {
    let digits = match text.first() {
        Some(b'-' | b'+') => &text[1..],
        _ => text,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}
