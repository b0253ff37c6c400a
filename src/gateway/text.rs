//! The light read: push times from the gateway's `GET /metrics` text exposition.
//!
//! `/metrics` costs the gateway little memory (it writes family by family), where the JSON API
//! builds its whole answer first (1.9x the gateway's resting RSS on 1.11.3). Every group shows
//! its grouping labels on its `push_time_seconds` and `push_failure_time_seconds` series, so only
//! those lines are parsed, plus the declared-TTL gauge when a policy names one. Every other line
//! is skipped whole: a `memchr` for its end and a look at its first bytes.
//!
//! What `/metrics` cannot say exactly is never guessed: the read answers [`TextError::Unusable`]
//! and the caller reads the JSON API instead. The one thing it can never say, whether a key holds
//! `instance=""` or no `instance`, is carried as [`Group::instance_unsure`].

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::model::{Group, Naming, UnkeyedGroup};

mod sample;
mod store;
#[cfg(test)]
mod tests;

use store::Store;

const PUSH_TIME: &[u8] = b"push_time_seconds";
const PUSH_FAILURE_TIME: &[u8] = b"push_failure_time_seconds";
/// A line longer than this is no line of the gateway's: the read gives up on `/metrics`.
const MAX_LINE: usize = 1 << 20;
/// A declared-TTL series with more labels than this beyond `job` is not matched to its group.
const MAX_TTL_LABELS: usize = 12;

#[derive(Debug)]
pub(crate) enum TextError {
    /// The body broke off.
    Io(std::io::Error),
    /// `/metrics` cannot give this replica's groups exactly: read the JSON API instead.
    Unusable(String),
}

impl From<std::io::Error> for TextError {
    fn from(e: std::io::Error) -> Self {
        TextError::Io(e)
    }
}

fn unusable<T>(why: impl Into<String>) -> Result<T, TextError> {
    Err(TextError::Unusable(why.into()))
}

#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub groups: Vec<Group>,
    pub unkeyed: Vec<UnkeyedGroup>,
}

/// Parses a body as it streams in, each chunk as it arrives: skipping a line costs a `memchr`,
/// so the parse keeps pace with the gateway on the async side, without handing every chunk over
/// to a blocking thread (that hand-over, one chunk at a time, cost more than the parse). The end,
/// where the kept groups are built, runs on a blocking thread.
pub(crate) async fn parse_stream<S>(
    mut body: S,
    ttl_metric: Option<String>,
    naming: Naming,
) -> Result<Parsed, TextError>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    let mut parser = Parser::new(ttl_metric.as_deref());
    while let Some(chunk) = body.next().await {
        parser.feed(&chunk?)?;
    }
    tokio::task::spawn_blocking(move || parser.finish(naming))
        .await
        .unwrap_or_else(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(TextError::Io(std::io::Error::other(e))),
        })
}

/// Which of the wanted lines a line is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    PushTime,
    PushFailureTime,
    Ttl,
    /// `# TYPE <ttl metric> <type>`.
    TtlType,
}

/// Recognises wanted lines by their first bytes.
struct Wanted {
    ttl: Option<Vec<u8>>,
    ttl_type: Option<Vec<u8>>,
    /// Enough bytes to tell any line apart.
    probe: usize,
}

impl Wanted {
    fn new(ttl_metric: Option<&str>) -> Self {
        let ttl = ttl_metric.map(|m| m.as_bytes().to_vec());
        let ttl_type = ttl_metric.map(|m| format!("# TYPE {m} ").into_bytes());
        let probe = ttl_type
            .as_ref()
            .map_or(0, Vec::len)
            .max(PUSH_FAILURE_TIME.len())
            + 1;
        Wanted {
            ttl,
            ttl_type,
            probe,
        }
    }

