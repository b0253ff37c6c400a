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
use super::delete::{delete, Deleting};
use super::remote::Remote;
use super::replan::replan;
use super::wipe::wipe;
use super::{Read, Sweep};
use crate::model::Labels;
use crate::plan::{Decision, ReplicaInput};
use crate::progress::Progress;
use crate::report::{Failure, NotSent, Outcome};

/// How one decision ended: its outcome, its error, and why it was not sent if it was not.
#[derive(Debug, Clone)]
pub(crate) struct Acted {
    pub decision: Decision,
    pub outcome: Outcome,
    pub error: Option<Failure>,
    pub not_sent: Option<NotSent>,
}

/// Why a DELETE failed, and why it was not sent when it was not.
pub(super) type Unsent = (Failure, Option<NotSent>);

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
                .map(|decision| Acted {
                    decision,
                    outcome,
                    error: None,
                    not_sent: None,
                })
                .collect(),
            ..Self::empty()
        }
    }
}

/// What acting on one replica needs: the replica, the sweep, the read the plan was made from,
/// and every replica's planner input (a re-plan needs them all).
pub(crate) struct Job<'a, 'r, R> {
    pub remote: &'a R,
    pub sweep: &'a Sweep,
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
    let Job {
        remote,
        sweep,
        read,
        index,
        inputs,
    } = job;
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
        let policy = &sweep.policy;
        match replan(remote, policy, read, index, inputs, decisions, admin_wipe).await {
            Ok(fresh) => {
                outcome.actions.extend(fresh.dropped.into_iter().map(|d| {
                    let (error, not_sent) = (None, None);
                    Acted {
                        decision: d,
                        outcome: Outcome::Kept,
                        error,
                        not_sent,
                    }
                }));
                (decisions, admin_wipe, current) = (fresh.keep, fresh.admin_wipe, fresh.read);
            }
            Err((error, decisions)) => {
                outcome.error = Some(error);
                outcome.actions.extend(decisions.into_iter().map(|d| Acted {
                    decision: d,
                    outcome: Outcome::Failed,
                    error: Some("not attempted".into()),
                    not_sent: Some(NotSent::ReReadFailed),
                }));
                return outcome;
            }
        }
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
    let with_push = |d: Decision| {
        let push = pushes.get(&d.labels).copied().unwrap_or(0.0);
        (d, push)
    };

    // What to confirm, the copies claimed (released once confirmed) and when the first request
    // went out.
    let (to_confirm, claimed, first_sent): (Vec<ToConfirm>, Vec<Labels>, Option<Instant>);
    if admin_wipe {
        let wiped = wipe(remote, &sweep.permit).await;
        (claimed, first_sent) = (vec![], wiped.sent);
        outcome.max_window = wiped.sent.map(|at| at.saturating_duration_since(read_at));
        outcome.admin_wiped = wiped.ok();
        if let Some((error, not_sent)) = wiped.error {
            outcome.error = Some(error.clone());
            outcome.actions.extend(decisions.into_iter().map(|d| Acted {
                decision: d,
                outcome: Outcome::Failed,
                error: Some(error.clone()),
                not_sent,
            }));
            to_confirm = vec![];
        } else {
            let sent = |(decision, push)| ToConfirm {
                decision,
                push,
                not_sent: None,
            };
            to_confirm = decisions.into_iter().map(with_push).map(sent).collect();
        }
    } else {
        let with = Deleting {
            permit: &sweep.permit,
            naming,
            read_at,
            concurrency: sweep.tuning.delete_concurrency,
            fresh_claim: sweep.tuning.confirm_timeout,
            progress: progress.as_ref(),
        };
        let deleted = delete(remote, with, decisions.into_iter().map(with_push).collect()).await;
        outcome.actions.extend(deleted.failed);
        outcome.max_window = deleted.max_window;
        (to_confirm, claimed, first_sent) =
            (deleted.to_confirm, deleted.claimed, deleted.first_sent);
    }
    let confirmed = confirm(remote, naming, to_confirm, sweep.tuning.confirm_timeout).await;
    remote.release(&claimed);
    outcome.deleting = first_sent.map(|at| at.elapsed());
    outcome.actions.extend(confirmed);
    outcome
}
