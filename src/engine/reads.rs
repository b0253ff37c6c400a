//! Reading many replicas through the engine, for the sweep and for `inspect` alike, and what the
//! pure planner takes of those reads.

use std::sync::Arc;

use futures::{stream, StreamExt};

use super::{Access, Engine, Read};
use crate::gateway::Gateway;
use crate::model::Source;
use crate::plan::ReplicaInput;
use crate::tuning::Tuning;

/// Reads every replica, `read_concurrency` at a time, in the order given, through the engine: a
/// read another policy made of the same replica moments ago (or is making now) is shared.
/// Sweeps read `/metrics` ([`Source::Metrics`]); `inspect` reads the JSON API.
pub async fn read_all(
    engine: &Engine,
    replicas: Vec<crate::discover::Replica>,
    access: &Access,
    tuning: &Tuning,
    ttl_metric: Option<&str>,
    source: Source,
) -> Vec<Arc<Read>> {
    stream::iter(replicas)
        .map(|r| {
            let gateway = Gateway::new(r.url, access.http.clone(), tuning.request_timeout);
            async move {
                engine
                    .read_for_plan(&gateway, access, ttl_metric, source)
                    .await
            }
        })
        .buffered(tuning.read_concurrency)
        .collect()
        .await
}

/// What the pure planner takes of each read: its snapshot when it was read, and its status.
pub fn plan_inputs(reads: &[Arc<Read>]) -> Vec<ReplicaInput<'_>> {
    reads
        .iter()
        .map(|r| ReplicaInput {
            snapshot: r.snapshot.as_ref().ok(),
            status: r.status.as_ref(),
        })
        .collect()
}
