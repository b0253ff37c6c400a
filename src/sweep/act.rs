//! Acting on one replica: re-plan when the plan went old, delete on the replica's shared budget
//! (paced to the gateway, backing off while its write queue is full) or wipe, then re-read to
//! confirm each delete. Re-reads go through the engine, so policies confirming on one replica at
//! the same time share them; a delete another policy just sent for the same copy is not sent
//! again.
//!
//! The gateway answers 202 to any well-formed DELETE, even for a group that does not exist: only
//! a re-read tells what really happened.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};

use super::confirm::{confirm, Confirm};
use super::{Read, SweepConfig, NOT_ATTEMPTED};
use crate::engine::{Access, Engine};
use crate::http::redact_url;
use crate::model::{KeyIndex, Labels, Source};
use crate::plan::{self, Decision, ReplicaInput};
use crate::progress::Progress;
use crate::report::{Failure, NotSent, Outcome};
use crate::Error;

/// How one replica's decisions ended: each with its error, and why it was not sent if it was not.
pub(crate) struct ReplicaOutcome {
    pub actions: Vec<(Decision, Outcome, Option<Failure>, Option<NotSent>)>,
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

    pub fn all(decisions: Vec<Decision>, outcome: Outcome) -> Self {
        ReplicaOutcome {
            actions: decisions
                .into_iter()
                .map(|d| (d, outcome, None, None))
                .collect(),
            ..Self::empty()
        }
    }
}

/// What acting on one replica needs: the engine and credentials for its IO, the sweep, the read
/// the plan was made from, and every replica's planner input (a re-plan needs them all).
pub(crate) struct Job<'a, 'r> {
    pub engine: &'a Engine,
    pub access: &'a Access,
    pub sweep: &'a SweepConfig,
    pub read: &'a Arc<Read>,
    pub index: usize,
    pub inputs: &'a [ReplicaInput<'r>],
}

/// Why a DELETE failed, and why it was not sent when it was not.
type Unsent = (Failure, Option<NotSent>);

/// A re-read wanted "now" may use one that started this long ago: policies re-reading one
/// replica at the same moment then share it.
const SAME_MOMENT: Duration = Duration::from_millis(500);

/// No answer at all (refused, reset, timed out): the replica is gone for this sweep.
fn unreachable(e: &Error) -> bool {
    matches!(e, Error::Http { .. } | Error::Timeout { .. })
}

fn unanswered(first: &Failure) -> Unsent {
    let say = |e: &str| format!("not attempted: the replica stopped answering ({e})");
    let failure = Failure::both(say(first.detail()), say(first.public()));
    (failure, Some(NotSent::ReplicaStoppedAnswering))
}

/// The permit was withdrawn before the DELETE went out.
fn lost() -> Unsent {
    (NOT_ATTEMPTED.into(), Some(NotSent::LeadershipLost))
}

/// The replica's health check never let the DELETE through (write queue full, or no answer).
fn unhealthy(e: Failure) -> Unsent {
    (e, Some(NotSent::Unhealthy))
}

/// Does this error say the gateway is pressed (a 5xx, no answer), so the pace should fall? A 4xx
/// is about the request, not the load.
pub(super) fn pressed(e: &Error) -> bool {
    !matches!(e, Error::Status { status, .. } if *status < 500)
}

