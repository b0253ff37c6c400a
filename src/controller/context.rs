//! What every reconcile shares: the Kubernetes client, the one event recorder, the metrics, the
//! health flags, the engine tuning, the TTL floor and the leadership flag. Tests build it the same
//! way, with a mocked client.

use crate::engine::{Engine, Settings as EngineSettings};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::events::{Recorder, Reporter};
use kube::Client;

use super::leader::LeaderFlag;
use crate::crd::PushgatewayRetentionStatus;
use crate::http::{Egress, EgressInput};
use crate::metrics::Metrics;
use crate::report::SweepReport;
use crate::server::Health;
use crate::sweep::{Permit, StartTimes, Tuning};

/// The reporting controller name on events, and the Lease name by default.
pub const CONTROLLER_NAME: &str = "pushgateway-janitor";
/// The one field manager of every status apply.
pub const FIELD_MANAGER: &str = "pgw-janitor";

/// The controller's own settings, from its flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub tuning: Tuning,
    /// Bound on the query to Prometheus, for `prometheus` sources.
    pub prometheus_timeout: Duration,
    /// The shortest TTL any policy gets, whatever its `minTtl` says.
    pub floor: Duration,
    /// How soon a non-leader looks at a policy again.
    pub not_leader_requeue: Duration,
    /// First retry after a transient error; doubles per failure up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// The admin's allow-list of where policies' requests may go.
    pub egress: Arc<Egress>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tuning: Tuning::default(),
            prometheus_timeout: Duration::from_secs(30),
            floor: Duration::from_secs(60),
            not_leader_requeue: Duration::from_secs(15),
            min_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
            // No list: everything but link-local and loopback, as with no flag set.
            egress: Arc::new(Egress::new(&EgressInput::default()).expect("an empty list")),
        }
    }
}

pub struct Context {
    pub client: Client,
    /// One recorder for every policy, so repeated events become a series instead of new objects.
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub settings: Settings,
    pub leader: LeaderFlag,
    /// One engine for every policy: shared reads and one delete budget per replica.
    pub engine: Engine,
    /// Consecutive failures per policy (`namespace/name`), for the error backoff.
    failures: Mutex<HashMap<String, Failures>>,
    /// Each policy's memory of its replicas' start times, so a restart is reported.
    start_times: Mutex<HashMap<String, StartTimes>>,
    /// The last sweep this process ran of each policy, so a sweep whose status could not be
    /// written (the API server away) is neither repeated nor lost.
    last_sweeps: Mutex<HashMap<String, LastSwept>>,
}

/// A sweep this process ran: for which generation, when, and its status if not yet written.
#[derive(Debug, Clone)]
pub struct LastSwept {
    pub generation: Option<i64>,
    pub started: jiff::Timestamp,
    pub unsaved: Option<PushgatewayRetentionStatus>,
}

impl Context {
    /// `instance` names this replica on its events (the pod name).
    pub fn new(
        client: Client,
        instance: Option<String>,
        settings: Settings,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        leader: LeaderFlag,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: CONTROLLER_NAME.into(),
                instance,
            },
        );
        let engine = Engine::new(EngineSettings {
            egress: settings.egress.clone(),
            ..EngineSettings::from_tuning(&settings.tuning)
        });
        Context {
            engine,
            client,
            recorder,
            metrics,
            health,
            settings,
            leader,
            failures: Mutex::default(),
            start_times: Mutex::default(),
            last_sweeps: Mutex::default(),
        }
    }

    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// The engine's permit: it may delete while this process leads.
    pub fn permit(&self) -> Permit {
        super::leader::permit(self.leader.clone())
    }

    /// Counts one more failure of `key` and returns how many in a row, and how long to wait
    /// before retrying: `min_backoff` doubled per consecutive failure, capped at `max_backoff`.
    pub fn failed(&self, key: &str) -> (u32, Duration) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let f = failures.entry(key.to_string()).or_insert(Failures {
            count: 0,
            retry_at: Instant::now(),
        });
        f.count = f.count.saturating_add(1);
        let factor = 2u32.saturating_pow(f.count.saturating_sub(1).min(16));
        let delay = self
            .settings
            .min_backoff
            .saturating_mul(factor)
            .min(self.settings.max_backoff);
        f.retry_at = Instant::now() + delay;
        (f.count, delay)
    }

    /// How long `key` still backs off after its last failure. Every status write triggers a
    /// reconcile too, and those must not retry a failing sweep before its time.
    pub fn retry_in(&self, key: &str) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let left = failures
            .get(key)?
            .retry_at
            .checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some(left)
    }

    /// Marks the replicas of `key`'s report that restarted since its previous sweep.
    pub fn observe_start_times(&self, key: &str, report: &mut SweepReport) {
        let mut all = self.start_times.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(key.to_string()).or_default().observe(report);
    }

    /// The last sweep of `key` this process ran, for `generation` only.
    pub fn last_swept(&self, key: &str, generation: Option<i64>) -> Option<LastSwept> {
        let all = self.last_sweeps.lock().unwrap_or_else(|e| e.into_inner());
        all.get(key).filter(|s| s.generation == generation).cloned()
    }

    /// Remembers a sweep of `key`, with its status until [`Context::status_saved`] says it is
    /// written.
    pub fn swept(&self, key: &str, swept: LastSwept) {
        let mut all = self.last_sweeps.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(key.to_string(), swept);
    }

    /// The status of `key`'s last sweep is written.
    pub fn status_saved(&self, key: &str) {
        let mut all = self.last_sweeps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = all.get_mut(key) {
            s.unsaved = None;
        }
    }

    /// A policy that is gone: nothing of it is remembered.
    pub fn forget(&self, key: &str) {
        let mut all = self.last_sweeps.lock().unwrap_or_else(|e| e.into_inner());
        all.remove(key);
    }

    /// A reconcile of `key` went through: its next failure starts the backoff afresh.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
    }
}

struct Failures {
    count: u32,
    retry_at: Instant,
}
