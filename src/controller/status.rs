//! From what a reconcile found to the status it applies: pure functions of the previous status,
//! the sweep report and the time, so they are tested without a cluster.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{LastSweep, PushgatewayRetentionStatus, ReplicaStatusSummary};
use crate::report::{Outcome, ReplicaState, SweepReport};
use crate::selector::format_labels;

pub const READY: &str = "Ready";
pub const DEGRADED: &str = "Degraded";
pub const SPEC_INVALID: &str = "SpecInvalid";
pub const GUARD_TRIPPED: &str = "GuardTripped";

/// How many groups `lastSweep.sample` and event notes name.
pub const SAMPLE: usize = 10;

/// A condition to set: type, status, reason, message.
pub struct Cond<'a> {
    pub type_: &'a str,
    pub status: bool,
    pub reason: &'a str,
    pub message: String,
}

/// Sets a condition, keeping `lastTransitionTime` unless its status flips, so a timestamp says
/// when the state began and an unchanged status applies as a no-op.
pub fn set(conditions: &mut Vec<Condition>, c: Cond<'_>, generation: Option<i64>, now: Timestamp) {
    let status = if c.status { "True" } else { "False" }.to_string();
    let since = conditions
        .iter()
        .find(|old| old.type_ == c.type_ && old.status == status)
        .map(|old| old.last_transition_time.clone())
        .unwrap_or(Time(now));
    conditions.retain(|old| old.type_ != c.type_);
    conditions.push(Condition {
        type_: c.type_.to_string(),
        status,
        reason: c.reason.to_string(),
        message: c.message,
        observed_generation: generation,
        last_transition_time: since,
    });
    // A stable order, so equal statuses compare equal and re-applying one changes nothing.
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

pub fn is_true(status: &PushgatewayRetentionStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

fn reason_of<'a>(status: &'a PushgatewayRetentionStatus, type_: &str) -> Option<&'a str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.as_str())
}

