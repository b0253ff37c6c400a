//! The body read from a buffer, one value at a time, by serde_json parsing from memory.
//!
//! serde_json reading a `std::io::Read` takes every byte through the reader one at a time, which
//! costs far more than parsing the same bytes from a slice. So the top-level object's punctuation
//! is read here, and each of its keys and values, and each group of `data`, is handed to
//! serde_json as a slice. serde_json still parses and checks every byte, so the body is exactly
//! as strict as one `from_reader` parse of it.
//!
//! - A group is parsed straight from the read buffer ([`Scanner::object`]): serde_json's parse
//!   finds where it ends. One that goes on past the buffered bytes is parsed again once more are
//!   read, in a buffer that grows up to [`PIECE_LIMIT`].
//! - Any other value, and a group that is longer than the limit or not valid, is first delimited
//!   by [`Walk`] (brackets, strings and escapes only, nothing decoded) and collected
//!   ([`Scanner::value`]); past the limit it is not collected: serde_json reads it through
//!   [`Rest`], first the bytes collected so far, then the stream up to the value's end. Memory
//!   stays bounded whatever one value holds.
//!
//! Errors carry the position in the whole body, as serde_json gives it (line from 1, column as
//! the bytes read on that line): a value's own error is moved by where the value started.

use std::fmt;
use std::io::{self, Read};

use serde::de::{DeserializeSeed, IgnoredAny};

/// Read buffer between the byte stream and the scanner.
const READ_BUFFER: usize = 64 * 1024;

/// The longest value collected before serde_json parses it; longer ones are parsed as they stream.
pub(super) const PIECE_LIMIT: usize = 1024 * 1024;

/// A body that could not be read: the stream failed, or its bytes are not the answer expected.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    Invalid {
        message: String,
        line: usize,
        column: usize,
        /// The body ended before its value did.
        eof: bool,
    },
}

impl ReadError {
    #[cfg(test)]
    pub(crate) fn is_io(&self) -> bool {
        matches!(self, ReadError::Io(_))
    }

    pub(crate) fn is_eof(&self) -> bool {
        matches!(self, ReadError::Invalid { eof: true, .. })
    }

