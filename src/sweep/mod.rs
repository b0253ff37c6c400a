//! A sweep: read every replica, plan, guard, act, report, for one policy's [`SweepConfig`], on
//! the shared [`Engine`] (which owns the replicas and their IO). The three front doors (the
//! one-shot CLI, the policy-file loop, the controller) all run this and decide nothing themselves.

mod act;
mod confirm;
mod restarts;

pub use crate::config::{Permit, SweepConfig, NOT_ATTEMPTED};
pub use crate::tuning::Tuning;
pub use restarts::StartTimes;

use std::time::Instant;

use futures::{stream, StreamExt};

use crate::discover::Discovered;
use crate::engine::{plan_inputs, read_all, Access, Engine};
use crate::guard;
use crate::http::redact_url;
use crate::model::Source;
use crate::plan;
use crate::progress::Progress;
use crate::report::{
    exit, ActionReport, Failure, GuardReport, NotSent, Outcome, ReplicaReport, ReplicaState,
    Summary, SweepReport,
};
use crate::selector::format_labels;

pub(crate) use crate::engine::Read;

/// One line per delete the janitor sent (or tried to send), once its outcome is known, at the
/// default level: `kubectl logs ... | jq` tells who deleted what, and why. A dry run, a guard
/// abort, a group kept on re-planning and one not attempted (leadership lost) sent nothing, and
/// log nothing here.
fn log_delete(
    policy: &str,
    replica: &str,
    admin_wipe: bool,
    decision: &plan::Decision,
    outcome: Outcome,
    error: Option<&str>,
    not_sent: Option<NotSent>,
) {
    if matches!(
        outcome,
        Outcome::WouldDelete | Outcome::Aborted | Outcome::Kept
    ) || not_sent == Some(NotSent::LeadershipLost)
    {
        return;
    }
    tracing::info!(
        policy,
        replica,
        group = %format_labels(&decision.labels),
        reason = decision.reason.as_str(),
        age_seconds = decision.age_seconds,
        outcome = outcome.as_str(),
        admin_wipe,
        error,
        "group delete"
    );
}

