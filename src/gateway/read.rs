//! Streaming parse of `GET /api/v1/metrics`.
//!
//! The answer holds every sample of the replica (hundreds of MB on big stores), so it is never
//! collected: a serde visitor walks `{"status": ..., "data": [GROUP, ...]}` straight off the reader,
//! keeps per group only its key, push times, `last_push_successful` and the declared TTL, and skips
//! everything else with `IgnoredAny`. Memory grows with the number of groups, not with the body,
//! and little per group: label names and job names are shared by all groups through one
//! [`Interner`] per read, object keys are matched without being allocated.

use std::fmt;
use std::io::BufReader;

use bytes::Bytes;
use futures::Stream;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::model::{Group, Interner, Labels, Naming, UnkeyedGroup};
use families::{FamilyCount, FamilyValue, Scalar};
use keys::{Field, GroupField, StringMap};

mod families;
mod keys;

/// Read buffer between the byte stream and the JSON parser, which reads byte by byte.
const READ_BUFFER: usize = 64 * 1024;

/// What a body held, before the `status` check.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub status: Option<String>,
    /// The `error` field of an unsuccessful answer.
    pub error: Option<String>,
    pub groups: Vec<Group>,
    pub unkeyed: Vec<UnkeyedGroup>,
}

/// Parses a body as it streams in. serde_json reads synchronously, so it runs on a blocking thread
/// that pulls chunks from the async stream; only the read buffer and the kept groups are in memory.
pub(crate) async fn parse_stream<S>(
    body: S,
    ttl_metric: Option<String>,
    naming: Naming,
) -> serde_json::Result<Parsed>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    let reader = SyncIoBridge::new(StreamReader::new(body));
    tokio::task::spawn_blocking(move || {
        parse(
            BufReader::with_capacity(READ_BUFFER, reader),
            ttl_metric.as_deref(),
            naming,
        )
    })
    .await
    .unwrap_or_else(|e| match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(e) => Err(serde_json::Error::io(std::io::Error::other(e))),
    })
}

/// Parses a whole body from a (buffered) reader; trailing garbage is an error. `naming` tells
/// which grouping keys the replica lets the janitor address.
pub(crate) fn parse(
    reader: impl std::io::Read,
    ttl_metric: Option<&str>,
    naming: Naming,
) -> serde_json::Result<Parsed> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = Body { ttl_metric, naming }.deserialize(&mut de)?;
    de.end()?;
    Ok(parsed)
}

struct Body<'a> {
    ttl_metric: Option<&'a str>,
    naming: Naming,
}

impl<'de> DeserializeSeed<'de> for Body<'_> {
    type Value = Parsed;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parsed, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Body<'_> {
    type Value = Parsed;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an object {"status": ..., "data": [...]}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let mut parsed = Parsed::default();
        let mut interner = Interner::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => parsed.status = Some(map.next_value()?),
                "error" => parsed.error = map.next_value::<Option<String>>()?,
                "data" => {
                    let seed = Data {
                        ttl_metric: self.ttl_metric,
                        naming: self.naming,
                        parsed: &mut parsed,
                        interner: &mut interner,
                    };
                    map.next_value_seed(seed)?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(parsed)
    }
}

/// The `data` array; pushes each group into `parsed` as it goes.
struct Data<'a, 'p> {
    ttl_metric: Option<&'a str>,
    naming: Naming,
    parsed: &'p mut Parsed,
    interner: &'p mut Interner,
}

impl<'de> DeserializeSeed<'de> for Data<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // An unsuccessful answer carries `"data": null`.
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Data<'_, '_> {
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
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ttl_metric = self.ttl_metric;
        loop {
            let interner = &mut *self.interner;
            let Some(raw) = seq.next_element_seed(RawGroupSeed {
                ttl_metric,
                interner,
            })?
            else {
                break;
            };
            match raw.into_group(self.naming) {
                Ok(group) => self.parsed.groups.push(group),
                Err(unkeyed) => self.parsed.unkeyed.push(unkeyed),
            }
        }
        // The groups stay for the whole sweep: give back what growing the vector left over.
        self.parsed.groups.shrink_to_fit();
        Ok(())
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
            // A missing push time means the group never had a successful push (a phantom).
            push_time: self.push_time.unwrap_or(0.0),
            push_failure_time: self.push_failure_time.unwrap_or(0.0),
            last_push_successful: self.last_push_successful.unwrap_or(derived),
            declared_ttl: self.declared_ttl.filter(|ttl| ttl.is_finite()),
            series: self.series,
        })
    }
}

fn unkeyed(why: impl Into<String>) -> UnkeyedGroup {
    UnkeyedGroup { why: why.into() }
}

struct RawGroupSeed<'a, 'i> {
    ttl_metric: Option<&'a str>,
    interner: &'i mut Interner,
}

impl<'de> DeserializeSeed<'de> for RawGroupSeed<'_, '_> {
    type Value = RawGroup;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawGroup, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawGroupSeed<'_, '_> {
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
                Field::Labels => raw.labels = Some(map.next_value_seed(StringMap(self.interner))?),
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
