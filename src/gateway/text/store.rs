//! The groups of a `/metrics` body as its wanted lines come in, and what is made of them at its
//! end.

use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use super::sample::{parse_sample, Pairs};
use super::{excerpt, unusable, Kind, Parsed, TextError, MAX_TTL_LABELS};
use crate::model::{Group, Interner, Labels, Naming, UnkeyedGroup};

/// One group as its lines come in.
#[derive(Default)]
struct Entry {
    push_time: Option<f64>,
    push_failure_time: Option<f64>,
    ttl: Option<f64>,
    unsure: bool,
}

#[derive(Default)]
pub(super) struct Store {
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
    pub(super) fn line(&mut self, kind: Kind, line: &[u8]) -> Result<(), TextError> {
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

    pub(super) fn finish(mut self, naming: Naming) -> Result<Parsed, TextError> {
        self.resolve_ttls()?;
        drop(self.index);
        let mut parsed = Parsed::default();
        parsed.groups.reserve_exact(self.entries.len());
        for (labels, entry) in self.keys.into_iter().zip(self.entries) {
            if let Err(e) = crate::gateway::group_path(&labels, naming) {
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