/// Runs one sweep over the replicas found. Never panics on a replica's failure: it is reported
/// and the others go on. What discovery refused is reported as it is, and changes nothing else.
pub async fn run(
    engine: &Engine,
    sweep: &SweepConfig,
    access: &Access,
    found: Discovered,
) -> SweepReport {
    let started_at = jiff::Timestamp::now();
    let clock = Instant::now();
    let Discovered { replicas, refused } = found;
    if replicas.is_empty() {
        let mut report = sweep.empty_report(
            started_at,
            0.0,
            "no gateway replica found: nothing was swept".into(),
        );
        report.summary.refused = refused.len();
        report.refused = refused;
        return report;
    }
    let ttl_metric = sweep.policy.ttl_from_metric.as_deref();
    let reads = read_all(
        engine,
        replicas,
        access,
        &sweep.tuning,
        ttl_metric,
        Source::Metrics,
    )
    .await;
    let inputs = plan_inputs(&reads);
    let the_plan = plan::plan(&sweep.policy, &inputs);
    let groups_seen: usize = reads
        .iter()
        .filter_map(|r| r.snapshot.as_ref().ok())
        .map(|s| s.groups.len() + s.unkeyed.len())
        .sum();
    let planned = the_plan.total_deletes();
    let mut notes: Vec<String> = Vec::new();
    for (read, rp) in reads.iter().zip(&the_plan.replicas) {
        for note in &rp.notes {
            notes.push(format!("{}: {note}", redact_url(read.gateway.url())));
        }
    }

    let guard_trip = guard::check(&sweep.limits, planned as u64, groups_seen as u64).err();
    if let Some(trip) = &guard_trip {
        tracing::warn!(message = %trip.message, "guard tripped: nothing deleted");
    }

    // Act on every replica at once; each paces itself.
    let tripped = guard_trip.is_some();
    // The futures are made before they are streamed: a closure over borrowed reads inside
    // `stream.map` makes the whole sweep future fail the `Send` check (a higher-ranked lifetime
    // limitation of rustc), and the controller runs sweeps on spawned tasks.
    let deleting = (!tripped && !sweep.dry_run && planned > 0)
        .then(|| Progress::start("delete".into(), Some(planned as u64), "groups"));
    let acts: Vec<_> = reads
        .iter()
        .enumerate()
        .map(|(i, read)| {
            let decisions = the_plan.replicas[i].deletes.clone();
            let admin_wipe = the_plan.replicas[i].admin_wipe;
            let inputs = &inputs;
            let progress = deleting.clone();
            async move {
                if tripped {
                    return act::ReplicaOutcome::all(decisions, Outcome::Aborted);
                }
                if sweep.dry_run {
                    return act::ReplicaOutcome::all(decisions, Outcome::WouldDelete);
                }
                let job = act::Job {
                    engine,
                    access,
                    sweep,
                    read,
                    index: i,
                    inputs,
                };
                act::act_on_replica(job, decisions, admin_wipe, progress).await
            }
        })
        .collect();
    let outcomes: Vec<act::ReplicaOutcome> = stream::iter(acts)
        .buffered(sweep.tuning.read_concurrency)
        .collect()
        .await;
    drop(deleting);

    let mut replica_reports = Vec::with_capacity(reads.len());
    let mut actions = Vec::new();
    for ((read, rp), outcome) in reads.iter().zip(&the_plan.replicas).zip(outcomes) {
        let url = redact_url(read.gateway.url());
        let (groups, unkeyed, mut error) = match &read.snapshot {
            Ok(s) => (Some(s.groups.len()), s.unkeyed.len(), None),
            Err(e) => (None, 0, Some(Failure::from(e))),
        };
        let troubled = outcome
            .actions
            .iter()
            .filter(|(_, o, ..)| matches!(o, Outcome::Failed | Outcome::Unconfirmed))
            .count();
        if error.is_none() && troubled > 0 {
            error = Some(format!("{troubled} deletes failed or unconfirmed").into());
        }
        if error.is_none() {
            error = outcome.error.clone();
        }
        replica_reports.push(ReplicaReport {
            url: url.clone(),
            state: if error.is_some() {
                ReplicaState::Failed
            } else {
                ReplicaState::Ok
            },
            error,
            groups,
            unkeyed_groups: unkeyed,
            version: read.status.as_ref().and_then(|s| s.version.clone()),
            admin_api: read.status.as_ref().map(|s| s.admin_api),
            admin_wipe: rp.admin_wipe && outcome.admin_wiped,
            replanned: outcome.replanned,
            read_seconds: Some(read.seconds),
            max_delete_window_seconds: outcome.max_window.map(|d| d.as_secs_f64()),
            delete_seconds: outcome.deleting.map(|d| d.as_secs_f64()),
            start_time: read.status.as_ref().and_then(|s| s.start_time.clone()),
            restarted: None,
        });
        let admin_wipe = rp.admin_wipe && outcome.admin_wiped;
        for (decision, outcome, error, not_sent) in outcome.actions {
            log_delete(
                &sweep.name,
                &url,
                admin_wipe,
                &decision,
                outcome,
                error.as_deref(),
                not_sent,
            );
            actions.push(ActionReport {
                gateway: url.clone(),
                labels: decision.labels,
                reason: decision.reason,
                age_seconds: decision.age_seconds,
                outcome,
                detail: decision.detail,
                error,
                not_sent,
            });
        }
    }

    for r in &replica_reports {
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
        duration_seconds: clock.elapsed().as_secs_f64(),
        dry_run: sweep.dry_run,
        action: sweep.action_name(),
        replicas: replica_reports,
        actions,
        notes,
        refused,
        summary: Summary::default(),
    };
    let failed = report
        .replicas
        .iter()
        .filter(|r| r.state == ReplicaState::Failed)
        .count();
    report.summary = Summary {
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
        guard: guard_trip.map(|t| GuardReport {
            limit: t.limit,
            planned: t.planned,
            allowed: t.allowed,
            message: t.message,
        }),
        error: None,
        exit_code: 0,
    };
    report.summary.exit_code = if report.summary.guard.is_some() {
        exit::GUARD
    } else if failed > 0 {
        exit::REPLICA_FAILED
    } else {
        exit::OK
    };
    report
}
