//! Streaming parse of `GET /api/v1/metrics`.
//!
//! The answer holds every sample of the replica (hundreds of MB on big stores), so it is never
//! collected: `{"status": ..., "data": [GROUP, ...]}` is read off the stream one group at a time
//! (each parsed from memory by serde_json, see [`scan`]); a serde visitor keeps per group only its
//! key, push times, `last_push_successful` and the declared TTL, and skips
//! everything else with `IgnoredAny`. Memory grows with the number of groups, not with the body,
//! and little per group: label names and job names are shared by all groups through one
//! [`Interner`] per read, object keys are matched without being allocated.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use futures::Stream;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::model::{Group, Interner, Labels, Naming, UnkeyedGroup};
use families::{FamilyCount, FamilyValue, Scalar};
use keys::{Field, GroupField, StringMap};
pub(crate) use scan::ReadError;
use scan::{Scanner, Within};

mod families;
mod keys;
mod scan;

/// What a body held, before the `status` check.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub status: Option<String>,
    /// The `error` field of an unsuccessful answer.
    pub error: Option<String>,
    pub groups: Vec<Group>,
    pub unkeyed: Vec<UnkeyedGroup>,
}

/// Parses a body as it streams in. The scanner reads synchronously, so it runs on a blocking
/// thread that pulls chunks from the async stream; only the read buffer, one value at a time and
/// the kept groups are in memory.
pub(crate) async fn parse_stream<S>(
    body: S,
    ttl_metric: Option<String>,
    naming: Naming,
) -> Result<Parsed, ReadError>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    let reader = SyncIoBridge::new(StreamReader::new(body));
    tokio::task::spawn_blocking(move || parse(reader, ttl_metric.as_deref(), naming))
        .await
        .unwrap_or_else(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(ReadError::Io(std::io::Error::other(e))),
        })
}

/// Parses a whole body, `{"status": ..., "data": [GROUP, ...]}`; trailing garbage is an error.
/// `naming` tells which grouping keys the replica lets the janitor address.
///
/// The object's punctuation is read here; every key and value, and each group of `data`, is
/// parsed by serde_json (see [`scan`]). Keys are handled in order as serde would hand them to a
/// visitor: a repeated `data` adds its groups again, a repeated `status` replaces the first.
pub(crate) fn parse(
    reader: impl std::io::Read,
    ttl_metric: Option<&str>,
    naming: Naming,
) -> Result<Parsed, ReadError> {
    read_body(Scanner::new(reader), ttl_metric, naming)
}

fn read_body<R: std::io::Read>(
    mut s: Scanner<R>,
    ttl_metric: Option<&str>,
    naming: Naming,
) -> Result<Parsed, ReadError> {
    let mut parsed = Parsed::default();
    let mut interner = Interner::default();
    match s.peek()? {
        Some(b'{') => s.bump(),
        // serde_json names what it is instead.
        Some(_) => return s.value(NotAnObject).map(|()| parsed),
        None => return Err(s.error("EOF while parsing a value", true)),
    }
    let mut first = true;
    while s.next_item(Within::Object, first)? {
        first = false;
        let key: String = s.value(PhantomData)?;
        match s.peek()? {
            Some(b':') => s.bump(),
            Some(_) => return Err(s.error("expected `:`", false)),
            None => return Err(s.error("EOF while parsing an object", true)),
        }
        match key.as_str() {
            "status" => parsed.status = Some(s.value(PhantomData)?),
            "error" => parsed.error = s.value(PhantomData)?,
            "data" => data(&mut s, ttl_metric, naming, &mut parsed, &mut interner)?,
            _ => {
                s.value(PhantomData::<IgnoredAny>)?;
            }
        }
    }
    if s.peek()?.is_some() {
        return Err(s.error("trailing characters", false));
    }
    Ok(parsed)
}

/// The value of `data` (its first byte is next): `null`, or an array of groups, each parsed on
/// its own and pushed into `parsed` as it comes.
fn data<R: std::io::Read>(
    s: &mut Scanner<R>,
    ttl_metric: Option<&str>,
    naming: Naming,
    parsed: &mut Parsed,
    interner: &mut Interner,
) -> Result<(), ReadError> {
    if s.peek()? != Some(b'[') {
        // An unsuccessful answer carries `"data": null`; anything else is named by serde_json.
        return s.value(NullData);
    }
    s.bump();
    let mut first = true;
    while s.next_item(Within::List, first)? {
        first = false;
        let mut seed = RawGroupSeed {
            ttl_metric,
            interner: &mut *interner,
        };
        let raw = if s.peek()? == Some(b'{') {
            s.object(&mut seed)?
        } else {
            // Not a group: serde_json says what it is instead.
            s.value(&mut seed)?
        };
        match raw.into_group(naming) {
            Ok(group) => parsed.groups.push(group),
            Err(unkeyed) => parsed.unkeyed.push(unkeyed),
        }
    }
    // The groups stay for the whole sweep: give back what growing the vector left over.
    parsed.groups.shrink_to_fit();
    Ok(())
}

