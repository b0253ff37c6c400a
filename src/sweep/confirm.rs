//! Confirming deletes: the gateway answers 202 to any well-formed DELETE, even for a group that
//! does not exist, so the replica is re-read until each deleted group is gone or pushed again.
//! Re-reads go through the engine, so policies confirming on one replica at the same time share
//! them.

use std::time::{Duration, Instant};

use futures::{stream, StreamExt};

use super::act::pressed;
use crate::engine::{Access, Budget, Engine};
use crate::gateway::Gateway;
use crate::model::{KeyIndex, Naming, Presence, Source};
use crate::plan::Decision;
use crate::report::{Failure, Outcome};

/// What confirming deletes on one replica reads and writes with.
pub(super) struct Confirm<'a> {
    pub engine: &'a Engine,
    pub access: &'a Access,
    pub gateway: &'a Gateway,
    pub budget: &'a Budget,
    pub ttl_metric: Option<&'a str>,
    pub naming: Naming,
}

/// One delete waiting for its confirmation: the push time of the copy deleted, and whether the
/// twin of a key read without a sure instance was deleted too.
struct Pending {
    decision: Decision,
    push: f64,
    twin_sent: bool,
}

/// Re-reads the replica until every deleted group is gone or pushed again, within `timeout`.
/// Re-reads are light (`/metrics`); a delete planned from an exact key that the light read can
/// only match to "it, or its twin with(out) `instance=""`" is confirmed by a JSON re-read. A key
/// read without a sure instance whose same copy is still there after its DELETE had
/// `instance=""`: its twin is deleted then, once, on the replica's budget.
pub(super) async fn confirm(
    with: Confirm<'_>,
    pending: Vec<(Decision, f64)>,
    timeout: Duration,
) -> Vec<(Decision, Outcome, Option<Failure>)> {
    let Confirm {
        engine,
        access,
        gateway,
        budget,
        ttl_metric,
        naming,
    } = with;
    let mut pending: Vec<Pending> = pending
        .into_iter()
        .map(|(decision, push)| Pending {
            decision,
            push,
            twin_sent: false,
        })
        .collect();
    let mut done = Vec::with_capacity(pending.len());
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    let mut last_error = None;
    // Only a read that started after the last DELETE was answered can confirm it.
    let mut since = Instant::now();
    let mut source = Source::Metrics;
    // Bounded by the deadline; a few rounds usually suffice because writes are processed in order.
    while !pending.is_empty() {
        let read = engine
            .read(gateway, access, ttl_metric, source, since, false)
            .await;
        let mut twins = Vec::new();
        match &read.snapshot {
            Ok(snapshot) if snapshot.naming == naming => {
                last_error = None;
                let now = KeyIndex::of_groups(&snapshot.groups);
                let mut still = Vec::new();
                source = Source::Metrics;
                for p in pending {
                    let d = &p.decision;
                    match now.find(&d.labels, d.instance_unsure) {
                        None => done.push((p.decision, Outcome::Deleted, None)),
                        Some((_, Presence::Same(t))) if t > p.push => {
                            done.push((p.decision, Outcome::Repushed, None))
                        }
                        Some((_, Presence::Same(_))) => {
                            if d.instance_unsure && !p.twin_sent {
                                twins.push(still.len());
                            }
                            still.push(p);
                        }
                        Some((_, Presence::Unsure(_))) => {
                            source = Source::Json;
                            still.push(p);
                        }
                    }
                }
                pending = still;
            }
            Ok(_) => {
                last_error = Some(Failure::from(
                    "confirming re-read: the replica's naming changed",
                ))
            }
            Err(e) => last_error = Some(Failure::of("confirming re-read failed", e)),
        }
        if !twins.is_empty() {
            let sent = stream::iter(twins)
                .map(|i| {
                    let labels = &pending[i].decision.labels;
                    async move {
                        let ticket = budget.acquire(gateway).await.ok()?;
                        let result = gateway.delete_empty_instance(labels, naming).await;
                        budget.answered(ticket, result.as_ref().err().is_none_or(|e| !pressed(e)));
                        result.ok().map(|()| i)
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await;
            for i in sent.into_iter().flatten() {
                pending[i].twin_sent = true;
            }
            // The twins' deletes were just answered: confirm with a read after them, at once.
            since = Instant::now();
            if Instant::now() < deadline {
                continue;
            }
        }
        if pending.is_empty() || Instant::now() + pause > deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        since = Instant::now();
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    let why =
        last_error.unwrap_or_else(|| Failure::from(format!("still present after {timeout:?}")));
    done.extend(
        pending
            .into_iter()
            .map(|p| (p.decision, Outcome::Unconfirmed, Some(why.clone()))),
    );
    done
}
