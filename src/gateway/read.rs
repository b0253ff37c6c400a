//! Streaming parse of `GET /api/v1/metrics`.
//!
//! The answer holds every sample of the replica (hundreds of MB on big stores), so it is never
//! collected: a serde visitor walks `{"status": ..., "data": [GROUP, ...]}` straight off the reader,
//! keeps per group only its key, push times, `last_push_successful` and the declared TTL, and skips
//! everything else with `IgnoredAny`. Memory grows with the number of groups, not with the body.

use std::fmt;
use std::io::BufReader;

use bytes::Bytes;
use futures::Stream;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::model::{Group, Labels, Naming, UnkeyedGroup};

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
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => parsed.status = Some(map.next_value()?),
                "error" => parsed.error = map.next_value::<Option<String>>()?,
                "data" => {
                    let seed = Data {
                        ttl_metric: self.ttl_metric,
                        naming: self.naming,
                        parsed: &mut parsed,
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
        while let Some(raw) = seq.next_element_seed(RawGroupSeed { ttl_metric })? {
            match raw.into_group(self.naming) {
                Ok(group) => self.parsed.groups.push(group),
                Err(unkeyed) => self.parsed.unkeyed.push(unkeyed),
            }
        }
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

struct RawGroupSeed<'a> {
    ttl_metric: Option<&'a str>,
}

impl<'de> DeserializeSeed<'de> for RawGroupSeed<'_> {
    type Value = RawGroup;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawGroup, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawGroupSeed<'_> {
    type Value = RawGroup;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a group object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawGroup, A::Error> {
        let mut raw = RawGroup::default();
        // Go sorts the keys, so `labels` may come after families: read in any order.
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "labels" => raw.labels = Some(map.next_value_seed(StringMap)?),
                "last_push_successful" => {
                    raw.last_push_successful = map.next_value::<Scalar>()?.as_bool()
                }
                // The gateway's own per-group series: not counted as pushed ones.
                "push_time_seconds" => raw.push_time = map.next_value_seed(FamilyValue)?.0,
                "push_failure_time_seconds" => {
                    raw.push_failure_time = map.next_value_seed(FamilyValue)?.0
                }
                name if Some(name) == self.ttl_metric => {
                    let (value, count) = map.next_value_seed(FamilyValue)?;
                    raw.declared_ttl = value;
                    raw.series += count;
                }
                _ => raw.series += map.next_value_seed(FamilyCount)?,
            }
        }
        Ok(raw)
    }
}

/// An object of strings, or `None` when any value is not a string (the object is still walked to
/// its end, but nothing of it is kept).
struct StringMap;

impl<'de> DeserializeSeed<'de> for StringMap {
    type Value = Option<Labels>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StringMap {
    type Value = Option<Labels>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut labels = Some(Labels::new());
        while let Some(name) = map.next_key::<String>()? {
            match (map.next_value::<Scalar>()?, labels.as_mut()) {
                (Scalar::Str(value), Some(labels)) => {
                    labels.insert(name, value);
                }
                _ => labels = None,
            }
        }
        Ok(labels)
    }
}

/// Any JSON value, reduced to what a field of interest can be; objects and arrays are skipped
/// unparsed, since where a scalar is expected they only mean a colliding family.
enum Scalar {
    Str(String),
    Bool(bool),
    Num(f64),
    Other,
}

impl Scalar {
    fn as_bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A sample value: Go float text ("1.795e+09", "NaN", "+Inf"), or leniently a JSON number.
    fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Str(s) => s.parse().ok(),
            Scalar::Num(n) => Some(*n),
            _ => None,
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

/// A pushed family object, reduced to how many metrics (label sets) it holds; the metrics are
/// skipped unparsed.
struct FamilyCount;

impl<'de> DeserializeSeed<'de> for FamilyCount {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FamilyCount {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a metric family object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut count = 0;
        while let Some(key) = map.next_key::<String>()? {
            if key == "metrics" {
                count = map.next_value_seed(MetricCount)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(count)
    }
}

struct MetricCount;

impl<'de> DeserializeSeed<'de> for MetricCount {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MetricCount {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of metrics")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut count = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok(count)
    }
}

/// A family object, reduced to the value of its first metric (`metrics[0].value`: gauges,
/// untyped, counters), and how many metrics it holds. `None` when that metric has no `value`
/// (histograms, summaries).
struct FamilyValue;

impl<'de> DeserializeSeed<'de> for FamilyValue {
    type Value = (Option<f64>, u64);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FamilyValue {
    type Value = (Option<f64>, u64);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a metric family object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value = (None, 0);
        while let Some(key) = map.next_key::<String>()? {
            if key == "metrics" {
                value = map.next_value_seed(FirstMetric)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(value)
    }
}

/// `metrics`: the first element's `value`; the other elements are skipped.
struct FirstMetric;

impl<'de> DeserializeSeed<'de> for FirstMetric {
    type Value = (Option<f64>, u64);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FirstMetric {
    type Value = (Option<f64>, u64);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of metrics")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Some(first) = seq.next_element_seed(MetricValue)? else {
            return Ok((None, 0));
        };
        let mut count = 1;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok((first, count))
    }
}

struct MetricValue;

impl<'de> DeserializeSeed<'de> for MetricValue {
    type Value = Option<f64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetricValue {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a metric object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "value" {
                value = map.next_value::<Scalar>()?.as_f64();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
