//! The plan: snapshots of every replica + a policy in, one decision per group to delete out.
//!
//! Pure: no IO, no clock reads. Every age is measured on the replica's own clock (its `Date` header
//! against its own `push_time_seconds`), so clock skew between replicas, or between a replica and the
//! janitor, never changes a decision.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::model::{Labels, ReplicaStatus, Snapshot};
use crate::selector::Selector;

mod assess;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod superseded_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wipe_tests;

/// The planner's rules, taken from a checked policy: what makes a group stale, and what to do
/// about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Groups older than this are expired.
    pub ttl: Duration,
    /// Only groups matching it are ever touched.
    pub selector: Selector,
    /// How much fresher another replica's copy of a key must be before this copy counts as
    /// superseded. `None` turns superseded detection off (`--no-superseded`).
    pub superseded_grace: Option<Duration>,
    /// Name of a gauge a pusher sets to declare its group's own TTL, in seconds.
    pub ttl_from_metric: Option<String>,
    /// Floor for `ttl` and for any declared TTL (default 1m), so a typo cannot expire fresh groups.
    pub min_ttl: Duration,
    /// Ceiling for a declared TTL; the policy's own `ttl` is not bounded by it.
    pub max_ttl: Option<Duration>,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    /// Delete the stale groups one by one.
    DeleteGroups,
    /// Remove every selected group. With `only_if_all_stale`, a replica is wiped only when every
    /// selected group on it is stale; otherwise it is left alone.
    Wipe { only_if_all_stale: bool },
}

/// One replica as read: `snapshot` is `None` when it could not be read, which is never the same as
/// a replica without groups.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaInput<'a> {
    pub snapshot: Option<&'a Snapshot>,
    pub status: Option<&'a ReplicaStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// Older than its effective TTL.
    Expired,
    /// Another replica holds a fresher copy of the same key (load-balanced pushes).
    Superseded,
    /// A phantom exporting the same series as another group: the replica's `/metrics` fails.
    Poison,
    /// Removed by a wipe.
    Wipe,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::Superseded => "superseded",
            Reason::Poison => "poison",
            Reason::Wipe => "wipe",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One group to delete, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Index of the replica in the plan's input.
    pub replica: usize,
    /// The grouping key as read: exact, unless `instance_unsure`.
    pub labels: Labels,
    /// Read from `/metrics`: the key is `labels` or `labels` plus `instance=""` (see
    /// [`crate::model::Group::instance_unsure`]); its delete removes whichever it is.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub instance_unsure: bool,
    pub reason: Reason,
    /// Age on the replica's own clock; `None` when the group has no push or failure time.
    pub age_seconds: Option<f64>,
    /// A short human reason, e.g. `age 7h 2m over ttl 6h`.
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaPlan {
    /// Sorted by grouping key. Under an admin wipe it still lists every group the wipe removes.
    pub deletes: Vec<Decision>,
    /// Remove everything on the replica with `PUT /api/v1/admin/wipe` instead of one DELETE per
    /// group: only for a match-all selector on a replica whose admin API is on.
    pub admin_wipe: bool,
    /// What was left undecided, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Same index as the input replicas.
    pub replicas: Vec<ReplicaPlan>,
}

impl Plan {
    pub fn total_deletes(&self) -> usize {
        self.replicas.iter().map(|r| r.deletes.len()).sum()
    }

    /// Every decision, by replica then grouping key.
    pub fn decisions(&self) -> impl Iterator<Item = &Decision> {
        self.replicas.iter().flat_map(|r| r.deletes.iter())
    }
}

