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

use std::io::BufRead;

use bytes::Bytes;
use futures::Stream;
use tokio_util::io::{StreamReader, SyncIoBridge};

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
const READ_BUFFER: usize = 256 << 10;

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

/// Parses a body as it streams in, on a blocking thread (like the JSON read).
pub(crate) async fn parse_stream<S>(
    body: S,
    ttl_metric: Option<String>,
    naming: Naming,
) -> Result<Parsed, TextError>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    let reader = SyncIoBridge::new(StreamReader::new(body));
    tokio::task::spawn_blocking(move || {
        let reader = std::io::BufReader::with_capacity(READ_BUFFER, reader);
        parse(reader, ttl_metric.as_deref(), naming)
    })
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

/// Parses a whole `/metrics` text body. `naming` is the replica's: a key it cannot address is
/// reported unkeyed, as the JSON read does.
pub(crate) fn parse(
    mut reader: impl BufRead,
    ttl_metric: Option<&str>,
    naming: Naming,
) -> Result<Parsed, TextError> {
    let wanted = Wanted::new(ttl_metric);
    let mut store = Store::default();
    // A line that goes on past the buffer: its start, and whether it is wanted (unknown until
    // `probe` bytes are in).
    let mut carry: Vec<u8> = Vec::new();
    let mut carrying = false;
    let mut carry_kind: Option<Option<Kind>> = None;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            if carrying {
                let kind = carry_kind.unwrap_or_else(|| wanted.kind(&carry));
                if let Some(kind) = kind {
                    store.line(kind, &carry)?;
                }
            }
            break;
        }
        let mut pos = 0;
        if carrying {
            let end = memchr::memchr(b'\n', buf);
            let piece = &buf[..end.unwrap_or(buf.len())];
            if carry_kind != Some(None) {
                if carry.len() + piece.len() > MAX_LINE {
                    return unusable(format!("a line longer than {MAX_LINE} bytes"));
                }
                carry.extend_from_slice(piece);
                if carry_kind.is_none() && (carry.len() >= wanted.probe || end.is_some()) {
                    carry_kind = Some(wanted.kind(&carry));
                }
            }
            let Some(end) = end else {
                let len = buf.len();
                reader.consume(len);
                continue;
            };
            if let Some(Some(kind)) = carry_kind {
                store.line(kind, &carry)?;
            }
            carry.clear();
            carrying = false;
            carry_kind = None;
            pos = end + 1;
        }
        while let Some(end) = memchr::memchr(b'\n', &buf[pos..]) {
            let line = &buf[pos..pos + end];
            if let Some(kind) = wanted.kind(line) {
                store.line(kind, line)?;
            }
            pos += end + 1;
        }
        if pos < buf.len() {
            carry.extend_from_slice(&buf[pos..]);
            carrying = true;
            if carry.len() >= wanted.probe {
                carry_kind = Some(wanted.kind(&carry));
                if carry_kind == Some(None) {
                    carry.clear();
                }
            }
        }
        let len = buf.len();
        reader.consume(len);
    }
    store.finish(naming)
}

/// The start of a line, for an error message.
fn excerpt(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned()
}
