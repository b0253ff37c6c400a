//! What one replica answers, as the steps of a sweep (re-plan, wipe, delete, confirm) see it: the
//! contract between the steps and the IO. The real replica is the gateway client reached through
//! the engine ([`Through`]): shared reads, the replica's one delete budget (health checks and
//! pace), and the deletes every policy claimed on it. The steps' unit tests use a fake
//! (`fake.rs`), the way the Pushgateway tests its handlers against `MockMetricStore`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use url::Url;

use super::Read;
use crate::engine::{Access, Engine, ReplicaEntry, Ticket};
use crate::gateway::Gateway;
use crate::model::{Labels, Naming, Source};
use crate::report::Failure;
use crate::Error;

/// One replica, as a sweep reaches it. Every method is bounded in time by the implementation
/// (the gateway client's request timeout, the budget's `unhealthy_wait`).
pub(crate) trait Remote: Sync {
    /// The right to send one DELETE now, from the replica's budget; handed back with the DELETE
    /// so its answer feeds the pace.
    type Slot<'a>: Send
    where
        Self: 'a;

    /// The replica's base URL (reports redact its credentials).
    fn url(&self) -> &Url;

    /// Its status, then its groups: a read recent enough to share with every policy due now.
    /// [`Source::Metrics`] is the light read (`/metrics`), which falls back to the JSON API
    /// where it cannot give the groups exactly.
    fn read_shared(&self, source: Source) -> impl Future<Output = Arc<Read>> + Send;

    /// Like [`Remote::read_shared`], from a read that started no earlier than `since`: one that
    /// must see the deletes answered before it (a re-plan, a confirmation).
    fn read_since(&self, source: Source, since: Instant) -> impl Future<Output = Arc<Read>> + Send;

    /// Waits while `/-/healthy` says the write queue is full, backing off; fails when it stays
    /// full or the check itself fails.
    fn wait_healthy(&self) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Waits for a DELETE slot: the budget's concurrency, a health check when one is due, the
    /// pace. Fails when the health check never lets it through.
    fn slot(&self) -> impl Future<Output = Result<Self::Slot<'_>, Failure>> + Send;

    /// One DELETE of the group `labels` (with `twin`: of `labels` plus `instance=""`), encoded
    /// with `naming`. `Ok` only says the gateway queued it (202): a re-read tells what happened.
    fn delete<'a>(
        &'a self,
        slot: Self::Slot<'a>,
        labels: &'a Labels,
        naming: Naming,
        twin: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a;

    /// `PUT /api/v1/admin/wipe`: queues a delete of every group.
    fn wipe(&self) -> impl Future<Output = Result<(), Error>> + Send;

    /// Claims the delete of the copy of `labels` pushed at `push`, as read at `read_at`: `false`
    /// when another sweep sent that very DELETE moments ago (see [`ReplicaEntry::claim_delete`]).
    fn claim(&self, labels: &Labels, push: f64, read_at: Instant, fresh: Duration) -> bool;

    /// Lets go of this sweep's claims once its deletes are confirmed or given up.
    fn release(&self, claimed: &[Labels]);
}

/// The real replica: its gateway client, through the engine that shares its reads, paces its
/// DELETEs and keeps its claims for every policy.
pub(crate) struct Through<'a> {
    pub engine: &'a Engine,
    pub access: &'a Access,
    pub gateway: Gateway,
    pub replica: Arc<ReplicaEntry>,
    pub ttl_metric: Option<&'a str>,
}

impl<'a> Through<'a> {
    pub fn new(
        engine: &'a Engine,
        access: &'a Access,
        gateway: Gateway,
        ttl_metric: Option<&'a str>,
    ) -> Self {
        let replica = engine.replica(&gateway);
        Through {
            engine,
            access,
            gateway,
            replica,
            ttl_metric,
        }
    }
}

/// Does this error say the gateway is pressed (a 5xx, no answer), so the pace should fall? A 4xx
/// is about the request, not the load.
fn pressed(e: &Error) -> bool {
    !matches!(e, Error::Status { status, .. } if *status < 500)
}

impl Remote for Through<'_> {
    type Slot<'s>
        = Ticket<'s>
    where
        Self: 's;

    fn url(&self) -> &Url {
        self.gateway.url()
    }

    async fn read_shared(&self, source: Source) -> Arc<Read> {
        self.engine
            .read_for_plan(&self.gateway, self.access, self.ttl_metric, source)
            .await
    }

    async fn read_since(&self, source: Source, since: Instant) -> Arc<Read> {
        self.engine
            .read(
                &self.gateway,
                self.access,
                self.ttl_metric,
                source,
                since,
                false,
            )
            .await
    }

    async fn wait_healthy(&self) -> Result<(), Failure> {
        self.replica.budget.wait_healthy(&self.gateway).await
    }

    async fn slot(&self) -> Result<Ticket<'_>, Failure> {
        self.replica.budget.acquire(&self.gateway).await
    }

    async fn delete<'s>(
        &'s self,
        slot: Ticket<'s>,
        labels: &'s Labels,
        naming: Naming,
        twin: bool,
    ) -> Result<(), Error> {
        let result = if twin {
            self.gateway.delete_empty_instance(labels, naming).await
        } else {
            self.gateway.delete(labels, naming).await
        };
        let calm = result.as_ref().err().is_none_or(|e| !pressed(e));
        self.replica.budget.answered(slot, calm);
        result
    }

    async fn wipe(&self) -> Result<(), Error> {
        self.gateway.wipe().await
    }

    fn claim(&self, labels: &Labels, push: f64, read_at: Instant, fresh: Duration) -> bool {
        self.replica.claim_delete(labels, push, read_at, fresh)
    }

    fn release(&self, claimed: &[Labels]) {
        self.replica.release_deletes(claimed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_4xx_leaves_the_pace_alone() {
        let status = |status| Error::Status {
            url: "http://a:9091/metrics/job/x".into(),
            status,
            body: String::new(),
        };
        assert!(!pressed(&status(400)));
        assert!(!pressed(&status(404)));
        assert!(pressed(&status(500)));
        assert!(pressed(&status(503)));
        assert!(pressed(&Error::Timeout {
            url: "http://a:9091/".into(),
            timeout: Duration::from_secs(1),
        }));
    }
}
