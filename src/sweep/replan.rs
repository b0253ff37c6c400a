//! The re-plan step: a big store takes long to read, so a plan older than `replan_after` when
//! deletes start is re-made from a fresh read of that replica, and only the decisions the fresh
//! plan still makes are acted on: a group pushed in between is kept.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::remote::Remote;
use super::Read;
use crate::model::{KeyIndex, Source};
use crate::plan::{self, Decision, ReplicaInput, Rules};
use crate::report::Failure;

/// A re-read wanted "now" may use one that started this long ago: policies re-reading one
/// replica at the same moment then share it.
const SAME_MOMENT: Duration = Duration::from_millis(500);

/// What a fresh plan made of the old one's decisions on one replica.
pub(super) struct Replanned {
    /// The fresh read; its snapshot is always `Ok`.
    pub read: Arc<Read>,
    /// The decisions the fresh plan still makes, as it made them.
    pub keep: Vec<Decision>,
    /// The decisions it no longer makes: pushed in between, so kept.
    pub dropped: Vec<Decision>,
    /// Whether the wipe still stands (it never starts standing on a re-plan).
    pub admin_wipe: bool,
}

/// Re-reads replica `index` of `inputs` (newer than `planned`, the read its plan was made from)
/// and re-plans it with the other replicas as they were read. When the re-read fails, nothing may
/// be deleted: the failure comes back with the decisions.
pub(super) async fn replan<R: Remote>(
    remote: &R,
    policy: &Rules,
    planned: &Read,
    index: usize,
    inputs: &[ReplicaInput<'_>],
    decisions: Vec<Decision>,
    admin_wipe: bool,
) -> Result<Replanned, (Failure, Vec<Decision>)> {
    // Newer than the planned read in any case: a re-plan from the same read is no re-plan.
    let since = Instant::now()
        .checked_sub(SAME_MOMENT)
        .unwrap_or_else(Instant::now)
        .max(planned.started + Duration::from_nanos(1));
    let fresh = remote.read_since(Source::Metrics, since).await;
    let snapshot = match &fresh.snapshot {
        Ok(snapshot) => snapshot,
        Err(e) => return Err((Failure::of("re-read before deleting failed", e), decisions)),
    };
    let mut replanned_inputs: Vec<ReplicaInput<'_>> = inputs.to_vec();
    replanned_inputs[index].snapshot = Some(snapshot);
    let new_plan = plan::plan(policy, &replanned_inputs);
    let fresh_plan = &new_plan.replicas[index];
    let (keep, dropped) = still_planned(decisions, &fresh_plan.deletes);
    tracing::info!(
        gateway = %crate::http::redact_url(remote.url()),
        dropped = dropped.len(),
        "plan was old: re-read and re-planned before deleting"
    );
    let admin_wipe = admin_wipe && fresh_plan.admin_wipe;
    Ok(Replanned {
        read: fresh.clone(),
        keep,
        dropped,
        admin_wipe,
    })
}

/// The old plan's decisions that a fresh plan still makes, as the fresh plan made them (its key,
/// read from the fresh snapshot, is what the deletes and the confirmation look up), and those it
/// no longer makes. Keys are matched whichever way each read was made (`/metrics` or JSON).
pub(super) fn still_planned(
    old: Vec<Decision>,
    fresh: &[Decision],
) -> (Vec<Decision>, Vec<Decision>) {
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
