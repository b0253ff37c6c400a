//! Per-group facts a decision rests on: age on the replica's own clock, effective TTL, poison,
//! superseded. Deciding what to do with them is `mod.rs`'s job.

use std::collections::HashMap;

use super::{Decision, Reason, Rules};
use crate::duration::format_seconds;
use crate::model::{Form, Group, Labels, Loose, Snapshot};
use crate::selector::format_labels;

/// How many grouping keys a note quotes before it says "…".
const NOTE_EXAMPLES: usize = 3;

/// One read replica, its selected groups judged.
pub(super) struct JudgedReplica<'a> {
    /// Selected groups only: nothing outside the selector ever reaches a decision.
    pub groups: Vec<Assessed<'a>>,
    /// Notes that matter whatever the action.
    pub plain_notes: Vec<String>,
    /// `plain_notes` plus notes about judging staleness (unknown ages, bad declared TTLs).
    pub notes: Vec<String>,
    pub unkeyed: usize,
}

pub(super) struct Assessed<'a> {
    pub group: &'a Group,
    /// Replica clock minus reference time; `None` when there is no reference time.
    pub age: Option<f64>,
    /// Effective TTL in seconds.
    ttl: f64,
    /// The TTL came from the group's own declared gauge.
    declared: bool,
    /// Another group on the same replica exporting the same series as this phantom.
    poison_with: Option<&'a Labels>,
    /// Replica holding a fresher copy of this key, and by how many seconds it is fresher.
    superseded_by: Option<(usize, f64)>,
}

impl Assessed<'_> {
    fn expired(&self) -> bool {
        self.age.is_some_and(|age| age > self.ttl)
    }

    /// A copy that stays after this run: only such a copy can make another one superseded, so a
    /// key never loses all of its copies to "superseded". A phantom is not a copy of anything.
    fn survives(&self) -> bool {
        self.age.is_some()
            && self.poison_with.is_none()
            && !self.expired()
            && !self.group.is_phantom()
    }

    /// Why this group should go, by precedence poison > expired > superseded; `None` = keep.
    pub fn stale(&self) -> Option<(Reason, String)> {
        if let Some(other) = self.poison_with {
            let detail = format!(
                "phantom (no successful push) exports the same series as {}",
                format_labels(other)
            );
            return Some((Reason::Poison, detail));
        }
        if self.expired() {
            let age = self.age.unwrap_or_default();
            let kind = if self.declared { "declared ttl" } else { "ttl" };
            let detail = format!(
                "age {} over {kind} {}",
                format_seconds(age),
                format_seconds(self.ttl)
            );
            return Some((Reason::Expired, detail));
        }
        let (other, fresher) = self.superseded_by?;
        let detail = format!(
            "newer copy on replica {other}, {} fresher",
            format_seconds(fresher)
        );
        Some((Reason::Superseded, detail))
    }

    pub fn decision(&self, replica: usize, reason: Reason, detail: String) -> Decision {
        Decision {
            replica,
            labels: self.group.labels.clone(),
            instance_unsure: self.group.instance_unsure,
            reason,
            age_seconds: self.age,
            detail,
        }
    }
}

