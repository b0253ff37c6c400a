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

use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::BufRead;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::model::{Group, Interner, Labels, Naming, UnkeyedGroup};

mod sample;
#[cfg(test)]
mod tests;

use sample::{parse_sample, Pairs};

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

/// One group as its lines come in.
#[derive(Default)]
struct Entry {
    push_time: Option<f64>,
    push_failure_time: Option<f64>,
    ttl: Option<f64>,
    unsure: bool,
}

#[derive(Default)]
struct Store {
    interner: Interner,
    /// Keys with an empty `instance` dropped, in the order first seen.
    keys: Vec<Labels>,
    entries: Vec<Entry>,
    /// Positions in `keys` by a hash of the key, so no key is held twice; `collided` takes the
    /// (rare) keys whose hash another key already has.
    hasher: std::hash::RandomState,
    index: HashMap<u64, usize>,
    collided: Vec<(u64, usize)>,
    /// The declared-TTL series: matched to their groups once every group is known, since the
    /// gauge's family may come before `push_time_seconds` (families are sorted by name).
    ttl_series: Vec<(Pairs, f64)>,
    /// The TTL gauge's family has a type whose samples carry no single value (summary,
    /// histogram): the JSON read gives no declared TTL for it either.
    ttl_valueless: bool,
}

impl Store {
    fn line(&mut self, kind: Kind, line: &[u8]) -> Result<(), TextError> {
        if kind == Kind::TtlType {
            let kind = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
            self.ttl_valueless = !matches!(kind, b"gauge" | b"counter" | b"untyped");
            return Ok(());
        }
        if kind == Kind::Ttl && self.ttl_valueless {
            return Ok(());
        }
        let (pairs, value) = parse_sample(line, &mut self.interner)
            .or_else(|why| unusable(format!("{why} in {:?}", excerpt(line))))?;
        match kind {
            Kind::PushTime | Kind::PushFailureTime => self.time(kind, pairs, value),
            Kind::Ttl => {
                self.ttl_series.push((pairs, value));
                Ok(())
            }
            Kind::TtlType => unreachable!("handled above"),
        }
    }

    /// A push time: its labels are exactly the group's key, plus `instance=""` when the key
    /// has no instance (or holds `instance=""`: the two look the same).
    fn time(&mut self, kind: Kind, mut pairs: Pairs, value: f64) -> Result<(), TextError> {
        let before = pairs.len();
        pairs.retain(|(name, v)| !(&**name == "instance" && v.is_empty()));
        let unsure = pairs.len() < before || !pairs.iter().any(|(n, _)| &**n == "instance");
        if !pairs.iter().any(|(n, _)| &**n == "job") {
            return unusable("a push time without a `job` label");
        }
        let at = match self.find(&pairs) {
            Some(at) => at,
            None => {
                let at = self.keys.len();
                let hash = self.hash(&pairs);
                match self.index.entry(hash) {
                    Slot::Occupied(_) => self.collided.push((hash, at)),
                    Slot::Vacant(slot) => {
                        slot.insert(at);
                    }
                }
                self.keys.push(Labels::from_pairs(pairs));
                self.entries.push(Entry {
                    unsure,
                    ..Entry::default()
                });
                at
            }
        };
        let entry = &mut self.entries[at];
        let slot = match kind {
            Kind::PushTime => &mut entry.push_time,
            _ => &mut entry.push_failure_time,
        };
        // Two groups whose keys differ only by an empty instance collide in `/metrics`; a gateway
        // answers 500 then. Whatever made it answer: not exact.
        if slot.replace(value).is_some() {
            return unusable("two groups show the same push time series");
        }
        Ok(())
    }

    /// Gives each declared-TTL series to the one group it can belong to: its labels hold the
    /// group's key plus the pushed metric's own labels, so every group whose key they hold is a
    /// candidate. Anything but exactly one candidate, or one group with two different values
    /// (the JSON read takes the first of them), is not exact.
    fn resolve_ttls(&mut self) -> Result<(), TextError> {
        let mut key = Vec::new();
        for (pairs, value) in std::mem::take(&mut self.ttl_series) {
            let pairs: Pairs = pairs
                .into_iter()
                .filter(|(name, v)| !(&**name == "instance" && v.is_empty()))
                .collect();
            let others = pairs.iter().filter(|(n, _)| &**n != "job").count();
            if others > MAX_TTL_LABELS {
                return unusable(format!(
                    "a declared-TTL series with more than {MAX_TTL_LABELS} labels"
                ));
            }
            let mut found = None;
            for mask in 0u32..(1 << others) {
                key.clear();
                let mut bit = 0;
                for pair in &pairs {
                    if &*pair.0 == "job" {
                        key.push(pair.clone());
                    } else {
                        if mask & (1 << bit) != 0 {
                            key.push(pair.clone());
                        }
                        bit += 1;
                    }
                }
                if let Some(at) = self.find(&key) {
                    if found.replace(at).is_some() {
                        return unusable("a declared-TTL series that fits two groups");
                    }
                }
            }
            let Some(at) = found else {
                return unusable("a declared-TTL series of no group");
            };
            match self.entries[at].ttl {
                Some(seen) if seen.to_bits() != value.to_bits() => {
                    return unusable("a group with two different declared TTLs");
                }
                _ => self.entries[at].ttl = Some(value),
            }
        }
        Ok(())
    }

    fn hash(&self, pairs: &[(Arc<str>, Arc<str>)]) -> u64 {
        let mut h = self.hasher.build_hasher();
        for (name, value) in pairs {
            name.hash(&mut h);
            value.hash(&mut h);
        }
        h.finish()
    }

    /// The position of the key made of `pairs` (sorted by name), if seen.
    fn find(&self, pairs: &[(Arc<str>, Arc<str>)]) -> Option<usize> {
        let hash = self.hash(pairs);
        let same = |at: usize| {
            self.keys[at]
                .iter()
                .eq(pairs.iter().map(|(k, v)| (&**k, &**v)))
        };
        let first = self.index.get(&hash).copied().filter(|&at| same(at));
        first.or_else(|| {
            self.collided
                .iter()
                .find(|&&(h, at)| h == hash && same(at))
                .map(|&(_, at)| at)
        })
    }

    fn finish(mut self, naming: Naming) -> Result<Parsed, TextError> {
        self.resolve_ttls()?;
        drop(self.index);
        let mut parsed = Parsed::default();
        parsed.groups.reserve_exact(self.entries.len());
        for (labels, entry) in self.keys.into_iter().zip(self.entries) {
            if let Err(e) = super::key::group_path(&labels, naming) {
                parsed.unkeyed.push(UnkeyedGroup {
                    why: format!("grouping key cannot be addressed: {e}"),
                });
                continue;
            }
            // As the gateway's `LastPushSuccess`: true unless a failure came after the success.
            let last_push_successful = match (entry.push_time, entry.push_failure_time) {
                (Some(success), Some(failure)) => failure <= success,
                _ => true,
            };
            parsed.groups.push(Group {
                labels,
                instance_unsure: entry.unsure,
                push_time: entry.push_time.unwrap_or(0.0),
                push_failure_time: entry.push_failure_time.unwrap_or(0.0),
                last_push_successful,
                declared_ttl: entry.ttl.filter(|ttl| ttl.is_finite()),
                series: None,
            });
        }
        Ok(parsed)
    }
}

/// The start of a line, for an error message.
fn excerpt(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned()
}
