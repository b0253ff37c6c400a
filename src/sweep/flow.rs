//! One sweep, in order: read every replica, plan (pure), guard, act on each replica, report.

use std::sync::Arc;
use std::time::Instant;

use futures::{stream, StreamExt};

use super::act::{self, ReplicaOutcome};
use super::remote::{Remote, Through};
use super::tally::{self, Tally};
use super::{plan_inputs, Read, SweepConfig};
use crate::discover::{Discovered, Refused};
use crate::engine::{Access, Engine};
use crate::gateway::Gateway;
use crate::guard;
use crate::http::redact_url;
use crate::model::Source;
use crate::plan::{self, Plan, ReplicaInput};
use crate::progress::Progress;
use crate::report::{Outcome, SweepReport};

/// Runs one sweep over the replicas found. Never panics on a replica's failure: it is reported
/// and the others go on. What discovery refused is reported as it is, and changes nothing else.
pub async fn run(
    engine: &Engine,
    sweep: &SweepConfig,
    access: &Access,
    found: Discovered,
) -> SweepReport {
    let Discovered { replicas, refused } = found;
    let ttl_metric = sweep.policy.ttl_from_metric.as_deref();
    let timeout = sweep.tuning.request_timeout;
    let remotes: Vec<Through<'_>> = replicas
        .into_iter()
        .map(|r| {
            let gateway = Gateway::new(r.url, access.http.clone(), timeout);
            Through::new(engine, access, gateway, ttl_metric)
        })
        .collect();
    run_on(sweep, &remotes, refused).await
}

/// Reads every replica, `concurrency` at a time, in the order given: a read another policy made
/// of the same replica moments ago (or is making now) is shared.
pub(super) async fn read_each<R: Remote>(
    remotes: &[R],
    concurrency: usize,
    source: Source,
) -> Vec<Arc<Read>> {
    // Made before they are streamed, for the `Send` check (see `act_on_all`).
    let reads: Vec<_> = remotes.iter().map(|r| r.read_shared(source)).collect();
    stream::iter(reads).buffered(concurrency).collect().await
}

/// [`run`] on any replicas: the real ones through the engine, or fakes in unit tests.
pub(super) async fn run_on<R: Remote>(
    sweep: &SweepConfig,
    remotes: &[R],
    refused: Vec<Refused>,
) -> SweepReport {
    let started_at = jiff::Timestamp::now();
    let clock = Instant::now();
    if remotes.is_empty() {
        let why = "no gateway replica found: nothing was swept";
        let mut report = sweep.empty_report(started_at, 0.0, why.into());
        report.summary.refused = refused.len();
        report.refused = refused;
        return report;
    }
    let reads = read_each(remotes, sweep.tuning.read_concurrency, Source::Metrics).await;
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
    let acting = Acting {
        sweep,
        remotes,
        reads: &reads,
        inputs: &inputs,
        tripped: guard_trip.is_some(),
    };
    let outcomes = act_on_all(acting, &the_plan).await;
    tally::report(
        sweep,
        Tally {
            started_at,
            duration: clock.elapsed(),
            reads: &reads,
            plan: &the_plan,
            outcomes,
            notes,
            refused,
            guard_trip,
            groups_seen,
            planned,
        },
    )
}

/// What acting on every replica shares.
struct Acting<'a, 'r, R> {
    sweep: &'a SweepConfig,
    remotes: &'a [R],
    reads: &'a [Arc<Read>],
    inputs: &'a [ReplicaInput<'r>],
    tripped: bool,
}

/// Acts on every replica at once (each paces itself), unless the guard tripped or this is a dry
/// run. Outcomes come in the order of the replicas.
async fn act_on_all<R: Remote>(with: Acting<'_, '_, R>, the_plan: &Plan) -> Vec<ReplicaOutcome> {
    let Acting {
        sweep,
        remotes,
        reads,
        inputs,
        tripped,
    } = with;
    let planned = the_plan.total_deletes();
    let deleting = (!tripped && !sweep.dry_run && planned > 0)
        .then(|| Progress::start("delete".into(), Some(planned as u64), "groups"));
    // The futures are made before they are streamed: a closure over borrowed reads inside
    // `stream.map` makes the whole sweep future fail the `Send` check (a higher-ranked lifetime
    // limitation of rustc), and the controller runs sweeps on spawned tasks.
    let acts: Vec<_> = reads
        .iter()
        .zip(remotes)
        .enumerate()
        .map(|(index, (read, remote))| {
            let decisions = the_plan.replicas[index].deletes.clone();
            let admin_wipe = the_plan.replicas[index].admin_wipe;
            let progress = deleting.clone();
            async move {
                if tripped {
                    return ReplicaOutcome::all(decisions, Outcome::Aborted);
                }
                if sweep.dry_run {
                    return ReplicaOutcome::all(decisions, Outcome::WouldDelete);
                }
                let job = act::Job {
                    remote,
                    sweep,
                    read,
                    index,
                    inputs,
                };
                act::act_on_replica(job, decisions, admin_wipe, progress).await
            }
        })
        .collect();
    let outcomes = stream::iter(acts)
        .buffered(sweep.tuning.read_concurrency)
        .collect()
        .await;
    drop(deleting);
    outcomes
}