pub(super) fn replica<'a>(policy: &Rules, snap: &'a Snapshot) -> JudgedReplica<'a> {
    let collisions = collisions(&snap.groups);
    let mut no_age = Vec::new();
    let mut bad_declared = Vec::new();
    let mut groups = Vec::new();
    for (i, g) in snap.groups.iter().enumerate() {
        if !policy.selector.matches(&g.labels) {
            continue;
        }
        let age = g
            .reference_time()
            .map(|t| snap.clock - t)
            .filter(|a| a.is_finite());
        if age.is_none() {
            no_age.push(&g.labels);
        }
        let (ttl, declared) = effective_ttl(policy, g);
        if policy.ttl_from_metric.is_some() && g.declared_ttl.is_some() && !declared {
            bad_declared.push(&g.labels);
        }
        let poison_with = if g.is_phantom() {
            collisions.get(&i).map(|&j| &snap.groups[j].labels)
        } else {
            None
        };
        groups.push(Assessed {
            group: g,
            age,
            ttl,
            declared,
            poison_with,
            superseded_by: None,
        });
    }

    let mut plain_notes = Vec::new();
    if !snap.unkeyed.is_empty() {
        plain_notes.push(format!(
            "{} group(s) whose key could not be read are never touched",
            snap.unkeyed.len()
        ));
    }
    let mut notes = plain_notes.clone();
    if !no_age.is_empty() {
        notes.push(format!(
            "{} selected group(s) have neither push nor failure time, so no age; kept: {}",
            no_age.len(),
            examples(&no_age)
        ));
    }
    if let (false, Some(metric)) = (bad_declared.is_empty(), &policy.ttl_from_metric) {
        notes.push(format!(
            "{} selected group(s) declare an invalid {metric} (NaN, infinite or not above 0); \
             ttl {} used instead: {}",
            bad_declared.len(),
            format_seconds(policy.ttl.as_secs_f64()),
            examples(&bad_declared)
        ));
    }
    JudgedReplica {
        groups,
        plain_notes,
        notes,
        unkeyed: snap.unkeyed.len(),
    }
}

/// TTL in seconds for one group, and whether it is the group's own declared one.
fn effective_ttl(policy: &Rules, g: &Group) -> (f64, bool) {
    match (&policy.ttl_from_metric, g.declared_ttl) {
        (Some(_), Some(v)) if v.is_finite() && v > 0.0 => {
            let max = policy.max_ttl.map_or(f64::INFINITY, |d| d.as_secs_f64());
            // max then min (not f64::clamp): no panic should a policy with max < min slip through.
            (v.max(policy.min_ttl.as_secs_f64()).min(max), true)
        }
        _ => (policy.ttl.as_secs_f64(), false),
    }
}

/// For each phantom, another group on the same replica exporting identical series, if any.
/// Only a phantom can be poison, so only phantoms are indexed: a replica of 100 000 healthy
/// groups costs no index of them all.
///
/// Equal after dropping empty-valued labels: the gateway adds `instance=""` to series of a group
/// without an instance, and Prometheus treats an empty label as absent.
fn collisions(groups: &[Group]) -> HashMap<usize, usize> {
    fn series(g: &Group) -> Vec<(&str, &str)> {
        g.labels.iter().filter(|(_, v)| !v.is_empty()).collect()
    }
    let mut buckets: HashMap<Vec<(&str, &str)>, Vec<usize>> = groups
        .iter()
        .filter(|g| g.is_phantom())
        .map(|g| (series(g), Vec::new()))
        .collect();
    if buckets.is_empty() {
        return HashMap::new();
    }
    for (i, g) in groups.iter().enumerate() {
        if let Some(members) = buckets.get_mut(&series(g)) {
            members.push(i);
        }
    }
    let mut out = HashMap::new();
    for members in buckets.values() {
        for &i in members.iter().filter(|&&i| groups[i].is_phantom()) {
            // The smallest other key, so the detail is the same whatever order the gateway sent.
            let other = members
                .iter()
                .filter(|&&j| j != i)
                .min_by(|&&a, &&b| groups[a].labels.cmp(&groups[b].labels));
            if let Some(&j) = other {
                out.insert(i, j);
            }
        }
    }
    out
}

