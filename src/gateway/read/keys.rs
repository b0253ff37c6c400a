//! Object keys and label strings of a group, matched and interned without a copy per group.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::model::{Interner, Labels};

/// What a key of a group object names.
pub(super) enum Field {
    Labels,
    LastPushSuccessful,
    PushTime,
    PushFailureTime,
    DeclaredTtl,
    Family,
}

/// Reads a group's key as a [`Field`], without allocating it.
#[derive(Clone, Copy)]
pub(super) struct GroupField<'a> {
    pub ttl_metric: Option<&'a str>,
}

impl<'de> DeserializeSeed<'de> for GroupField<'_> {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for GroupField<'_> {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
        Ok(match key {
            "labels" => Field::Labels,
            "last_push_successful" => Field::LastPushSuccessful,
            "push_time_seconds" => Field::PushTime,
            "push_failure_time_seconds" => Field::PushFailureTime,
            name if Some(name) == self.ttl_metric => Field::DeclaredTtl,
            _ => Field::Family,
        })
    }
}

/// Whether an object key is the given one, without allocating it.
#[derive(Clone, Copy)]
pub(super) struct KeyIs(pub &'static str);

impl<'de> DeserializeSeed<'de> for KeyIs {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// An object of strings, or `None` when any value is not a string (the object is still walked to
/// its end, but nothing of it is kept). Names and `job` values come from the interner: shared by
/// every group of the read; other values are the group's own.
pub(super) struct StringMap<'i>(pub &'i mut Interner);

impl<'de> DeserializeSeed<'de> for StringMap<'_> {
    type Value = Option<Labels>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StringMap<'_> {
    type Value = Option<Labels>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let interner = self.0;
        let mut pairs = Some(Vec::new());
        while let Some(name) = map.next_key_seed(Interned(&mut *interner))? {
            let shared = (&*name == "job").then_some(&mut *interner);
            match (map.next_value_seed(LabelText(shared))?, pairs.as_mut()) {
                (Some(value), Some(pairs)) => pairs.push((name, value)),
                _ => pairs = None,
            }
        }
        Ok(pairs.map(Labels::from_pairs))
    }
}

/// A label name, from the interner.
struct Interned<'i>(&'i mut Interner);

impl<'de> DeserializeSeed<'de> for Interned<'_> {
    type Value = Arc<str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Interned<'_> {
    type Value = Arc<str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a label name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.get(v))
    }
}

/// A label value: the string (from the interner when one is given), or `None` for any
/// other JSON value, which is skipped.
struct LabelText<'i>(Option<&'i mut Interner>);

impl<'de> DeserializeSeed<'de> for LabelText<'_> {
    type Value = Option<Arc<str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LabelText<'_> {
    type Value = Option<Arc<str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(match self.0 {
            Some(interner) => interner.get(v),
            None => v.into(),
        }))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}
