//! The janitor's own metrics, OpenMetrics text, under the prefix `pgw_janitor` (never
//! `pushgateway_`, which belongs to the gateways). Labels are bounded: a policy's namespace and
//! name, a reason, a result, an error category. Never a grouping key, never error text.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use crate::report::{Outcome, ReplicaState, SweepReport};

/// Which policy a series belongs to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub namespace: String,
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    namespace: String,
    policy: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    namespace: String,
    policy: String,
    reason: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    namespace: String,
    policy: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    namespace: String,
    policy: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CategoryLabels {
    category: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Registers `metric` under `name` (after the prefix) and gives it back to be kept.
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Every value `pgw_janitor_sweeps_total` and `pgw_janitor_last_sweep_result` take in `result`.
pub const SWEEP_RESULTS: [&str; 5] = [
    "ok",
    "replica_failed",
    "guard_tripped",
    "discovery_failed",
    "spec_invalid",
];

/// Every metric of the janitor, registered per concern (each concern's `register` names its
/// metrics, the way controller-rs registers its `ReconcileMetrics`); `record_*` take what a front
/// door knows (a report, a reload, an error) and hand each concern its part.
pub struct Metrics {
    registry: Registry,
    deletes: DeleteMetrics,
    sweeps: SweepMetrics,
    replicas: ReplicaMetrics,
    config: ConfigMetrics,
    reconcile_errors: Family<CategoryLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pgw_janitor");
        let deletes = DeleteMetrics::register(&mut registry);
        let sweeps = SweepMetrics::register(&mut registry);
        let replicas = ReplicaMetrics::register(&mut registry);
        let config = ConfigMetrics::register(&mut registry);
        let reconcile_errors = add(
            &mut registry,
            "reconcile_errors",
            "Reconcile errors by category",
            Family::default(),
        );
        let version = ("version".to_string(), env!("CARGO_PKG_VERSION").to_string());
        registry.register("build", "Build information", Info::new(vec![version]));
        Metrics {
            registry,
            deletes,
            sweeps,
            replicas,
            config,
            reconcile_errors,
        }
    }

    /// Records one sweep's report. `now` is the Unix time the sweep ended.
    pub fn record_sweep(&self, policy: &PolicyLabels, report: &SweepReport, now: f64) {
        self.deletes.record(policy, report);
        self.replicas.record(policy, report);
        self.sweeps.record(policy, report, now);
    }

    /// A policy whose spec was refused: counted, never swept.
    pub fn record_spec_invalid(&self, policy: &PolicyLabels) {
        self.sweeps.count(policy, "spec_invalid");
    }

    pub fn record_reconcile_error(&self, category: &'static str) {
        let category = category.to_string();
        self.reconcile_errors
            .get_or_create(&CategoryLabels { category })
            .inc();
    }

    /// One load of the policy files: whether it succeeded, at Unix time `now`.
    pub fn record_reload(&self, ok: bool, now: f64) {
        self.config.record(ok, now);
    }

    /// A deleted policy: its gauges go, so no stale "last success" lingers.
    pub fn forget(&self, policy: &PolicyLabels) {
        self.sweeps.forget(policy);
        self.replicas.forget(policy);
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("encoding to a String cannot fail");
        out
    }
}

/// What was done to groups: deletes sent, confirmed, failed, and every planned action.
struct DeleteMetrics {
    deleted: Family<ReasonLabels, Counter>,
    would_delete: Family<ReasonLabels, Counter>,
    attempts: Family<PolicyLabels, Counter>,
    errors: Family<PolicyLabels, Counter>,
    actions: Family<OutcomeLabels, Counter>,
}

impl DeleteMetrics {
    fn register(registry: &mut Registry) -> Self {
        DeleteMetrics {
            deleted: add(
                registry,
                "groups_deleted",
                "Groups deleted and confirmed gone, by policy and reason",
                Family::default(),
            ),
            would_delete: add(
                registry,
                "groups_would_delete",
                "Groups a dry run would have deleted, by policy and reason",
                Family::default(),
            ),
            attempts: add(
                registry,
                "delete_attempts",
                "DELETE or wipe requests sent",
                Family::default(),
            ),
            errors: add(
                registry,
                "delete_errors",
                "Deletes that failed or stayed unconfirmed",
                Family::default(),
            ),
            actions: add(
                registry,
                "actions",
                "Every planned group action, by policy, reason and outcome: deleted, repushed, \
                 unconfirmed, failed, kept, aborted, would-delete",
                Family::default(),
            ),
        }
    }

