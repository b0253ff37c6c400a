//! Matching grouping keys read two ways: exactly (the JSON API), or from `/metrics`, where a group
//! without `instance` and one whose key holds `instance=""` look the same (the gateway adds a
//! synthetic `instance=""` to the series of a group without one).
//!
//! Two keys are "loosely" equal when they are equal once an empty `instance` is dropped. Whether
//! loosely equal keys name the same group depends on how sure each read was: see [`Form`].

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use super::{Group, Labels};

/// A key seen with an empty `instance` dropped; hashed and compared that way.
#[derive(Clone, Copy)]
pub struct Loose<'a>(pub &'a Labels);

impl Loose<'_> {
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0
            .iter()
            .filter(|(name, value)| !(*name == "instance" && value.is_empty()))
    }
}

impl PartialEq for Loose<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.pairs().eq(other.pairs())
    }
}

impl Eq for Loose<'_> {}

impl Hash for Loose<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for pair in self.pairs() {
            pair.hash(state);
        }
    }
}

/// What a key says about its `instance`, among keys that are loosely equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// Exactly no `instance` label.
    Absent,
    /// Exactly `instance=""`.
    Empty,
    /// Read from `/metrics`: no `instance`, or `instance=""`.
    Unsure,
    /// A non-empty `instance`: loose equality is exact equality.
    Set,
}

impl Form {
    pub fn of(labels: &Labels, instance_unsure: bool) -> Form {
        match labels.get("instance") {
            _ if instance_unsure => Form::Unsure,
            None => Form::Absent,
            Some("") => Form::Empty,
            Some(_) => Form::Set,
        }
    }

    /// Whether two loosely equal keys of these forms may be one group.
    pub fn may_be_same(self, other: Form) -> bool {
        self == other || self == Form::Unsure || other == Form::Unsure
    }
}

/// How a key found in a read stands to a key looked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Presence {
    /// The same group; the push time the read shows for it.
    Same(f64),
    /// Either the same group or its twin with (or without) `instance=""`: the read was from
    /// `/metrics` and the key looked for is exact. Only an exact read can tell.
    Unsure(f64),
}

/// Keys of one read (a snapshot's groups, or a plan's decisions) by loose key, to find keys read
/// the other way in them.
pub struct KeyIndex<'a> {
    keys: Vec<(&'a Labels, bool, f64)>,
    hasher: RandomState,
    buckets: HashMap<u64, Vec<usize>>,
}

impl<'a> KeyIndex<'a> {
    /// From `(key, instance_unsure, push time)` triples.
    pub fn new(keys: impl IntoIterator<Item = (&'a Labels, bool, f64)>) -> Self {
        let keys: Vec<_> = keys.into_iter().collect();
        let hasher = RandomState::new();
        let mut buckets: HashMap<u64, Vec<usize>> = HashMap::with_capacity(keys.len());
        for (i, (labels, _, _)) in keys.iter().enumerate() {
            buckets
                .entry(hasher.hash_one(Loose(labels)))
                .or_default()
                .push(i);
        }
        KeyIndex {
            keys,
            hasher,
            buckets,
        }
    }

    pub fn of_groups(groups: &'a [Group]) -> Self {
        Self::new(
            groups
                .iter()
                .map(|g| (&g.labels, g.instance_unsure, g.push_time)),
        )
    }

    /// The key that `labels` (read with `instance_unsure`) may be here, by its position in the
    /// triples given; `None` when none may be. Of several (an exact read of a poisoned replica
    /// holds both twins), a sure one wins, and of those the latest push.
    pub fn find(&self, labels: &Labels, instance_unsure: bool) -> Option<(usize, Presence)> {
        let want = Form::of(labels, instance_unsure);
        let mut found: Option<(usize, Presence)> = None;
        let candidates = self.buckets.get(&self.hasher.hash_one(Loose(labels)));
        for &i in candidates.into_iter().flatten() {
            let (have_labels, have_unsure, push) = self.keys[i];
            if Loose(have_labels) != Loose(labels) {
                continue;
            }
            let have = Form::of(have_labels, have_unsure);
            if !want.may_be_same(have) {
                continue;
            }
            let this = if have == Form::Unsure && want != Form::Unsure {
                Presence::Unsure(push)
            } else {
                Presence::Same(push)
            };
            let better = match (found, this) {
                (None, _) => true,
                (Some((_, Presence::Same(_))), Presence::Unsure(_)) => false,
                (Some((_, Presence::Unsure(_))), Presence::Same(_)) => true,
                (
                    Some((_, Presence::Same(a) | Presence::Unsure(a))),
                    Presence::Same(b) | Presence::Unsure(b),
                ) => b > a,
            };
            if better {
                found = Some((i, this));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests;