/// A spec the janitor refuses: said in `SpecInvalid` and `Ready`; the last sweep and totals stay.
pub fn spec_invalid(
    prev: &PushgatewayRetentionStatus,
    error: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> PushgatewayRetentionStatus {
    let mut s = prev.clone();
    let message = error.to_string();
    set(
        &mut s.conditions,
        Cond {
            type_: SPEC_INVALID,
            status: true,
            reason: "InvalidSpec",
            message: message.clone(),
        },
        generation,
        now,
    );
    set(
        &mut s.conditions,
        Cond {
            type_: READY,
            status: false,
            reason: "InvalidSpec",
            message,
        },
        generation,
        now,
    );
    s.observed_generation = generation;
    s.next_scheduled_wipe = None;
    s
}

fn spec_valid(s: &mut PushgatewayRetentionStatus, generation: Option<i64>, now: Timestamp) {
    set(
        &mut s.conditions,
        Cond {
            type_: SPEC_INVALID,
            status: false,
            reason: "Valid",
            message: "the spec was accepted".into(),
        },
        generation,
        now,
    );
    s.observed_generation = generation;
}

/// `spec.suspend`: nothing is swept until it is set back.
pub fn suspended(
    prev: &PushgatewayRetentionStatus,
    generation: Option<i64>,
    now: Timestamp,
) -> PushgatewayRetentionStatus {
    let mut s = prev.clone();
    spec_valid(&mut s, generation, now);
    set(
        &mut s.conditions,
        Cond {
            type_: READY,
            status: false,
            reason: "Suspended",
            message: "spec.suspend is true: nothing is swept".into(),
        },
        generation,
        now,
    );
    s.next_scheduled_wipe = None;
    s
}

/// Not due yet. Keeps what the last sweep said; a policy never swept, or coming back from an
/// invalid spec or a suspension, says when it will be.
pub fn waiting(
    prev: &PushgatewayRetentionStatus,
    generation: Option<i64>,
    next_sweep: Timestamp,
    next_tick: Option<Timestamp>,
    now: Timestamp,
) -> PushgatewayRetentionStatus {
    let mut s = prev.clone();
    spec_valid(&mut s, generation, now);
    if matches!(
        reason_of(&s, READY),
        None | Some("InvalidSpec" | "Suspended" | "Waiting")
    ) {
        set(
            &mut s.conditions,
            Cond {
                type_: READY,
                status: false,
                reason: "Waiting",
                message: format!(
                    "no sweep since the spec was accepted; next check at {next_sweep}"
                ),
            },
            generation,
            now,
        );
    }
    s.next_scheduled_wipe = next_tick.map(|t| t.to_string());
    s
}

/// Replicas could not even be found: `Degraded`; the last sweep stays (it is what is known of
/// the gateways), the failure is counted.
pub fn discovery_failed(
    prev: &PushgatewayRetentionStatus,
    error: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> PushgatewayRetentionStatus {
    let mut s = prev.clone();
    spec_valid(&mut s, generation, now);
    for (type_, reason) in [(DEGRADED, "DiscoveryFailed"), (READY, "DiscoveryFailed")] {
        set(
            &mut s.conditions,
            Cond {
                type_,
                status: type_ == DEGRADED,
                reason,
                message: error.to_string(),
            },
            generation,
            now,
        );
    }
    s.totals.sweeps += 1;
    s.totals.failed_sweeps += 1;
    s
}

/// Groups deleted: `Deleted` and `Repushed` (deleted, then pushed again), as the metrics count.
pub fn deleted(report: &SweepReport) -> usize {
    report.summary.deleted + report.summary.repushed
}

/// Up to [`SAMPLE`] groups the sweep deleted, or in a dry run would have, as `{job="x", ...}`.
pub fn sample(report: &SweepReport) -> Vec<String> {
    report
        .actions
        .iter()
        .filter(|a| {
            matches!(
                a.outcome,
                Outcome::Deleted | Outcome::Repushed | Outcome::WouldDelete
            )
        })
        .take(SAMPLE)
        .map(|a| format_labels(&a.labels))
        .collect()
}

pub fn last_sweep(report: &SweepReport) -> LastSweep {
    let s = &report.summary;
    LastSweep {
        start_time: report.started_at.clone(),
        duration_seconds: (report.duration_seconds * 1000.0).round() / 1000.0,
        replicas_found: s.replicas as i64,
        replicas_failed: s.replicas_failed as i64,
        groups_seen: s.groups_seen as i64,
        deleted: deleted(report) as i64,
        would_delete: s.would_delete as i64,
        failed_deletes: (s.failed + s.unconfirmed) as i64,
        dry_run: report.dry_run,
        replicas: report
            .replicas
            .iter()
            .map(|r| ReplicaStatusSummary {
                url: r.url.clone(),
                state: match r.state {
                    ReplicaState::Ok => "ok".into(),
                    ReplicaState::Failed => "failed".into(),
                },
                // Only the janitor's words: the policy's author reads this, and must not read
                // what an arbitrary server answered.
                error: r.error.as_ref().map(|e| e.public().to_string()),
                groups: r.groups.map(|g| g as i64),
            })
            .collect(),
        sample: sample(report),
        refused: report
            .refused
            .iter()
            .take(10)
            .map(|r| format!("instance {:?}: {}", r.instance, r.why))
            .collect(),
    }
}

/// Which replicas failed and why, for a condition or an event.
pub fn failed_replicas(report: &SweepReport) -> String {
    report
        .replicas
        .iter()
        .filter(|r| r.state == ReplicaState::Failed)
        .map(|r| match &r.error {
            Some(e) => format!("{}: {}", r.url, e.public()),
            None => r.url.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The status after a sweep.
pub fn swept(
    prev: &PushgatewayRetentionStatus,
    report: &SweepReport,
    generation: Option<i64>,
    next_tick: Option<Timestamp>,
    now: Timestamp,
) -> PushgatewayRetentionStatus {
    let mut s = prev.clone();
    spec_valid(&mut s, generation, now);
    let sum = &report.summary;
    let failed = sum.replicas_failed > 0;
    let degraded = if failed {
        Cond {
            type_: DEGRADED,
            status: true,
            reason: "ReplicaFailed",
            message: format!(
                "{} of {} replicas failed: {}",
                sum.replicas_failed,
                sum.replicas,
                failed_replicas(report)
            ),
        }
    } else {
        Cond {
            type_: DEGRADED,
            status: false,
            reason: "AllReplicasHandled",
            message: format!("all {} replicas were handled", sum.replicas),
        }
    };
    let guard = match &sum.guard {
        Some(g) => Cond {
            type_: GUARD_TRIPPED,
            status: true,
            reason: "GuardTripped",
            message: g.message.clone(),
        },
        None => Cond {
            type_: GUARD_TRIPPED,
            status: false,
            reason: "WithinLimits",
            message: "the last plan was within spec.maxDeletions".into(),
        },
    };
    let ready = match (&sum.guard, failed) {
        (Some(g), _) => Cond {
            type_: READY,
            status: false,
            reason: "GuardTripped",
            message: g.message.clone(),
        },
        (None, true) => Cond {
            type_: READY,
            status: false,
            reason: "ReplicaFailed",
            message: degraded.message.clone(),
        },
        (None, false) => Cond {
            type_: READY,
            status: true,
            reason: "Swept",
            message: format!(
                "{} replicas handled: {} groups seen, {} {}",
                sum.replicas,
                sum.groups_seen,
                if report.dry_run {
                    sum.would_delete
                } else {
                    deleted(report)
                },
                if report.dry_run {
                    "would be deleted (dry run)"
                } else {
                    "deleted"
                }
            ),
        },
    };
    for c in [degraded, guard, ready] {
        set(&mut s.conditions, c, generation, now);
    }
    s.last_sweep = Some(last_sweep(report));
    s.totals.sweeps += 1;
    s.totals.deleted += deleted(report) as i64;
    if failed || sum.guard.is_some() || sum.error.is_some() {
        s.totals.failed_sweeps += 1;
    }
    s.next_scheduled_wipe = next_tick.map(|t| t.to_string());
    s
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