/// A body that is not an object: only its error is wanted.
struct NotAnObject;

impl<'de> DeserializeSeed<'de> for NotAnObject {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NotAnObject {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an object {"status": ..., "data": [...]}"#)
    }
}

/// A `data` that is not an array: `null` is fine, anything else is an error.
struct NullData;

impl<'de> DeserializeSeed<'de> for NullData {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for NullData {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of groups")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

/// One group's fields as read, before deciding whether its key is usable.
#[derive(Default)]
struct RawGroup {
    /// `None`: no `labels` key; `Some(None)`: `labels` was not an object of strings.
    labels: Option<Option<Labels>>,
    last_push_successful: Option<bool>,
    push_time: Option<f64>,
    push_failure_time: Option<f64>,
    declared_ttl: Option<f64>,
    series: u64,
}

impl RawGroup {
    fn into_group(self, naming: Naming) -> Result<Group, UnkeyedGroup> {
        let labels =
            match self.labels {
                None => return Err(unkeyed("the group has no `labels` key")),
                Some(None) => return Err(unkeyed(
                    "`labels` is not an object of strings: a pushed metric family named `labels` \
                     hides the grouping key",
                )),
                Some(Some(labels)) => labels,
            };
        // Only keys the janitor can address become groups, so a plan never holds an undeletable one.
        if let Err(e) = super::key::group_path(&labels, naming) {
            return Err(unkeyed(format!("grouping key cannot be addressed: {e}")));
        }
        // A family named `last_push_successful` hides the flag: derive it from the two push times
        // as the gateway does (`LastPushSuccess`: true unless both exist and failure > success).
        let derived = match (self.push_time, self.push_failure_time) {
            (Some(success), Some(failure)) => failure <= success,
            _ => true,
        };
        Ok(Group {
            labels,
            instance_unsure: false,
            // A missing push time means the group never had a successful push (a phantom).
            push_time: self.push_time.unwrap_or(0.0),
            push_failure_time: self.push_failure_time.unwrap_or(0.0),
            last_push_successful: self.last_push_successful.unwrap_or(derived),
            declared_ttl: self.declared_ttl.filter(|ttl| ttl.is_finite()),
            series: Some(self.series),
        })
    }
}

fn unkeyed(why: impl Into<String>) -> UnkeyedGroup {
    UnkeyedGroup { why: why.into() }
}

/// Reads one group; used as `&mut RawGroupSeed`, so a parse that must start over (the group went
/// on past the read buffer) takes the same seed again.
struct RawGroupSeed<'a, 'i> {
    ttl_metric: Option<&'a str>,
    interner: &'i mut Interner,
}

impl<'de> DeserializeSeed<'de> for &mut RawGroupSeed<'_, '_> {
    type Value = RawGroup;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawGroup, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &mut RawGroupSeed<'_, '_> {
    type Value = RawGroup;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a group object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawGroup, A::Error> {
        let mut raw = RawGroup::default();
        let field = GroupField {
            ttl_metric: self.ttl_metric,
        };
        // Go sorts the keys, so `labels` may come after families: read in any order.
        while let Some(key) = map.next_key_seed(field)? {
            match key {
                Field::Labels => {
                    raw.labels = Some(map.next_value_seed(StringMap(&mut *self.interner))?)
                }
                Field::LastPushSuccessful => {
                    raw.last_push_successful = map.next_value::<Scalar>()?.as_bool()
                }
                // The gateway's own per-group series: not counted as pushed ones.
                Field::PushTime => raw.push_time = map.next_value_seed(FamilyValue)?.0,
                Field::PushFailureTime => {
                    raw.push_failure_time = map.next_value_seed(FamilyValue)?.0
                }
                Field::DeclaredTtl => {
                    let (value, count) = map.next_value_seed(FamilyValue)?;
                    raw.declared_ttl = value;
                    raw.series += count;
                }
                Field::Family => raw.series += map.next_value_seed(FamilyCount)?,
            }
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