/// Decides, for every replica, which selected groups go. Deterministic: same input, same plan.
pub fn plan(policy: &Rules, replicas: &[ReplicaInput<'_>]) -> Plan {
    let unread: Vec<usize> = (0..replicas.len())
        .filter(|&i| replicas[i].snapshot.is_none())
        .collect();
    let mut assessed: Vec<Option<assess::JudgedReplica<'_>>> = replicas
        .iter()
        .map(|r| r.snapshot.map(|s| assess::replica(policy, s)))
        .collect();
    // A copy on an unread replica may be the freshest one: without it, "superseded" could pick the
    // wrong survivor, so the whole check waits for a run where every replica answers.
    let superseded_on = policy.superseded_grace.is_some() && unread.is_empty();
    if let (Some(grace), true) = (policy.superseded_grace, superseded_on) {
        assess::mark_superseded(grace.as_secs_f64(), &mut assessed);
    }

    let replicas = replicas
        .iter()
        .zip(assessed)
        .enumerate()
        .map(|(i, (input, a))| {
            let Some(a) = a else {
                return ReplicaPlan {
                    notes: vec!["not read: nothing decided".into()],
                    ..ReplicaPlan::default()
                };
            };
            let mut rp = match policy.action {
                Action::DeleteGroups => delete_stale(i, a),
                Action::Wipe { only_if_all_stale } => {
                    wipe(i, a, only_if_all_stale, policy, input.status)
                }
            };
            let judged_staleness = !matches!(
                policy.action,
                Action::Wipe {
                    only_if_all_stale: false
                }
            );
            if judged_staleness && policy.superseded_grace.is_some() && !superseded_on {
                rp.notes.push(format!(
                    "superseded check skipped this run: replica {} not read",
                    join(&unread)
                ));
            }
            rp.deletes.sort_by(|x, y| x.labels.cmp(&y.labels));
            rp
        })
        .collect();
    Plan { replicas }
}

fn delete_stale(replica: usize, a: assess::JudgedReplica<'_>) -> ReplicaPlan {
    let deletes = a
        .groups
        .iter()
        .filter_map(|g| {
            let (reason, detail) = g.stale()?;
            Some(g.decision(replica, reason, detail))
        })
        .collect();
    ReplicaPlan {
        deletes,
        admin_wipe: false,
        notes: a.notes,
    }
}

fn wipe(
    replica: usize,
    a: assess::JudgedReplica<'_>,
    only_if_all_stale: bool,
    policy: &Rules,
    status: Option<&ReplicaStatus>,
) -> ReplicaPlan {
    let mut notes = if only_if_all_stale {
        a.notes
    } else {
        a.plain_notes
    };
    if only_if_all_stale {
        let fresh = a.groups.iter().filter(|g| g.stale().is_none()).count();
        if fresh > 0 {
            notes.push(format!(
                "wipe skipped: {fresh} of {} selected groups are not stale",
                a.groups.len()
            ));
            return ReplicaPlan {
                notes,
                ..ReplicaPlan::default()
            };
        }
    }
    let deletes: Vec<Decision> = a
        .groups
        .iter()
        .map(|g| {
            let detail = match (only_if_all_stale, g.stale(), g.age) {
                (true, Some((reason, why)), _) => {
                    format!("wipe, every group stale; {reason}: {why}")
                }
                (_, _, Some(age)) => format!("wipe, age {}", crate::duration::format_seconds(age)),
                (_, _, None) => "wipe, age unknown".to_owned(),
            };
            g.decision(replica, Reason::Wipe, detail)
        })
        .collect();
    let admin_api = status.is_some_and(|s| s.admin_api);
    let mut admin_wipe = policy.selector.is_match_all() && admin_api && !deletes.is_empty();
    // The admin wipe would also remove groups whose key could not be read; those are never touched.
    if admin_wipe && a.unkeyed > 0 {
        admin_wipe = false;
        notes.push(format!(
            "admin wipe not used: it would also remove {} group(s) whose key could not be read; \
             deleting group by group",
            a.unkeyed
        ));
    }
    ReplicaPlan {
        deletes,
        admin_wipe,
        notes,
    }
}

fn join(items: &[usize]) -> String {
    items
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
