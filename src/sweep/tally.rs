//! The report of a sweep: one line per replica, one per decision with its outcome, the summary
//! and the exit code. Also the delete log: one line per delete sent, once its outcome is known.

use std::sync::Arc;
use std::time::Duration;

use super::act::ReplicaOutcome;
use super::acted::Acted;
use super::{Read, SweepConfig};
use crate::discover::Refused;
use crate::guard::GuardTrip;
use crate::http::redact_url;
use crate::plan::{Plan, ReplicaPlan};
use crate::report::{
    exit, ActionReport, Failure, GuardReport, NotSent, Outcome, ReplicaReport, ReplicaState,
    Summary, SweepReport,
};
use crate::selector::format_labels;

/// Everything a sweep found and did, in the order of the replicas.
pub(super) struct Tally<'a> {
    pub started_at: jiff::Timestamp,
    pub duration: Duration,
    pub reads: &'a [Arc<Read>],
    pub plan: &'a Plan,
    pub outcomes: Vec<ReplicaOutcome>,
    pub notes: Vec<String>,
    pub refused: Vec<Refused>,
    pub guard_trip: Option<GuardTrip>,
    pub groups_seen: usize,
    pub planned: usize,
}

pub(super) fn report(sweep: &SweepConfig, tally: Tally<'_>) -> SweepReport {
    let Tally {
        started_at,
        duration,
        reads,
        plan,
        outcomes,
        notes,
        refused,
        guard_trip,
        groups_seen,
        planned,
    } = tally;
    let mut replicas = Vec::with_capacity(reads.len());
    let mut actions = Vec::new();
    for ((read, rp), outcome) in reads.iter().zip(&plan.replicas).zip(outcomes) {
        let replica = replica_report(read, rp, &outcome);
        for acted in outcome.actions {
            log_delete(&sweep.name, &replica.url, replica.admin_wipe, &acted);
            actions.push(action_report(&replica.url, acted));
        }
        replicas.push(replica);
    }
    for r in &replicas {
        // The window a push landing on this replica could be lost in (no conditional delete).
        tracing::debug!(
            gateway = %r.url,
            state = ?r.state,
            groups = r.groups,
            read_seconds = r.read_seconds,
            max_delete_window_seconds = r.max_delete_window_seconds,
            "replica swept"
        );
    }
    let mut report = SweepReport {
        started_at: started_at.to_string(),
        duration_seconds: duration.as_secs_f64(),
        dry_run: sweep.dry_run,
        action: sweep.action_name(),
        replicas,
        actions,
        notes,
        refused,
        summary: Summary::default(),
    };
    report.summary = summary(&report, guard_trip, groups_seen, planned);
    report
}

/// One replica's line: failed when it could not be read, when some of its deletes failed or
/// stayed unconfirmed, or when acting on it failed.
fn replica_report(read: &Read, rp: &ReplicaPlan, outcome: &ReplicaOutcome) -> ReplicaReport {
    let (groups, unkeyed, mut error) = match &read.snapshot {
        Ok(s) => (Some(s.groups.len()), s.unkeyed.len(), None),
        Err(e) => (None, 0, Some(Failure::from(e))),
    };
    let troubled = outcome
        .actions
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Failed | Outcome::Unconfirmed))
        .count();
    if error.is_none() && troubled > 0 {
        error = Some(format!("{troubled} deletes failed or unconfirmed").into());
    }
    if error.is_none() {
        error = outcome.error.clone();
    }
    let status = read.status.as_ref();
    ReplicaReport {
        url: redact_url(read.gateway.url()),
        state: if error.is_some() {
            ReplicaState::Failed
        } else {
            ReplicaState::Ok
        },
        error,
        groups,
        unkeyed_groups: unkeyed,
        version: status.and_then(|s| s.version.clone()),
        admin_api: status.map(|s| s.admin_api),
        admin_wipe: rp.admin_wipe && outcome.admin_wiped,
        replanned: outcome.replanned,
        read_seconds: Some(read.seconds),
        max_delete_window_seconds: outcome.max_window.map(|d| d.as_secs_f64()),
        delete_seconds: outcome.deleting.map(|d| d.as_secs_f64()),
        start_time: status.and_then(|s| s.start_time.clone()),
        restarted: None,
    }
}

fn action_report(gateway: &str, acted: Acted) -> ActionReport {
    let Acted {
        decision,
        outcome,
        error,
        not_sent,
    } = acted;
    ActionReport {
        gateway: gateway.to_string(),
        labels: decision.labels,
        reason: decision.reason,
        age_seconds: decision.age_seconds,
        outcome,
        detail: decision.detail,
        error,
        not_sent,
    }
}

fn summary(
    report: &SweepReport,
    guard_trip: Option<GuardTrip>,
    groups_seen: usize,
    planned: usize,
) -> Summary {
    let failed = report
        .replicas
        .iter()
        .filter(|r| r.state == ReplicaState::Failed)
        .count();
    let guard = guard_trip.map(|t| GuardReport {
        limit: t.limit,
        planned: t.planned,
        allowed: t.allowed,
        message: t.message,
    });
    let exit_code = if guard.is_some() {
        exit::GUARD
    } else if failed > 0 {
        exit::REPLICA_FAILED
    } else {
        exit::OK
    };
    Summary {
        replicas: report.replicas.len(),
        replicas_failed: failed,
        groups_seen,
        planned,
        deleted: report.count(Outcome::Deleted),
        would_delete: report.count(Outcome::WouldDelete),
        repushed: report.count(Outcome::Repushed),
        unconfirmed: report.count(Outcome::Unconfirmed),
        failed: report.count(Outcome::Failed),
        kept: report.count(Outcome::Kept),
        refused: report.refused.len(),
        guard,
        error: None,
        exit_code,
    }
}

/// One line per delete the janitor sent (or tried to send), once its outcome is known, at the
/// default level: `kubectl logs ... | jq` tells who deleted what, and why. A dry run, a guard
/// abort, a group kept on re-planning and one not attempted (leadership lost) sent nothing, and
/// log nothing here.
fn log_delete(policy: &str, replica: &str, admin_wipe: bool, acted: &Acted) {
    if matches!(
        acted.outcome,
        Outcome::WouldDelete | Outcome::Aborted | Outcome::Kept
    ) || acted.not_sent == Some(NotSent::LeadershipLost)
    {
        return;
    }
    let decision = &acted.decision;
    tracing::info!(
        policy,
        replica,
        group = %format_labels(&decision.labels),
        reason = decision.reason.as_str(),
        age_seconds = decision.age_seconds,
        outcome = acted.outcome.as_str(),
        admin_wipe,
        error = acted.error.as_deref(),
        "group delete"
    );
}