/// Marks copies that another replica holds fresher by more than `grace` seconds. Ages are compared,
/// each on its own replica's clock, never push times across replicas.
///
/// Copies are of one key when their keys are equal, or when one was read from `/metrics` and may
/// be either (no `instance`, or `instance=""`): both export the same series, which is what makes
/// an older copy stale. Two exact keys that differ by an empty instance stay two keys.
pub(super) fn mark_superseded(grace: f64, replicas: &mut [Option<JudgedReplica<'_>>]) {
    // One replica read: nothing else can hold a fresher copy.
    if replicas.iter().flatten().count() < 2 {
        return;
    }
    let mut survivors: HashMap<(Loose<'_>, Form), Freshest> = HashMap::new();
    for (r, rep) in replicas.iter().enumerate() {
        for g in rep.iter().flat_map(|rep| &rep.groups) {
            if let (true, Some(age)) = (g.survives(), g.age) {
                let group: &Group = g.group;
                let form = Form::of(&group.labels, group.instance_unsure);
                survivors
                    .entry((Loose(&group.labels), form))
                    .or_default()
                    .offer((r, age));
            }
        }
    }
    const FORMS: [Form; 4] = [Form::Absent, Form::Empty, Form::Unsure, Form::Set];
    for (r, rep) in replicas.iter_mut().enumerate() {
        for g in rep.iter_mut().flat_map(|rep| rep.groups.iter_mut()) {
            let Some(age) = g.age.filter(|_| g.poison_with.is_none() && !g.expired()) else {
                continue;
            };
            let group: &Group = g.group;
            let form = Form::of(&group.labels, group.instance_unsure);
            let freshest = FORMS
                .iter()
                .filter(|other| form.may_be_same(**other))
                .filter_map(|&other| survivors.get(&(Loose(&group.labels), other)))
                .filter_map(|f| f.other_than(r))
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            if let Some((other, other_age)) = freshest {
                if other_age < age - grace {
                    g.superseded_by = Some((other, age - other_age));
                }
            }
        }
    }
}

/// The two youngest surviving copies of one key (replica, age): enough to name, for each replica,
/// the youngest copy on another one, as a replica holds a key once.
#[derive(Default)]
struct Freshest {
    first: Option<(usize, f64)>,
    second: Option<(usize, f64)>,
}

impl Freshest {
    /// Younger first; of the same age, the lower replica index.
    fn younger(a: (usize, f64), b: (usize, f64)) -> bool {
        a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)).is_lt()
    }

    fn offer(&mut self, copy: (usize, f64)) {
        match self.first {
            Some(first) if !Self::younger(copy, first) => {
                if self.second.is_none_or(|second| Self::younger(copy, second)) {
                    self.second = Some(copy);
                }
            }
            _ => {
                self.second = self.first;
                self.first = Some(copy);
            }
        }
    }

    fn other_than(&self, replica: usize) -> Option<(usize, f64)> {
        [self.first, self.second]
            .into_iter()
            .flatten()
            .find(|&(r, _)| r != replica)
    }
}

fn examples(keys: &[&Labels]) -> String {
    let mut sorted = keys.to_vec();
    sorted.sort();
    let mut out: Vec<String> = sorted
        .iter()
        .take(NOTE_EXAMPLES)
        .map(|k| format_labels(k))
        .collect();
    if sorted.len() > NOTE_EXAMPLES {
        out.push("…".into());
    }
    out.join(", ")
}

#[cfg(test)]
mod freshest_tests {
    use proptest::prelude::*;

    use super::Freshest;

    proptest! {
        /// The two kept copies name, for every replica, the copy a search of them all would.
        #[test]
        fn the_youngest_other_copy_is_the_one_a_full_search_finds(
            ages in prop::collection::vec(prop::option::of(prop_oneof![
                Just(0.0), Just(5.0), Just(-1.0), Just(f64::NAN), 0.0f64..100.0,
            ]), 0..6),
        ) {
            // Replica i holds the key when ages[i] is some: a replica holds a key at most once.
            let copies: Vec<(usize, f64)> =
                ages.iter().enumerate().filter_map(|(r, a)| a.map(|a| (r, a))).collect();
            let mut freshest = Freshest::default();
            for &copy in &copies {
                freshest.offer(copy);
            }
            for r in 0..ages.len() + 1 {
                let want = copies
                    .iter()
                    .filter(|(other, _)| *other != r)
                    .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                    .copied();
                let got = freshest.other_than(r);
                prop_assert_eq!(format!("{got:?}"), format!("{want:?}"), "replica {}", r);
            }
        }
    }
}