    /// serde_json's error of a value that started at (`line`, `column`) of the body.
    fn moved(e: serde_json::Error, line: usize, column: usize) -> ReadError {
        use serde_json::error::Category;
        if e.classify() == Category::Io {
            return ReadError::Io(io::Error::from(e));
        }
        // serde_json appends the position to its message; the body's position replaces it.
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
        let (line, column) = match e.line() {
            0 => (line, column),
            1 => (line, column + e.column()),
            n => (line + n - 1, e.column()),
        };
        ReadError::Invalid {
            message,
            line,
            column,
            eof: e.classify() == Category::Eof,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ReadError::Io(e) => e.fmt(f),
            ReadError::Invalid {
                message,
                line,
                column,
                ..
            } => write!(f, "{message} at line {line} column {column}"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            ReadError::Invalid { .. } => None,
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Where one JSON value ends: the structure seen so far of a value that may span reads.
#[derive(Default)]
struct Walk {
    started: bool,
    /// A number, a literal or anything else that is not a string, an object or an array.
    scalar: bool,
    string: bool,
    escape: bool,
    depth: usize,
    done: bool,
}

impl Walk {
    /// How many bytes of `bytes` belong to the value; sets `done` when the value ends in them.
    /// Nothing is checked: serde_json parses the value and finds what is wrong with it. For a
    /// valid body the end found here is exactly where serde_json's parse of the value ends.
    fn step(&mut self, bytes: &[u8]) -> usize {
        let mut i = 0;
        if !self.started {
            self.started = true;
            match bytes.first() {
                Some(b'"') => self.string = true,
                Some(b'{' | b'[') => self.depth = 1,
                _ => self.scalar = true,
            }
            if !self.scalar {
                i = 1;
            } else if bytes.first().is_some_and(|&b| ends_scalar(b)) {
                // Not a value at all (`,` where one was expected): serde_json says so.
                self.done = true;
                return 1;
            }
        }
        if self.scalar {
            return match bytes[i..].iter().position(|&b| ends_scalar(b)) {
                Some(n) => {
                    self.done = true;
                    i + n
                }
                None => bytes.len(),
            };
        }
        while i < bytes.len() {
            if self.string {
                if self.escape {
                    // The escaped byte, whatever it is.
                    self.escape = false;
                    i += 1;
                    continue;
                }
                // Jump to the next quote or backslash.
                match bytes[i..].iter().position(|&b| b == b'"' || b == b'\\') {
                    None => return bytes.len(),
                    Some(n) => i += n,
                }
                self.escape = bytes[i] == b'\\';
                self.string = self.escape;
                i += 1;
                if !self.string && self.depth == 0 {
                    self.done = true;
                    return i;
                }
                continue;
            }
            match bytes[i] {
                b'"' => self.string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.done = true;
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    }
}

/// A byte after which no scalar goes on: whitespace or structure.
fn ends_scalar(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' | b'[' | b']' | b'{' | b'}' | b'"'
    )
}

/// The container whose items [`Scanner::next_item`] steps between.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Within {
    /// An object: each item starts with a string key; it closes with `}`.
    Object,
    /// A list (an array): it closes with `]`.
    List,
}

/// The body's bytes as they come, and the position of the next one.
pub(super) struct Scanner<R> {
    reader: R,
    /// Read buffer; the unconsumed bytes are `buf[pos..end]`. It grows, up to `limit`, while a
    /// group does not fit in it.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Line of the next byte, from 1.
    line: usize,
    /// Bytes of its line before the next byte.
    column: usize,
    /// The longest value parsed from memory ([`PIECE_LIMIT`]; smaller in tests).
    limit: usize,
    /// The value being collected, kept to reuse its allocation.
    piece: Vec<u8>,
}

impl<R: Read> Scanner<R> {
    pub(super) fn new(reader: R) -> Self {
        Self::with_limit(reader, PIECE_LIMIT)
    }

    pub(super) fn with_limit(reader: R, limit: usize) -> Self {
        Scanner {
            reader,
            buf: vec![0; READ_BUFFER.min(limit).max(1)],
            pos: 0,
            end: 0,
            eof: false,
            line: 1,
            column: 0,
            limit,
            piece: Vec::new(),
        }
    }

    /// Reads once into the buffer after the bytes in it; `Ok(0)` at the end of the body.
    fn read_more(&mut self) -> io::Result<usize> {
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether a byte is buffered, reading when none is; false at the end of the body.
    fn fill(&mut self) -> io::Result<bool> {
        while self.pos == self.end && !self.eof {
            self.pos = 0;
            self.end = 0;
            self.read_more()?;
        }
        Ok(self.pos < self.end)
    }

    /// Reads more bytes behind the unconsumed ones, which move to the front, growing the buffer
    /// when they fill it, and fills it: an object that did not fit is parsed again only once the
    /// buffer is full or the body has ended (a stream that trickles a byte at a time must not make
    /// each byte a new parse of it). False when the body has ended or the buffer is at the limit.
    fn extend(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.end == self.buf.len() {
            if self.buf.len() >= self.limit {
                return Ok(false);
            }
            let grown = (self.buf.len() * 2).min(self.limit);
            self.buf.resize(grown, 0);
        }
        let before = self.end;
        while self.end < self.buf.len() && self.read_more()? > 0 {}
        Ok(self.end > before)
    }

    /// Consumes `n` buffered bytes.
    fn advance(&mut self, n: usize) {
        let seen = &self.buf[self.pos..self.pos + n];
        match memchr::memrchr(b'\n', seen) {
            Some(last) => {
                self.line += memchr::memchr_iter(b'\n', seen).count();
                self.column = n - last - 1;
            }
            None => self.column += n,
        }
        self.pos += n;
    }

    /// The next byte that is not whitespace, left unconsumed; `None` at the end of the body.
    pub(super) fn peek(&mut self) -> Result<Option<u8>, ReadError> {
        while self.fill()? {
            let rest = &self.buf[self.pos..self.end];
            let blank = rest
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
            match blank {
                Some(n) => {
                    self.advance(n);
                    return Ok(Some(self.buf[self.pos]));
                }
                None => self.advance(rest.len()),
            }
        }
        Ok(None)
    }

    /// Consumes the byte `peek` gave.
    pub(super) fn bump(&mut self) {
        self.advance(1);
    }

    /// An error about the byte `peek` gave (or the end of the body, when it gave `None`).
    pub(super) fn error(&self, message: &str, at_end: bool) -> ReadError {
        ReadError::Invalid {
            message: message.to_owned(),
            line: self.line,
            column: self.column + usize::from(!at_end),
            eof: at_end,
        }
    }

    /// Steps over the punctuation before the next item of an object or list, as serde_json
    /// would: true when an item (for an object, its key) is next; false when the container has
    /// ended, its closing byte consumed. `first` is whether no item has been read yet.
    pub(super) fn next_item(&mut self, within: Within, first: bool) -> Result<bool, ReadError> {
        let (close, expected, eof) = match within {
            Within::Object => (b'}', "expected `,` or `}`", "EOF while parsing an object"),
            Within::List => (b']', "expected `,` or `]`", "EOF while parsing a list"),
        };
        let mut next = self.peek()?;
        match next {
            Some(b) if b == close => {
                self.bump();
                return Ok(false);
            }
            Some(b',') if !first => {
                self.bump();
                next = self.peek()?;
                if next == Some(close) {
                    return Err(self.error("trailing comma", false));
                }
            }
            Some(_) if !first => return Err(self.error(expected, false)),
            _ => {}
        }
        match next {
            Some(b) if within == Within::Object && b != b'"' => {
                Err(self.error("key must be a string", false))
            }
            Some(_) => Ok(true),
            None => Err(self.error(eof, true)),
        }
    }

    /// Parses the object that starts at the next byte (`peek` gave `{`) with `seed`, straight
    /// from the read buffer: serde_json's parse itself finds where the object ends. While the
    /// object goes on past the buffered bytes, more are read and the parse starts over (a group
    /// is a few KiB; the buffer holds 64 at first); one longer than the limit is parsed by
    /// [`Scanner::value`], as it streams.
    pub(super) fn object<T, S>(&mut self, seed: &mut S) -> Result<T, ReadError>
    where
        for<'s, 'de> &'s mut S: DeserializeSeed<'de, Value = T>,
    {
        loop {
            let mut de = serde_json::Deserializer::from_slice(&self.buf[self.pos..self.end]);
            match (&mut *seed).deserialize(&mut de) {
                Ok(value) => {
                    let n = de.into_iter::<IgnoredAny>().byte_offset();
                    self.advance(n);
                    return Ok(value);
                }
                // The object goes on past the buffered bytes.
                Err(e) if e.is_eof() && !self.eof && self.extend()? => {}
                // Longer than the limit, or not valid: the value's own parse finds out exactly
                // (a number cut at the buffer's end may have looked like the error here).
                Err(_) => return self.value(seed),
            }
        }
    }

    /// Parses the value that starts at the next byte (`peek` gave it) with `seed`: from memory
    /// when it is at most the limit long, else as it streams.
    pub(super) fn value<T>(
        &mut self,
        seed: impl for<'de> DeserializeSeed<'de, Value = T>,
    ) -> Result<T, ReadError> {
        let (line, column) = (self.line, self.column);
        let mut piece = std::mem::take(&mut self.piece);
        piece.clear();
        let mut walk = Walk::default();
        while !walk.done && piece.len() < self.limit {
            if !self.fill()? {
                // The body ended inside the value: serde_json reports the truncation.
                walk.done = true;
                break;
            }
            let n = walk.step(&self.buf[self.pos..self.end]);
            piece.extend_from_slice(&self.buf[self.pos..self.pos + n]);
            self.advance(n);
        }
        let parsed = if walk.done {
            let mut de = serde_json::Deserializer::from_slice(&piece);
            seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v))
        } else {
            let rest = Rest {
                scanner: self,
                walk,
                head: &piece,
            };
            let mut de = serde_json::Deserializer::from_reader(rest);
            seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v))
        };
        // A piece of the limit's size is kept for the next value; a bigger one is let go.
        if piece.capacity() <= 2 * self.limit {
            self.piece = piece;
        }
        parsed.map_err(|e| ReadError::moved(e, line, column))
    }
}

/// The rest of a long value as a reader: the bytes collected so far, then the stream's bytes up
/// to the value's end.
struct Rest<'s, R> {
    scanner: &'s mut Scanner<R>,
    walk: Walk,
    head: &'s [u8],
}