    fn record(&self, policy: &PolicyLabels, report: &SweepReport) {
        for action in &report.actions {
            let labels = ReasonLabels {
                namespace: policy.namespace.clone(),
                policy: policy.policy.clone(),
                reason: action.reason.as_str().to_string(),
            };
            self.actions
                .get_or_create(&OutcomeLabels {
                    namespace: labels.namespace.clone(),
                    policy: labels.policy.clone(),
                    reason: labels.reason.clone(),
                    outcome: action.outcome.as_str().to_string(),
                })
                .inc();
            match action.outcome {
                Outcome::Deleted | Outcome::Repushed => {
                    self.deleted.get_or_create(&labels).inc();
                }
                Outcome::WouldDelete => {
                    self.would_delete.get_or_create(&labels).inc();
                }
                _ => {}
            }
            if action.sent() {
                self.attempts.get_or_create(policy).inc();
            }
            if matches!(action.outcome, Outcome::Unconfirmed | Outcome::Failed) {
                self.errors.get_or_create(policy).inc();
            }
        }
    }
}

/// Sweeps: how each ended, how long it took, when one last handled every replica.
struct SweepMetrics {
    sweeps: Family<ResultLabels, Counter>,
    duration: Family<PolicyLabels, Histogram>,
    last_success: Family<PolicyLabels, FloatGauge>,
    guard_trips: Family<PolicyLabels, Counter>,
    last_result: Family<ResultLabels, Gauge>,
}

impl SweepMetrics {
    fn register(registry: &mut Registry) -> Self {
        SweepMetrics {
            sweeps: add(registry, "sweeps", "Sweeps by result: ok, replica_failed, guard_tripped, discovery_failed, spec_invalid", Family::default()),
            duration: add(registry, "sweep_duration_seconds", "Duration of a sweep", Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.0, 16))
            })),
            last_success: add(registry, "last_success_timestamp_seconds", "Unix time of the last sweep that handled every replica", Family::default()),
            guard_trips: add(registry, "guard_trips", "Sweeps aborted by a guard", Family::default()),
            last_result: add(registry, "last_sweep_result", "1 for the result of the policy's last sweep (or spec check), 0 for the other results", Family::default()),
        }
    }

    fn record(&self, policy: &PolicyLabels, report: &SweepReport, now: f64) {
        let result = if report.summary.guard.is_some() {
            self.guard_trips.get_or_create(policy).inc();
            "guard_tripped"
        } else if report.summary.error.is_some() {
            "discovery_failed"
        } else if report.summary.replicas_failed > 0 {
            "replica_failed"
        } else {
            self.last_success.get_or_create(policy).set(now);
            "ok"
        };
        self.count(policy, result);
        self.duration
            .get_or_create(policy)
            .observe(report.duration_seconds);
    }

    fn count(&self, policy: &PolicyLabels, result: &str) {
        for r in SWEEP_RESULTS {
            self.last_result
                .get_or_create(&result_labels(policy, r))
                .set(i64::from(r == result));
        }
        self.sweeps
            .get_or_create(&result_labels(policy, result))
            .inc();
    }

    fn forget(&self, policy: &PolicyLabels) {
        self.last_success.remove(policy);
        for result in SWEEP_RESULTS {
            self.last_result.remove(&result_labels(policy, result));
        }
    }
}

fn result_labels(policy: &PolicyLabels, result: &str) -> ResultLabels {
    ResultLabels {
        namespace: policy.namespace.clone(),
        policy: policy.policy.clone(),
        result: result.to_string(),
    }
}

