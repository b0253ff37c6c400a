//! Acting on one replica: re-plan when the plan went old, delete at a bounded pace (backing off
//! while the write queue is full) or wipe, then re-read to confirm each delete.
//!
//! The gateway answers 202 to any well-formed DELETE, even for a group that does not exist: only
//! a re-read tells what really happened.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use tokio::sync::Mutex;

use super::{Read, Sweep, NOT_ATTEMPTED};
use crate::gateway::Gateway;
use crate::http::redact_url;
use crate::model::{Labels, Naming, Snapshot};
use crate::plan::{self, Decision, ReplicaInput};
use crate::progress::Progress;
use crate::report::Outcome;

/// How one replica's decisions ended.
pub(crate) struct ReplicaOutcome {
    pub actions: Vec<(Decision, Outcome, Option<String>)>,
    pub replanned: bool,
    pub admin_wiped: bool,
    pub max_window: Option<Duration>,
    pub error: Option<String>,
}

impl ReplicaOutcome {
    fn empty() -> Self {
        ReplicaOutcome {
            actions: vec![],
            replanned: false,
            admin_wiped: false,
            max_window: None,
            error: None,
        }
    }

    pub fn all(decisions: Vec<Decision>, outcome: Outcome) -> Self {
        ReplicaOutcome {
            actions: decisions.into_iter().map(|d| (d, outcome, None)).collect(),
            ..Self::empty()
        }
    }
}