    /// `None` when the line is not wanted; `start` is the whole line, or its first `probe` bytes.
    fn kind(&self, start: &[u8]) -> Option<Kind> {
        let named = |name: &[u8]| {
            start.starts_with(name) && matches!(start.get(name.len()), Some(b'{' | b' '))
        };
        match start.first() {
            Some(b'#') => self
                .ttl_type
                .as_ref()
                .filter(|t| start.starts_with(t))
                .map(|_| Kind::TtlType),
            Some(b'p') if named(PUSH_TIME) => Some(Kind::PushTime),
            Some(b'p') if named(PUSH_FAILURE_TIME) => Some(Kind::PushFailureTime),
            _ => self.ttl.as_ref().filter(|t| named(t)).map(|_| Kind::Ttl),
        }
    }
}

/// Parses a whole `/metrics` text body from a reader. `naming` is the replica's: a key it cannot
/// address is reported unkeyed, as the JSON read does.
#[cfg(test)]
pub(crate) fn parse(
    mut reader: impl std::io::BufRead,
    ttl_metric: Option<&str>,
    naming: Naming,
) -> Result<Parsed, TextError> {
    let mut parser = Parser::new(ttl_metric);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        parser.feed(buf)?;
        let len = buf.len();
        reader.consume(len);
    }
    parser.finish(naming)
}

/// A push parser: fed the body in chunks of any size, it finds each line, whichever chunks it
/// spans, and hands the wanted ones to its [`Store`].
pub(crate) struct Parser {
    wanted: Wanted,
    store: Store,
    /// A line that goes on past the chunk: its start, while it may be wanted.
    carry: Vec<u8>,
    carrying: bool,
    /// Whether the carried line is wanted: `None` until `probe` bytes (or its end) are in.
    carry_kind: Option<Option<Kind>>,
}

impl Parser {
    pub fn new(ttl_metric: Option<&str>) -> Self {
        Parser {
            wanted: Wanted::new(ttl_metric),
            store: Store::default(),
            carry: Vec::new(),
            carrying: false,
            carry_kind: None,
        }
    }

    pub fn feed(&mut self, buf: &[u8]) -> Result<(), TextError> {
        let mut pos = 0;
        if self.carrying {
            let end = memchr::memchr(b'\n', buf);
            let piece = &buf[..end.unwrap_or(buf.len())];
            if self.carry_kind != Some(None) {
                if self.carry.len() + piece.len() > MAX_LINE {
                    return unusable(format!("a line longer than {MAX_LINE} bytes"));
                }
                self.carry.extend_from_slice(piece);
                let decided = self.carry.len() >= self.wanted.probe || end.is_some();
                if self.carry_kind.is_none() && decided {
                    self.carry_kind = Some(self.wanted.kind(&self.carry));
                }
            }
            let Some(end) = end else {
                return Ok(());
            };
            if let Some(Some(kind)) = self.carry_kind {
                self.store.line(kind, &self.carry)?;
            }
            self.carry.clear();
            self.carrying = false;
            self.carry_kind = None;
            pos = end + 1;
        }
        while let Some(end) = memchr::memchr(b'\n', &buf[pos..]) {
            let line = &buf[pos..pos + end];
            if let Some(kind) = self.wanted.kind(line) {
                self.store.line(kind, line)?;
            }
            pos += end + 1;
        }
        if pos < buf.len() {
            self.carry.extend_from_slice(&buf[pos..]);
            self.carrying = true;
            if self.carry.len() >= self.wanted.probe {
                self.carry_kind = Some(self.wanted.kind(&self.carry));
                if self.carry_kind == Some(None) {
                    self.carry.clear();
                }
            }
        }
        Ok(())
    }

    /// The groups, once the body ended (a last line without its newline included).
    pub fn finish(mut self, naming: Naming) -> Result<Parsed, TextError> {
        if self.carrying {
            let kind = self
                .carry_kind
                .unwrap_or_else(|| self.wanted.kind(&self.carry));
            if let Some(kind) = kind {
                self.store.line(kind, &self.carry)?;
            }
        }
        self.store.finish(naming)
    }
}

/// The start of a line, for an error message.
fn excerpt(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned()
}