/// The replicas behind a policy: found, refused by discovery, read or not.
struct ReplicaMetrics {
    replicas: Family<StateLabels, Gauge>,
    discovery_refused: Family<PolicyLabels, Counter>,
    unreadable_sweeps: Family<PolicyLabels, Gauge>,
    /// Per policy, per replica (its redacted URL, never a label): consecutive sweeps it could not
    /// be read in. Only the longest run per policy is exported.
    unreadable_streaks: Mutex<HashMap<PolicyLabels, HashMap<String, i64>>>,
}

impl ReplicaMetrics {
    fn register(registry: &mut Registry) -> Self {
        ReplicaMetrics {
            replicas: add(
                registry,
                "replicas",
                "Replicas seen in the last sweep, by state (ok, failed)",
                Family::default(),
            ),
            discovery_refused: add(
                registry,
                "discovery_refused",
                "Replica candidates discovery refused and never contacted: up series with no \
                 scrape target behind them (pushed up samples), addresses outside the allow-list",
                Family::default(),
            ),
            unreadable_sweeps: add(
                registry,
                "replica_unreadable_sweeps",
                "Consecutive sweeps the policy's most troubled replica could not be read in (0: \
                 every replica was read in the last sweep)",
                Family::default(),
            ),
            unreadable_streaks: Mutex::default(),
        }
    }

    fn record(&self, policy: &PolicyLabels, report: &SweepReport) {
        if !report.refused.is_empty() {
            self.discovery_refused
                .get_or_create(policy)
                .inc_by(report.refused.len() as u64);
        }
        let failed = report
            .replicas
            .iter()
            .filter(|r| r.state == ReplicaState::Failed)
            .count();
        for (state, n) in [("ok", report.replicas.len() - failed), ("failed", failed)] {
            self.replicas
                .get_or_create(&state_labels(policy, state))
                .set(n as i64);
        }
        self.record_unreadable(policy, report);
    }

    /// Counts, per replica, the sweeps in a row it could not be read in. A sweep whose discovery
    /// failed read no replica and says nothing about them: the streaks stay as they were.
    fn record_unreadable(&self, policy: &PolicyLabels, report: &SweepReport) {
        if report.replicas.is_empty() && report.summary.error.is_some() {
            return;
        }
        let mut all = self
            .unreadable_streaks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let before = all.remove(policy).unwrap_or_default();
        let now: HashMap<String, i64> = report
            .replicas
            .iter()
            .filter(|r| r.groups.is_none())
            .map(|r| (r.url.clone(), before.get(&r.url).copied().unwrap_or(0) + 1))
            .collect();
        let longest = now.values().copied().max().unwrap_or(0);
        all.insert(policy.clone(), now);
        self.unreadable_sweeps.get_or_create(policy).set(longest);
    }

    fn forget(&self, policy: &PolicyLabels) {
        self.unreadable_sweeps.remove(policy);
        self.unreadable_streaks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(policy);
        for state in ["ok", "failed"] {
            self.replicas.remove(&state_labels(policy, state));
        }
    }
}

fn state_labels(policy: &PolicyLabels, state: &str) -> StateLabels {
    StateLabels {
        namespace: policy.namespace.clone(),
        policy: policy.policy.clone(),
        state: state.to_string(),
    }
}

/// The policy files of `run --policies`. No labels; families, so the series exist only once
/// `run` has loaded its policies (the controller has no configuration files and shows none).
struct ConfigMetrics {
    reload_ok: Family<Vec<(String, String)>, Gauge>,
    reload_success_time: Family<Vec<(String, String)>, FloatGauge>,
}

impl ConfigMetrics {
    fn register(registry: &mut Registry) -> Self {
        ConfigMetrics {
            reload_ok: add(
                registry,
                "config_last_reload_successful",
                "Whether the last load of the policy files succeeded (run --policies), as \
                 Prometheus names it",
                Family::default(),
            ),
            reload_success_time: add(
                registry,
                "config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful load of the policy files (run --policies)",
                Family::default(),
            ),
        }
    }

    fn record(&self, ok: bool, now: f64) {
        self.reload_ok.get_or_create(&vec![]).set(i64::from(ok));
        if ok {
            self.reload_success_time.get_or_create(&vec![]).set(now);
        }
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
