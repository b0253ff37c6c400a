//! The sweep engine: read every replica, plan, guard, act, report. The three front doors (the
//! one-shot CLI, the policy-file loop, the controller) all run this and decide nothing themselves.

mod act;
mod confirm;
mod delete;
mod flow;
mod permit;
mod remote;
mod replan;
mod restarts;
mod tally;
mod wipe;

#[cfg(test)]
mod act_tests;
#[cfg(test)]
mod confirm_tests;
#[cfg(test)]
mod delete_tests;
#[cfg(test)]
mod fake;
#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod replan_tests;
#[cfg(test)]
mod wipe_tests;

pub use flow::run;
pub use permit::{Permit, NOT_ATTEMPTED};
pub use restarts::StartTimes;

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Access, Engine};
use crate::gateway::Gateway;
use crate::guard::Limits;
use crate::model::Source;
use crate::plan::{Action, Policy, ReplicaInput};
use crate::report::{exit, Failure, Summary, SweepReport};
use crate::Error;
use remote::Through;

/// How hard the janitor may press on the gateways.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Replicas read at once.
    pub read_concurrency: usize,
    /// Bound on every single call to a replica, a whole streamed read included.
    pub request_timeout: Duration,
    /// DELETEs in flight at once on one replica.
    pub delete_concurrency: usize,
    /// DELETEs per second on one replica.
    pub delete_rate: f64,
    /// A plan older than this when deletes start is re-made from a fresh read of that replica.
    pub replan_after: Duration,
    /// How long to keep re-reading a replica to confirm its deletes.
    pub confirm_timeout: Duration,
    /// How long to wait, backing off, while a replica's `/-/healthy` answers 500 (write queue full).
    pub unhealthy_wait: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            read_concurrency: 8,
            request_timeout: Duration::from_secs(60),
            delete_concurrency: 16,
            delete_rate: 50_000.0,
            replan_after: Duration::from_secs(30),
            confirm_timeout: Duration::from_secs(30),
            unhealthy_wait: Duration::from_secs(60),
        }
    }
}

impl Tuning {
    /// Errors carry the field, named by the front door that gave the tuning (`Error::at`): the
    /// engine never names a flag, since its messages may end up in a resource's status.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::policy::Field;
        let positive = |field: Field, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Error::invalid(field, "must be greater than zero"))
            }
        };
        positive(Field::ReadConcurrency, self.read_concurrency > 0)?;
        positive(Field::DeleteConcurrency, self.delete_concurrency > 0)?;
        positive(Field::RequestTimeout, !self.request_timeout.is_zero())?;
        positive(
            Field::DeleteRate,
            self.delete_rate.is_finite() && self.delete_rate > 0.0,
        )?;
        Ok(())
    }
}

/// One sweep's whole configuration, already validated.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// Whose sweep this is, for the delete log: a policy's `namespace/name`, or `cli`.
    pub name: String,
    pub policy: Policy,
    pub limits: Limits,
    pub dry_run: bool,
    pub tuning: Tuning,
    /// Asked right before every DELETE and wipe: a sweep whose right to act was withdrawn
    /// (leadership lost) stops there.
    pub permit: Permit,
}

impl Sweep {
    /// Refuses a configuration before anything is read or touched.
    pub fn validate(&self) -> crate::Result<()> {
        self.policy.validate()?;
        self.limits.validate()?;
        self.tuning.validate()
    }

    fn action_name(&self) -> &'static str {
        match self.policy.action {
            Action::DeleteGroups => "delete",
            Action::Wipe { .. } => "wipe",
        }
    }

    /// The report of a sweep that could not even find its replicas.
    pub fn failed_discovery(&self, error: &Error) -> SweepReport {
        self.empty_report(jiff::Timestamp::now(), 0.0, Failure::from(error))
    }

    fn empty_report(&self, started: jiff::Timestamp, secs: f64, error: Failure) -> SweepReport {
        SweepReport {
            started_at: started.to_string(),
            duration_seconds: secs,
            dry_run: self.dry_run,
            action: self.action_name(),
            replicas: vec![],
            actions: vec![],
            notes: vec![],
            refused: vec![],
            summary: Summary {
                error: Some(error),
                exit_code: exit::REPLICA_FAILED,
                ..Default::default()
            },
        }
    }
}

pub(crate) use crate::engine::Read;

/// Reads every replica, `read_concurrency` at a time, in the order given, through the engine: a
/// read another policy made of the same replica moments ago (or is making now) is shared.
/// Sweeps read `/metrics` ([`Source::Metrics`]); `inspect` reads the JSON API.
pub(crate) async fn read_all(
    engine: &Engine,
    replicas: Vec<crate::discover::Replica>,
    access: &Access,
    tuning: &Tuning,
    ttl_metric: Option<&str>,
    source: Source,
) -> Vec<Arc<Read>> {
    let remotes: Vec<Through<'_>> = replicas
        .into_iter()
        .map(|r| {
            let gateway = Gateway::new(r.url, access.http.clone(), tuning.request_timeout);
            Through::new(engine, access, gateway, ttl_metric)
        })
        .collect();
    flow::read_each(&remotes, tuning.read_concurrency, source).await
}

/// What the pure planner takes of each read: its snapshot when it was read, and its status.
pub(crate) fn plan_inputs(reads: &[Arc<Read>]) -> Vec<ReplicaInput<'_>> {
    reads
        .iter()
        .map(|r| ReplicaInput {
            snapshot: r.snapshot.as_ref().ok(),
            status: r.status.as_ref(),
        })
        .collect()
}