impl<R: Read> Read for Rest<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.head.is_empty() {
            let n = self.head.read(out)?;
            return Ok(n);
        }
        if self.walk.done || out.is_empty() || !self.scanner.fill()? {
            return Ok(0);
        }
        let s = &mut *self.scanner;
        let available = (s.end - s.pos).min(out.len());
        let n = self.walk.step(&s.buf[s.pos..s.pos + available]);
        out[..n].copy_from_slice(&s.buf[s.pos..s.pos + n]);
        s.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `Walk` ends the first value of `text`, fed in chunks of `size` bytes.
    fn end_of_first(text: &str, size: usize) -> Option<usize> {
        let mut walk = Walk::default();
        let mut at = 0;
        for chunk in text.as_bytes().chunks(size) {
            let n = walk.step(chunk);
            at += n;
            if walk.done {
                return Some(at);
            }
            assert_eq!(n, chunk.len());
        }
        None
    }

    #[test]
    fn a_walk_ends_where_the_value_does_at_any_chunk_size() {
        let cases = [
            (r#"{"a":[1,{"b":"}]"}],"c\"}":2} ,"#, 29),
            (r#""x\\" ,"#, 5),
            (r#""\"" ]"#, 4),
            ("12.5e3,", 6),
            ("true}", 4),
            ("[[],{}] ", 7),
            (",", 1),
        ];
        for (text, end) in cases {
            for size in 1..=text.len() {
                assert_eq!(end_of_first(text, size), Some(end), "{text:?} in {size}s");
            }
        }
        assert_eq!(end_of_first(r#"{"a":"#, 2), None);
        assert_eq!(end_of_first(r#""a\"#, 1), None);
    }

    /// Gives one byte per read, like a replica sending its body a byte at a time.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(out.len()).min(1);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn more_bytes_for_an_object_fill_the_buffer_however_they_trickle_in() {
        let body = vec![b' '; 3 * READ_BUFFER + 1];
        let mut s = Scanner::new(Trickle(&body));
        assert!(s.fill().unwrap());
        s.advance(1);
        assert!(s.extend().unwrap());
        assert_eq!(
            (s.pos, s.end),
            (0, READ_BUFFER),
            "moved to the front and filled"
        );
        s.advance(READ_BUFFER);
        assert!(s.extend().unwrap());
        assert_eq!(s.end, READ_BUFFER);
        // Full of unconsumed bytes: it grows, and fills again.
        assert!(s.extend().unwrap());
        assert_eq!((s.end, s.buf.len()), (2 * READ_BUFFER, 2 * READ_BUFFER));
        s.advance(2 * READ_BUFFER);
        assert!(!s.extend().unwrap(), "the body has ended");
    }

    #[test]
    fn the_position_moves_by_lines_and_bytes() {
        let mut s = Scanner::new("  \n  {\n \"a\"".as_bytes());
        assert_eq!(s.peek().unwrap(), Some(b'{'));
        assert_eq!((s.line, s.column), (2, 2));
        s.bump();
        assert_eq!(s.peek().unwrap(), Some(b'"'));
        assert_eq!((s.line, s.column), (3, 1));
    }
}
