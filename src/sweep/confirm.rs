//! Confirming deletes: the gateway answers 202 to any well-formed DELETE, even for a group that
//! does not exist, so the replica is re-read until each deleted group is gone or pushed again.
//! Re-reads go through the replica's shared reads, so policies confirming on one replica at the
//! same time share them.

use std::time::{Duration, Instant};

use futures::{stream, StreamExt};

use super::acted::Acted;
use super::remote::Remote;
use crate::model::{KeyIndex, Naming, Presence, Source};
use crate::plan::Decision;
use crate::report::{Failure, NotSent, Outcome};

/// One delete sent, waiting for its confirmation.
pub(super) struct ToConfirm {
    pub decision: Decision,
    /// The push time of the copy deleted: a later one means it was pushed again.
    pub push: f64,
    /// Carried to the outcome: set when this sweep did not send the request itself.
    pub not_sent: Option<NotSent>,
}

/// One delete waiting for its confirmation, and whether the twin of a key read without a sure
/// instance was deleted too.
struct Pending {
    sent: ToConfirm,
    twin_sent: bool,
}

/// Re-reads the replica until every deleted group is gone or pushed again, within `timeout`.
/// Re-reads are light (`/metrics`); a delete planned from an exact key that the light read can
/// only match to "it, or its twin with(out) `instance=""`" is confirmed by a JSON re-read. A key
/// read without a sure instance whose same copy is still there after its DELETE had
/// `instance=""`: its twin is deleted then, once, on the replica's budget, by the sweep that sent
/// the DELETE.
pub(super) async fn confirm<R: Remote>(
    remote: &R,
    naming: Naming,
    pending: Vec<ToConfirm>,
    timeout: Duration,
) -> Vec<Acted> {
    let mut pending: Vec<Pending> = pending
        .into_iter()
        .map(|sent| Pending {
            sent,
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
        let read = remote.read_since(source, since).await;
        let mut twins = Vec::new();
        match &read.snapshot {
            Ok(snapshot) if snapshot.naming == naming => {
                last_error = None;
                let now = KeyIndex::of_groups(&snapshot.groups);
                let mut still = Vec::new();
                source = Source::Metrics;
                for p in pending {
                    let d = &p.sent.decision;
                    match now.find(&d.labels, d.instance_unsure) {
                        None => done.push(p.sent.end(Outcome::Deleted, None)),
                        Some((_, Presence::Same(t))) if t > p.sent.push => {
                            done.push(p.sent.end(Outcome::Repushed, None))
                        }
                        Some((_, Presence::Same(_))) => {
                            // Only the sweep that sent the DELETE deletes the twin: another one
                            // may be reading before that DELETE was even answered.
                            let ours = p.sent.not_sent.is_none();
                            if d.instance_unsure && !p.twin_sent && ours {
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
                    let labels = &pending[i].sent.decision.labels;
                    async move {
                        let slot = remote.slot().await.ok()?;
                        let result = remote.delete(slot, labels, naming, true).await;
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
            .map(|p| p.sent.end(Outcome::Unconfirmed, Some(why.clone()))),
    );
    done
}

impl ToConfirm {
    fn end(self, outcome: Outcome, error: Option<Failure>) -> Acted {
        Acted {
            decision: self.decision,
            outcome,
            error,
            not_sent: self.not_sent,
        }
    }
}