pub(crate) async fn act_on_replica(
    job: Job<'_, '_>,
    decisions: Vec<Decision>,
    admin_wipe: bool,
    progress: Option<Progress>,
) -> ReplicaOutcome {
    let Job {
        engine,
        access,
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
    let gateway = &read.gateway;
    let replica = engine.replica(gateway);
    let ttl_metric = sweep.policy.ttl_from_metric.as_deref();
    // Every later read and every DELETE uses the naming the plan was made with.
    let naming = planned_snapshot.naming;
    let mut outcome = ReplicaOutcome::empty();

    // A big store takes long to read: if the plan is old, re-read this replica and keep only the
    // decisions a fresh plan still makes, so a group pushed in between is not deleted.
    let mut decisions = decisions;
    let mut admin_wipe = admin_wipe;
    let mut current: Arc<Read> = read.clone();
    if read.started.elapsed() > sweep.tuning.replan_after {
        outcome.replanned = true;
        // Newer than the planned read in any case: a re-plan from the same read is no re-plan.
        let since = Instant::now()
            .checked_sub(SAME_MOMENT)
            .unwrap_or_else(Instant::now)
            .max(read.started + Duration::from_nanos(1));
        let fresh = engine
            .read(gateway, access, ttl_metric, Source::Metrics, since, false)
            .await;
        match &fresh.snapshot {
            Ok(snapshot) => {
                let mut replanned_inputs: Vec<ReplicaInput<'_>> = inputs.to_vec();
                replanned_inputs[index].snapshot = Some(snapshot);
                let new_plan = plan::plan(&sweep.policy, &replanned_inputs);
                admin_wipe = admin_wipe && new_plan.replicas[index].admin_wipe;
                let (keep, drop) = still_planned(decisions, &new_plan.replicas[index].deletes);
                tracing::info!(
                    gateway = %redact_url(gateway.url()),
                    dropped = drop.len(),
                    "plan was old: re-read and re-planned before deleting"
                );
                outcome
                    .actions
                    .extend(drop.into_iter().map(|d| (d, Outcome::Kept, None, None)));
                decisions = keep;
            }
            Err(e) => {
                outcome.error = Some(Failure::of("re-read before deleting failed", e));
                outcome.actions.extend(decisions.into_iter().map(|d| {
                    let why = Some(NotSent::ReReadFailed);
                    (d, Outcome::Failed, Some("not attempted".into()), why)
                }));
                return outcome;
            }
        }
        current = fresh;
    }
    if decisions.is_empty() {
        return outcome;
    }
    let Ok(snapshot) = &current.snapshot else {
        unreachable!("a failed re-read returned above");
    };
    let snapshot_started = current.started;
    let planned_push: HashMap<&Labels, f64> = snapshot
        .groups
        .iter()
        .map(|g| (&g.labels, g.push_time))
        .collect();
    let push_of = |d: &Decision| planned_push.get(&d.labels).copied().unwrap_or(0.0);

    let mut pending: Vec<(Decision, f64)> = Vec::new();
    // The deletes this sweep claimed on the replica, released once confirmed.
    let claimed: std::sync::Mutex<Vec<Labels>> = Default::default();
    let first_sent: OnceLock<Instant> = OnceLock::new();
    if admin_wipe {
        let mut not_sent = None;
        if let Err(e) = replica.budget.wait_healthy(gateway).await {
            outcome.error = Some(e);
            not_sent = Some(NotSent::Unhealthy);
        } else if !sweep.permit.may_act() {
            outcome.error = Some(NOT_ATTEMPTED.into());
            not_sent = Some(NotSent::LeadershipLost);
        } else {
            outcome.max_window = Some(snapshot_started.elapsed());
            let _ = first_sent.set(Instant::now());
            match gateway.wipe().await {
                Ok(()) => outcome.admin_wiped = true,
                Err(e) => outcome.error = Some(Failure::of("admin wipe failed", &e)),
            }
        }
        for d in decisions {
            if outcome.admin_wiped {
                let push = push_of(&d);
                pending.push((d, push));
            } else {
                let error = outcome.error.clone();
                outcome.actions.push((d, Outcome::Failed, error, not_sent));
            }
        }
    } else {
        let budget = &replica.budget;
        let replica = &replica;
        let fresh_claim = sweep.tuning.confirm_timeout;
        // The first DELETE that got no answer at all: the rest are not sent to a replica that
        // stopped answering (each would only wait for its own timeout).
        let gone: OnceLock<Failure> = OnceLock::new();
        let gone = &gone;
        let claimed = &claimed;
        let first_sent = &first_sent;
        let results: Vec<(Decision, Duration, Result<(), Unsent>)> = stream::iter(decisions)
            .map(|d| {
                let progress = progress.as_ref();
                let push = push_of(&d);
                async move {
                    // Asked before the pacing wait too, so the rest of a lost sweep ends at once.
                    let permitted = || sweep.permit.may_act();
                    if !permitted() {
                        return (d, snapshot_started.elapsed(), Err(lost()));
                    }
                    if let Some(e) = gone.get() {
                        return (d, snapshot_started.elapsed(), Err(unanswered(e)));
                    }
                    let ticket = match budget.acquire(gateway).await {
                        Ok(t) => t,
                        Err(e) => return (d, snapshot_started.elapsed(), Err(unhealthy(e))),
                    };
                    if !permitted() {
                        return (d, snapshot_started.elapsed(), Err(lost()));
                    }
                    // Another policy sent this very delete moments ago: confirm it, don't repeat it.
                    if !replica.claim_delete(&d.labels, push, snapshot_started, fresh_claim) {
                        drop(ticket);
                        if let Some(p) = progress {
                            p.add(1);
                        }
                        return (d, snapshot_started.elapsed(), Ok(()));
                    }
                    claimed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(d.labels.clone());
                    let window = snapshot_started.elapsed();
                    let _ = first_sent.get_or_init(Instant::now);
                    // A key whose instance may be absent or empty is deleted as the first (the
                    // common case); the confirmation deletes its twin if the copy stays.
                    let result = gateway.delete(&d.labels, naming).await;
                    budget.answered(ticket, result.as_ref().err().is_none_or(|e| !pressed(e)));
                    if let Err(e) = &result {
                        if unreachable(e) {
                            let _ = gone.set(Failure::from(e));
                        }
                    }
                    if let Some(p) = progress {
                        p.add(1);
                    }
                    (d, window, result.map_err(|e| (Failure::from(&e), None)))
                }
            })
            .buffer_unordered(sweep.tuning.delete_concurrency)
            .collect()
            .await;
        for (d, window, result) in results {
            match result {
                Ok(()) => {
                    outcome.max_window = Some(outcome.max_window.map_or(window, |w| w.max(window)));
                    let push = push_of(&d);
                    pending.push((d, push));
                }
                Err((e, why)) => outcome.actions.push((d, Outcome::Failed, Some(e), why)),
            }
        }
    }
    let confirmed = confirm(
        Confirm {
            engine,
            access,
            gateway,
            budget: &replica.budget,
            ttl_metric,
            naming,
        },
        pending,
        sweep.tuning.confirm_timeout,
    )
    .await;
    replica.release_deletes(
        claimed
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .iter(),
    );
    outcome.deleting = first_sent.get().map(Instant::elapsed);
    // Each went out: sent by this sweep, or by another policy's moments before (claimed).
    let confirmed = confirmed.into_iter().map(|(d, o, e)| (d, o, e, None));
    outcome.actions.extend(confirmed);
    outcome
}

/// The old plan's decisions that a fresh plan still makes, as the fresh plan made them (its key,
/// read from the fresh snapshot, is what the deletes and the confirmation look up), and those it
/// no longer makes. Keys are matched whichever way each read was made (`/metrics` or JSON).
fn still_planned(old: Vec<Decision>, fresh: &[Decision]) -> (Vec<Decision>, Vec<Decision>) {
    let index = KeyIndex::new(fresh.iter().map(|d| (&d.labels, d.instance_unsure, 0.0)));
    let mut taken = HashSet::new();
    let mut keep = Vec::new();
    let mut drop = Vec::new();
    for d in old {
        match index.find(&d.labels, d.instance_unsure) {
            Some((at, _)) => {
                if taken.insert(at) {
                    keep.push(fresh[at].clone());
                }
            }
            None => drop.push(d),
        }
    }
    (keep, drop)
}