pub(crate) async fn act_on_replica(
    sweep: &Sweep,
    read: &Read,
    index: usize,
    inputs: &[ReplicaInput<'_>],
    decisions: Vec<Decision>,
    admin_wipe: bool,
    progress: Option<Progress>,
) -> ReplicaOutcome {
    // An unread replica has no decisions (the plan never treats it as empty).
    let Ok(planned_snapshot) = &read.snapshot else {
        return ReplicaOutcome::empty();
    };
    if decisions.is_empty() {
        return ReplicaOutcome::empty();
    }
    let gateway = &read.gateway;
    let ttl_metric = sweep.policy.ttl_from_metric.as_deref();
    // Every later read and every DELETE uses the naming the plan was made with.
    let naming = planned_snapshot.naming;
    let mut outcome = ReplicaOutcome::empty();

    // A big store takes long to read: if the plan is old, re-read this replica and keep only the
    // decisions a fresh plan still makes, so a group pushed in between is not deleted.
    let mut decisions = decisions;
    let mut snapshot_started = read.started;
    let mut admin_wipe = admin_wipe;
    let fresh;
    let mut snapshot: &Snapshot = planned_snapshot;
    if read.started.elapsed() > sweep.tuning.replan_after {
        outcome.replanned = true;
        let started = Instant::now();
        match gateway.read(ttl_metric, naming).await {
            Ok(s) => {
                fresh = s;
                snapshot = &fresh;
                snapshot_started = started;
                let mut replanned_inputs: Vec<ReplicaInput<'_>> = inputs.to_vec();
                replanned_inputs[index].snapshot = Some(snapshot);
                let new_plan = plan::plan(&sweep.policy, &replanned_inputs);
                let still: HashSet<&Labels> = new_plan.replicas[index]
                    .deletes
                    .iter()
                    .map(|d| &d.labels)
                    .collect();
                admin_wipe = admin_wipe && new_plan.replicas[index].admin_wipe;
                let (keep, drop): (Vec<_>, Vec<_>) = decisions
                    .into_iter()
                    .partition(|d| still.contains(&d.labels));
                tracing::info!(
                    gateway = %redact_url(gateway.url()),
                    dropped = drop.len(),
                    "plan was old: re-read and re-planned before deleting"
                );
                outcome
                    .actions
                    .extend(drop.into_iter().map(|d| (d, Outcome::Kept, None)));
                decisions = keep;
            }
            Err(e) => {
                outcome.error = Some(format!("re-read before deleting failed: {e}"));
                outcome.actions.extend(
                    decisions
                        .into_iter()
                        .map(|d| (d, Outcome::Failed, Some("not attempted".to_string()))),
                );
                return outcome;
            }
        }
    }
    if decisions.is_empty() {
        return outcome;
    }

    let planned_push: HashMap<&Labels, f64> = snapshot
        .groups
        .iter()
        .map(|g| (&g.labels, g.push_time))
        .collect();

    let mut pending: Vec<(Decision, f64)> = Vec::new();
    if admin_wipe {
        if let Err(e) = wait_healthy(gateway, sweep.tuning.unhealthy_wait).await {
            outcome.error = Some(e);
        } else if !sweep.permit.may_act() {
            outcome.error = Some(NOT_ATTEMPTED.into());
        } else {
            outcome.max_window = Some(snapshot_started.elapsed());
            match gateway.wipe().await {
                Ok(()) => outcome.admin_wiped = true,
                Err(e) => outcome.error = Some(format!("admin wipe failed: {e}")),
            }
        }
        for d in decisions {
            if outcome.admin_wiped {
                let push = planned_push.get(&d.labels).copied().unwrap_or(0.0);
                pending.push((d, push));
            } else {
                outcome
                    .actions
                    .push((d, Outcome::Failed, outcome.error.clone()));
            }
        }
    } else {
        let pacer = Pacer::new(
            gateway,
            sweep.tuning.delete_rate,
            sweep.tuning.unhealthy_wait,
        );
        let results: Vec<(Decision, Duration, Result<(), String>)> = stream::iter(decisions)
            .map(|d| {
                let pacer = &pacer;
                let progress = progress.as_ref();
                async move {
                    // Asked before the pacing wait too, so the rest of a lost sweep ends at once.
                    let permitted = || sweep.permit.may_act();
                    if !permitted() {
                        return (d, snapshot_started.elapsed(), Err(NOT_ATTEMPTED.into()));
                    }
                    if let Err(e) = pacer.before_delete().await {
                        return (d, snapshot_started.elapsed(), Err(e));
                    }
                    if !permitted() {
                        return (d, snapshot_started.elapsed(), Err(NOT_ATTEMPTED.into()));
                    }
                    let window = snapshot_started.elapsed();
                    let result = gateway
                        .delete(&d.labels, naming)
                        .await
                        .map_err(|e| e.to_string());
                    if let Some(p) = progress {
                        p.add(1);
                    }
                    (d, window, result)
                }
            })
            .buffer_unordered(sweep.tuning.delete_concurrency)
            .collect()
            .await;
        for (d, window, result) in results {
            match result {
                Ok(()) => {
                    outcome.max_window = Some(outcome.max_window.map_or(window, |w| w.max(window)));
                    let push = planned_push.get(&d.labels).copied().unwrap_or(0.0);
                    pending.push((d, push));
                }
                Err(e) => outcome.actions.push((d, Outcome::Failed, Some(e))),
            }
        }
    }
    let confirmed = confirm(
        gateway,
        ttl_metric,
        naming,
        pending,
        sweep.tuning.confirm_timeout,
    )
    .await;
    outcome.actions.extend(confirmed);
    outcome
}

/// Re-reads the replica until every deleted group is gone or pushed again, within `timeout`.
async fn confirm(
    gateway: &Gateway,
    ttl_metric: Option<&str>,
    naming: Naming,
    mut pending: Vec<(Decision, f64)>,
    timeout: Duration,
) -> Vec<(Decision, Outcome, Option<String>)> {
    let mut done = Vec::with_capacity(pending.len());
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    let mut last_error = None;
    // Bounded by the deadline; a few rounds usually suffice because writes are processed in order.
    while !pending.is_empty() {
        match gateway.read(ttl_metric, naming).await {
            Ok(snapshot) => {
                last_error = None;
                let now: HashMap<&Labels, f64> = snapshot
                    .groups
                    .iter()
                    .map(|g| (&g.labels, g.push_time))
                    .collect();
                let mut still = Vec::new();
                for (d, push) in pending {
                    match now.get(&d.labels) {
                        None => done.push((d, Outcome::Deleted, None)),
                        Some(&t) if t > push => done.push((d, Outcome::Repushed, None)),
                        Some(_) => still.push((d, push)),
                    }
                }
                pending = still;
            }
            Err(e) => last_error = Some(format!("confirming re-read failed: {e}")),
        }
        if pending.is_empty() || Instant::now() + pause > deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    let why = last_error.unwrap_or_else(|| format!("still present after {timeout:?}"));
    done.extend(
        pending
            .into_iter()
            .map(|(d, _)| (d, Outcome::Unconfirmed, Some(why.clone()))),
    );
    done
}

/// Waits while `/-/healthy` answers 500 (the gateway's write queue is full), backing off, for at
/// most `max_wait`. Sending more while the queue is full only blocks.
async fn wait_healthy(gateway: &Gateway, max_wait: Duration) -> Result<(), String> {
    let deadline = Instant::now() + max_wait;
    let mut pause = Duration::from_millis(200);
    loop {
        match gateway.healthy().await {
            Ok(true) => return Ok(()),
            Ok(false) => {
                tracing::info!(gateway = %redact_url(gateway.url()), "write queue full: backing off");
            }
            Err(e) => return Err(format!("health check failed: {e}")),
        }
        if Instant::now() + pause > deadline {
            return Err(format!("write queue still full after {max_wait:?}"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Paces the DELETEs to one replica: at most `rate` per second, and a health check before the
/// first and every [`Pacer::HEALTH_EVERY`] after, backing off while the write queue is full.
struct Pacer<'a> {
    gateway: &'a Gateway,
    interval: Mutex<tokio::time::Interval>,
    sent: AtomicUsize,
    max_wait: Duration,
}

impl<'a> Pacer<'a> {
    const HEALTH_EVERY: usize = 100;

    fn new(gateway: &'a Gateway, rate: f64, max_wait: Duration) -> Self {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Pacer {
            gateway,
            interval: Mutex::new(interval),
            sent: AtomicUsize::new(0),
            max_wait,
        }
    }

    async fn before_delete(&self) -> Result<(), String> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(Self::HEALTH_EVERY) {
            // Hold the pacing lock while waiting so every in-flight delete waits too.
            let mut interval = self.interval.lock().await;
            wait_healthy(self.gateway, self.max_wait).await?;
            interval.tick().await;
        } else {
            self.interval.lock().await.tick().await;
        }
        Ok(())
    }
}
