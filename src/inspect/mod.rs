//! `pushgateway-janitor inspect`: every replica read once, shown per grouping key: which replicas
//! hold it, each copy's age on its own replica's clock, its series, whether its last push
//! succeeded, and what each policy would do with it. The same discovery, reader and pure planner
//! as a sweep; nothing is ever deleted (there is no path from here to `act`).

mod view;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::discover::{Discovered, Refused};
use crate::engine::{plan_inputs, read_all, Access, Engine};
use crate::http::redact_url;
use crate::model::{Labels, Source};
use crate::plan::{self, Rules};
use crate::report::{exit, ReplicaState};
use crate::selector::format_labels;
use crate::tuning::Tuning;

pub use view::SortBy;

/// A policy to ask "what would you do", by the name it is shown under.
pub struct NamedRules {
    pub name: String,
    pub policy: Rules,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Would {
    /// The policy's plan deletes this copy.
    Delete,
    /// Selected, and kept.
    Keep,
    /// Outside the policy's selector: never touched.
    NotSelected,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub policy: String,
    pub would: Would,
    /// `expired`, `superseded`, `poison`, `wipe`, when it would delete.
    pub reason: Option<plan::Reason>,
    pub detail: Option<String>,
}

/// One copy of a grouping key, on one replica.
#[derive(Debug, Clone, Serialize)]
pub struct Copy {
    pub replica: String,
    /// On the replica's own clock; `null` when the group has neither a push nor a failure time.
    pub age_seconds: Option<f64>,
    /// `push_time_seconds`; 0 for a phantom (no successful push ever).
    pub push_time: f64,
    pub series: u64,
    pub last_push_successful: bool,
    pub policies: Vec<Verdict>,
}

/// A grouping key and its copies, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// As Prometheus 3 prints a label set.
    pub key: String,
    pub labels: Labels,
    pub replicas: usize,
    pub copies: Vec<Copy>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaView {
    pub url: String,
    pub state: ReplicaState,
    pub error: Option<String>,
    /// `null` when it could not be read: never shown as empty.
    pub groups: Option<usize>,
    pub unkeyed_groups: usize,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InspectSummary {
    pub replicas: usize,
    pub replicas_failed: usize,
    /// Grouping keys seen, before `--limit`.
    pub keys: usize,
    /// Keys shown.
    pub shown: usize,
    pub copies: usize,
    /// Copies some policy would delete.
    pub would_delete: usize,
    pub error: Option<String>,
    pub exit_code: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub policies: Vec<String>,
    pub replicas: Vec<ReplicaView>,
    pub keys: Vec<KeyView>,
    pub refused: Vec<Refused>,
    /// What a policy's plan left undecided, and why: `policy: replica: note`.
    pub notes: Vec<String>,
    pub summary: InspectSummary,
}

impl Inspection {
    /// Discovery failed: nothing was read.
    pub fn failed_discovery(policies: &[NamedRules], error: String) -> Inspection {
        Inspection {
            policies: policies.iter().map(|p| p.name.clone()).collect(),
            replicas: vec![],
            keys: vec![],
            refused: vec![],
            notes: vec![],
            summary: InspectSummary {
                error: Some(error),
                exit_code: exit::REPLICA_FAILED,
                ..Default::default()
            },
        }
    }
}

/// Reads every replica once and lays out its groups by key. `ttl_metric` is the one declared-TTL
/// gauge the policies read (a read carries one).
pub async fn inspect(
    engine: &Engine,
    access: &Access,
    tuning: &Tuning,
    found: Discovered,
    policies: &[NamedRules],
    ttl_metric: Option<&str>,
) -> Inspection {
    let Discovered { replicas, refused } = found;
    // The JSON API: only it counts each group's series and gives exact keys. It costs the
    // gateway about twice its memory, which `inspect`, run by hand, may.
    let reads = read_all(engine, replicas, access, tuning, ttl_metric, Source::Json).await;
    let inputs = plan_inputs(&reads);
    let plans: Vec<plan::Plan> = policies
        .iter()
        .map(|p| plan::plan(&p.policy, &inputs))
        .collect();

    let mut notes = Vec::new();
    for (p, pl) in policies.iter().zip(&plans) {
        for (read, rp) in reads.iter().zip(&pl.replicas) {
            for note in &rp.notes {
                notes.push(format!(
                    "{}: {}: {note}",
                    p.name,
                    redact_url(read.gateway.url())
                ));
            }
        }
    }
    let mut keys: BTreeMap<Labels, Vec<Copy>> = BTreeMap::new();
    let mut views = Vec::with_capacity(reads.len());
    for (i, read) in reads.iter().enumerate() {
        let url = redact_url(read.gateway.url());
        let snapshot = match &read.snapshot {
            Ok(s) => s,
            Err(e) => {
                views.push(ReplicaView {
                    url,
                    state: ReplicaState::Failed,
                    error: Some(e.to_string()),
                    groups: None,
                    unkeyed_groups: 0,
                    version: read.status.as_ref().and_then(|s| s.version.clone()),
                });
                continue;
            }
        };
        views.push(ReplicaView {
            url: url.clone(),
            state: ReplicaState::Ok,
            error: None,
            groups: Some(snapshot.groups.len()),
            unkeyed_groups: snapshot.unkeyed.len(),
            version: read.status.as_ref().and_then(|s| s.version.clone()),
        });
        // Per policy, this replica's deletes by key: a lookup per group, not a scan.
        let deletes: Vec<HashMap<&Labels, &plan::Decision>> = plans
            .iter()
            .map(|pl| {
                pl.replicas[i]
                    .deletes
                    .iter()
                    .map(|d| (&d.labels, d))
                    .collect()
            })
            .collect();
        for g in &snapshot.groups {
            let verdicts = policies
                .iter()
                .zip(&deletes)
                .map(|(p, by_key)| match by_key.get(&g.labels) {
                    Some(d) => Verdict {
                        policy: p.name.clone(),
                        would: Would::Delete,
                        reason: Some(d.reason),
                        detail: Some(d.detail.clone()),
                    },
                    None => Verdict {
                        policy: p.name.clone(),
                        would: if p.policy.selector.matches(&g.labels) {
                            Would::Keep
                        } else {
                            Would::NotSelected
                        },
                        reason: None,
                        detail: None,
                    },
                })
                .collect();
            keys.entry(g.labels.clone()).or_default().push(Copy {
                replica: url.clone(),
                age_seconds: g.reference_time().map(|t| snapshot.clock - t),
                push_time: g.push_time,
                // The JSON read counts every group's series.
                series: g.series.unwrap_or_default(),
                last_push_successful: g.last_push_successful,
                policies: verdicts,
            });
        }
    }
    let keys: Vec<KeyView> = keys
        .into_iter()
        .map(|(labels, mut copies)| {
            copies.sort_by(|a, b| view::newest_first(a.age_seconds, b.age_seconds));
            KeyView {
                key: format_labels(&labels),
                replicas: copies.len(),
                labels,
                copies,
            }
        })
        .collect();
    let failed = views
        .iter()
        .filter(|v| v.state == ReplicaState::Failed)
        .count();
    let copies: Vec<&Copy> = keys.iter().flat_map(|k| &k.copies).collect();
    let summary = InspectSummary {
        replicas: views.len(),
        replicas_failed: failed,
        keys: keys.len(),
        shown: keys.len(),
        copies: copies.len(),
        would_delete: copies
            .iter()
            .filter(|c| c.policies.iter().any(|v| v.would == Would::Delete))
            .count(),
        error: (views.is_empty()).then(|| "no gateway replica found".to_string()),
        exit_code: if failed > 0 || views.is_empty() {
            exit::REPLICA_FAILED
        } else {
            exit::OK
        },
    };
    Inspection {
        policies: policies.iter().map(|p| p.name.clone()).collect(),
        replicas: views,
        keys,
        refused,
        notes,
        summary,
    }
}
