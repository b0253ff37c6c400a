//! The delete step: one DELETE per decision, `delete_concurrency` at a time, each on the
//! replica's shared budget (paced to the gateway, waiting while its write queue is full). The
//! permit is asked right before each one; a delete another policy sent moments ago for the same
//! copy is not sent again; once a DELETE gets no answer at all, the rest are not sent to that
//! replica (each would only wait for its own timeout).

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};

use super::acted::{Acted, Unsent};
use super::confirm::ToConfirm;
use super::remote::Remote;
use super::{Permit, NOT_ATTEMPTED};
use crate::model::{Labels, Naming};
use crate::plan::Decision;
use crate::progress::Progress;
use crate::report::{Failure, NotSent, Outcome};
use crate::Error;

/// What the delete step needs besides the replica.
pub(super) struct Deleting<'a> {
    pub permit: &'a Permit,
    /// The naming of the snapshot the keys came from: every DELETE is encoded with it.
    pub naming: Naming,
    /// When the read the decisions come from started: a push after it would be lost.
    pub read_at: Instant,
    pub concurrency: usize,
    /// How long a delete another sweep sent counts as this one's too.
    pub fresh_claim: Duration,
    pub progress: Option<&'a Progress>,
}

/// How the DELETEs went.
#[derive(Default)]
pub(super) struct Deleted {
    /// Sent (by this sweep or, moments before, by another): to confirm.
    pub to_confirm: Vec<ToConfirm>,
    /// Failed, or never sent.
    pub failed: Vec<Acted>,
    /// The copies this sweep claimed: released once confirmed.
    pub claimed: Vec<Labels>,
    /// When the first DELETE went out.
    pub first_sent: Option<Instant>,
    /// The longest time from the read to a DELETE sent (a push in it would be lost).
    pub max_window: Option<Duration>,
}

/// How one DELETE went: sent by this sweep, or by another sweep moments before.
enum Sent {
    Here,
    ByAnother,
}

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

/// Sends the DELETE of every `(decision, push time of the copy read)`.
pub(super) async fn delete<R: Remote>(
    remote: &R,
    with: Deleting<'_>,
    decisions: Vec<(Decision, f64)>,
) -> Deleted {
    let Deleting {
        permit,
        naming,
        read_at,
        concurrency,
        fresh_claim,
        progress,
    } = with;
    let claimed: Mutex<Vec<Labels>> = Default::default();
    let first_sent: OnceLock<Instant> = OnceLock::new();
    // The first DELETE that got no answer at all.
    let gone: OnceLock<Failure> = OnceLock::new();
    let (claimed_ref, first_sent_ref, gone) = (&claimed, &first_sent, &gone);
    let count = || {
        if let Some(p) = progress {
            p.add(1);
        }
    };
    let results: Vec<(Decision, f64, Duration, Result<Sent, Unsent>)> = stream::iter(decisions)
        .map(|(d, push)| async move {
            let result = async {
                // Asked before the pacing wait too, so the rest of a lost sweep ends at once.
                if !permit.may_act() {
                    return Err(lost());
                }
                if let Some(e) = gone.get() {
                    return Err(unanswered(e));
                }
                let slot = remote
                    .slot()
                    .await
                    .map_err(|e| (e, Some(NotSent::Unhealthy)))?;
                if !permit.may_act() {
                    return Err(lost());
                }
                // Another policy sent this very delete moments ago: confirm it, don't repeat it.
                if !remote.claim(&d.labels, push, read_at, fresh_claim) {
                    drop(slot);
                    count();
                    return Ok((Sent::ByAnother, read_at.elapsed()));
                }
                lock(claimed_ref).push(d.labels.clone());
                let window = read_at.elapsed();
                let _ = first_sent_ref.get_or_init(Instant::now);
                // A key whose instance may be absent or empty is deleted as the first (the
                // common case); the confirmation deletes its twin if the copy stays.
                let result = remote.delete(slot, &d.labels, naming, false).await;
                if let Err(e) = &result {
                    if unreachable(e) {
                        let _ = gone.set(Failure::from(e));
                    }
                }
                count();
                result
                    .map(|()| (Sent::Here, window))
                    .map_err(|e| (Failure::from(&e), None))
            }
            .await;
            match result {
                Ok((sent, window)) => (d, push, window, Ok(sent)),
                Err(e) => (d, push, read_at.elapsed(), Err(e)),
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut out = Deleted::default();
    for (decision, push, window, result) in results {
        match result {
            Ok(sent) => {
                out.max_window = Some(out.max_window.map_or(window, |w| w.max(window)));
                out.to_confirm.push(ToConfirm {
                    decision,
                    push,
                    not_sent: match sent {
                        Sent::Here => None,
                        // One request, counted once: by the sweep that sent it.
                        Sent::ByAnother => Some(NotSent::SentByAnother),
                    },
                });
            }
            Err((error, why)) => out.failed.push(Acted {
                decision,
                outcome: Outcome::Failed,
                error: Some(error),
                not_sent: why,
            }),
        }
    }
    out.claimed = claimed.into_inner().unwrap_or_else(|e| e.into_inner());
    out.first_sent = first_sent.into_inner();
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
