//! Acting on one replica, step by step: re-plan when the plan went old (`replan.rs`), then wipe
//! (`wipe.rs`) or delete (`delete.rs`), then re-read to confirm each delete (`confirm.rs`). Each
//! step reaches the replica only through [`Remote`].
//!
//! The gateway answers 202 to any well-formed DELETE, even for a group that does not exist: only
//! a re-read tells what really happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::confirm::{confirm, ToConfirm};
use super::delete::{delete, Deleted, Deleting};
use super::remote::Remote;
use super::replan::replan;
use super::wipe::wipe;
use super::{Read, SweepConfig};
use crate::model::Labels;
use crate::plan::{Decision, ReplicaInput};
use crate::progress::Progress;
use crate::report::{Failure, NotSent, Outcome};

pub(crate) use super::acted::Acted;

/// How one replica's decisions ended.
pub(crate) struct ReplicaOutcome {
    pub actions: Vec<Acted>,
    pub replanned: bool,
    pub admin_wiped: bool,
    pub max_window: Option<Duration>,
    /// From the first DELETE (or the wipe) sent to the last confirmed or given up.
    pub deleting: Option<Duration>,
    pub error: Option<Failure>,
}

impl ReplicaOutcome {
    fn empty() -> Self {
        ReplicaOutcome {
            actions: vec![],
            replanned: false,
            admin_wiped: false,
            max_window: None,
            deleting: None,
            error: None,
        }
    }

    /// Every decision ended the same way without acting (dry run, guard).
    pub fn all(decisions: Vec<Decision>, outcome: Outcome) -> Self {
        ReplicaOutcome {
            actions: decisions
                .into_iter()
                .map(|d| Acted::ended(d, outcome, None, None))
                .collect(),
            ..Self::empty()
        }
    }
}

/// What acting on one replica needs: the replica, the sweep, the read the plan was made from,
/// and every replica's planner input (a re-plan needs them all).
pub(crate) struct Job<'a, 'r, R> {
    pub remote: &'a R,
    pub sweep: &'a SweepConfig,
    pub read: &'a Arc<Read>,
    pub index: usize,
    pub inputs: &'a [ReplicaInput<'r>],
}

pub(crate) async fn act_on_replica<R: Remote>(
    job: Job<'_, '_, R>,
    decisions: Vec<Decision>,
    admin_wipe: bool,
    progress: Option<Progress>,
) -> ReplicaOutcome {
    let (remote, sweep, read) = (job.remote, job.sweep, job.read);
    // An unread replica has no decisions (the plan never treats it as empty).
    let Ok(planned_snapshot) = &read.snapshot else {
        return ReplicaOutcome::empty();
    };
    if decisions.is_empty() {
        return ReplicaOutcome::empty();
    }
    // Every later read and every DELETE uses the naming the plan was made with.
    let naming = planned_snapshot.naming;
    let mut outcome = ReplicaOutcome::empty();

    let (mut decisions, mut admin_wipe, mut current) = (decisions, admin_wipe, read.clone());
    if read.started.elapsed() > sweep.tuning.replan_after {
        outcome.replanned = true;
        let Some(fresh) = replan_step(&job, decisions, admin_wipe, &mut outcome).await else {
            return outcome;
        };
        (decisions, admin_wipe, current) = fresh;
    }
    if decisions.is_empty() {
        return outcome;
    }
    let Ok(snapshot) = &current.snapshot else {
        unreachable!("a failed re-read returned above");
    };
    let read_at = current.started;
    let pushes: HashMap<&Labels, f64> = snapshot
        .groups
        .iter()
        .map(|g| (&g.labels, g.push_time))
        .collect();
    let decisions: Vec<(Decision, f64)> = decisions
        .into_iter()
        .map(|d| {
            let push = pushes.get(&d.labels).copied().unwrap_or(0.0);
            (d, push)
        })
        .collect();

    let sent = if admin_wipe {
        wipe_step(remote, sweep, decisions, read_at, &mut outcome).await
    } else {
        let with = Deleting {
            permit: &sweep.permit,
            naming,
            read_at,
            concurrency: sweep.tuning.delete_concurrency,
            fresh_claim: sweep.tuning.confirm_timeout,
            progress: progress.as_ref(),
        };
        delete(remote, with, decisions).await
    };
    outcome.actions.extend(sent.failed);
    outcome.max_window = sent.max_window;
    let timeout = sweep.tuning.confirm_timeout;
    let confirmed = confirm(remote, naming, sent.to_confirm, timeout).await;
    remote.release(&sent.claimed);
    outcome.deleting = sent.first_sent.map(|at| at.elapsed());
    outcome.actions.extend(confirmed);
    outcome
}

/// Re-plans from a fresh read: the decisions still made, whether the wipe still stands, and the
/// read. The ones dropped end `kept`; when the re-read fails, every one fails unsent (`None`).
async fn replan_step<R: Remote>(
    job: &Job<'_, '_, R>,
    decisions: Vec<Decision>,
    admin_wipe: bool,
    outcome: &mut ReplicaOutcome,
) -> Option<(Vec<Decision>, bool, Arc<Read>)> {
    let policy = &job.sweep.policy;
    let (read, index, inputs) = (job.read, job.index, job.inputs);
    match replan(
        job.remote, policy, read, index, inputs, decisions, admin_wipe,
    )
    .await
    {
        Ok(fresh) => {
            let kept = fresh.dropped.into_iter();
            outcome
                .actions
                .extend(kept.map(|d| Acted::ended(d, Outcome::Kept, None, None)));
            Some((fresh.keep, fresh.admin_wipe, fresh.read))
        }
        Err((error, decisions)) => {
            outcome.error = Some(error);
            let why = Some(NotSent::ReReadFailed);
            outcome.actions.extend(
                decisions
                    .into_iter()
                    .map(|d| Acted::ended(d, Outcome::Failed, Some("not attempted".into()), why)),
            );
            None
        }
    }
}

/// Wipes instead of deleting: every decision is then confirmed, or fails as the wipe did.
async fn wipe_step<R: Remote>(
    remote: &R,
    sweep: &SweepConfig,
    decisions: Vec<(Decision, f64)>,
    read_at: Instant,
    outcome: &mut ReplicaOutcome,
) -> Deleted {
    let wiped = wipe(remote, &sweep.permit).await;
    outcome.admin_wiped = wiped.ok();
    let mut sent = Deleted {
        first_sent: wiped.sent,
        max_window: wiped.sent.map(|at| at.saturating_duration_since(read_at)),
        ..Deleted::default()
    };
    match wiped.error {
        Some((error, not_sent)) => {
            outcome.error = Some(error.clone());
            sent.failed = decisions
                .into_iter()
                .map(|(d, _)| Acted::ended(d, Outcome::Failed, Some(error.clone()), not_sent))
                .collect();
        }
        None => {
            sent.to_confirm = decisions
                .into_iter()
                .map(|(decision, push)| ToConfirm {
                    decision,
                    push,
                    not_sent: None,
                })
                .collect();
        }
    }
    sent
}
