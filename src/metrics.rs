//! The janitor's own metrics, OpenMetrics text, under the prefix `pgw_janitor` (never
//! `pushgateway_`, which belongs to the gateways). Labels are bounded: a policy's namespace and
//! name, a reason, a result, an error category. Never a grouping key, never error text.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
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

pub struct Metrics {
    registry: Registry,
    deleted: Family<ReasonLabels, Counter>,
    would_delete: Family<ReasonLabels, Counter>,
    delete_attempts: Family<PolicyLabels, Counter>,
    delete_errors: Family<PolicyLabels, Counter>,
    sweeps: Family<ResultLabels, Counter>,
    sweep_duration: Family<PolicyLabels, Histogram>,
    last_success: Family<PolicyLabels, FloatGauge>,
    replicas: Family<StateLabels, Gauge>,
    guard_trips: Family<PolicyLabels, Counter>,
    discovery_refused: Family<PolicyLabels, Counter>,
    reconcile_errors: Family<CategoryLabels, Counter>,
    // No labels; a family, so the series exist only once `run` has loaded its policies (the
    // controller has no configuration files and shows none).
    reload_ok: Family<Vec<(String, String)>, Gauge>,
    reload_success_time: Family<Vec<(String, String)>, FloatGauge>,
    actions: Family<OutcomeLabels, Counter>,
    last_result: Family<ResultLabels, Gauge>,
    unreadable_sweeps: Family<PolicyLabels, Gauge>,
    /// Per policy, per replica (its redacted URL, never a label): consecutive sweeps it could not
    /// be read in. Only the longest run per policy is exported.
    unreadable_streaks: Mutex<HashMap<PolicyLabels, HashMap<String, i64>>>,
}

/// Every value `pgw_janitor_sweeps_total` and `pgw_janitor_last_sweep_result` take in `result`.
pub const SWEEP_RESULTS: [&str; 5] = [
    "ok",
    "replica_failed",
    "guard_tripped",
    "discovery_failed",
    "spec_invalid",
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pgw_janitor");
        let m = Metrics {
            deleted: Family::default(),
            would_delete: Family::default(),
            delete_attempts: Family::default(),
            delete_errors: Family::default(),
            sweeps: Family::default(),
            sweep_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.0, 16))
            }),
            last_success: Family::default(),
            replicas: Family::default(),
            guard_trips: Family::default(),
            discovery_refused: Family::default(),
            reconcile_errors: Family::default(),
            reload_ok: Family::default(),
            reload_success_time: Family::default(),
            actions: Family::default(),
            last_result: Family::default(),
            unreadable_sweeps: Family::default(),
            unreadable_streaks: Mutex::default(),
            registry: Registry::default(),
        };
        registry.register(
            "groups_deleted",
            "Groups deleted and confirmed gone, by policy and reason",
            m.deleted.clone(),
        );
        registry.register(
            "groups_would_delete",
            "Groups a dry run would have deleted, by policy and reason",
            m.would_delete.clone(),
        );
        registry.register(
            "delete_attempts",
            "DELETE or wipe requests sent",
            m.delete_attempts.clone(),
        );
        registry.register(
            "delete_errors",
            "Deletes that failed or stayed unconfirmed",
            m.delete_errors.clone(),
        );
        registry.register(
            "sweeps",
            "Sweeps by result: ok, replica_failed, guard_tripped, discovery_failed, spec_invalid",
            m.sweeps.clone(),
        );
        registry.register(
            "sweep_duration_seconds",
            "Duration of a sweep",
            m.sweep_duration.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last sweep that handled every replica",
            m.last_success.clone(),
        );
        registry.register(
            "replicas",
            "Replicas seen in the last sweep, by state (ok, failed)",
            m.replicas.clone(),
        );
        registry.register(
            "guard_trips",
            "Sweeps aborted by a guard",
            m.guard_trips.clone(),
        );
        registry.register(
            "discovery_refused",
            "Replica candidates discovery refused and never contacted: up series with no scrape \
             target behind them (pushed up samples), addresses outside the allow-list",
            m.discovery_refused.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "Whether the last load of the policy files succeeded (run --policies), as Prometheus \
             names it",
            m.reload_ok.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful load of the policy files (run --policies)",
            m.reload_success_time.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconcile errors by category",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "actions",
            "Every planned group action, by policy, reason and outcome: deleted, repushed, \
             unconfirmed, failed, kept, aborted, would-delete",
            m.actions.clone(),
        );
        registry.register(
            "last_sweep_result",
            "1 for the result of the policy's last sweep (or spec check), 0 for the other results",
            m.last_result.clone(),
        );
        registry.register(
            "replica_unreadable_sweeps",
            "Consecutive sweeps the policy's most troubled replica could not be read in (0: every \
             replica was read in the last sweep)",
            m.unreadable_sweeps.clone(),
        );
        registry.register(
            "build",
            "Build information",
            Info::new(vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        );
        Metrics { registry, ..m }
    }

    /// Records one sweep's report. `now` is the Unix time the sweep ended.
    pub fn record_sweep(&self, policy: &PolicyLabels, report: &SweepReport, now: f64) {
        let with = |extra: &str| {
            (
                policy.namespace.clone(),
                policy.policy.clone(),
                extra.to_string(),
            )
        };
        if !report.refused.is_empty() {
            self.discovery_refused
                .get_or_create(policy)
                .inc_by(report.refused.len() as u64);
        }
        for action in &report.actions {
            let (namespace, name, reason) = with(action.reason.as_str());
            let labels = ReasonLabels {
                namespace,
                policy: name,
                reason,
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
                self.delete_attempts.get_or_create(policy).inc();
            }
            if matches!(action.outcome, Outcome::Unconfirmed | Outcome::Failed) {
                self.delete_errors.get_or_create(policy).inc();
            }
        }
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
        self.count_sweep(policy, result);
        self.sweep_duration
            .get_or_create(policy)
            .observe(report.duration_seconds);
        let failed = report
            .replicas
            .iter()
            .filter(|r| r.state == ReplicaState::Failed)
            .count();
        for (state, n) in [("ok", report.replicas.len() - failed), ("failed", failed)] {
            let (namespace, name, state) = with(state);
            self.replicas
                .get_or_create(&StateLabels {
                    namespace,
                    policy: name,
                    state,
                })
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

    /// A policy whose spec was refused: counted, never swept.
    pub fn record_spec_invalid(&self, policy: &PolicyLabels) {
        self.count_sweep(policy, "spec_invalid");
    }

    fn count_sweep(&self, policy: &PolicyLabels, result: &str) {
        for r in SWEEP_RESULTS {
            self.last_result
                .get_or_create(&ResultLabels {
                    namespace: policy.namespace.clone(),
                    policy: policy.policy.clone(),
                    result: r.to_string(),
                })
                .set(i64::from(r == result));
        }
        self.sweeps
            .get_or_create(&ResultLabels {
                namespace: policy.namespace.clone(),
                policy: policy.policy.clone(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn record_reconcile_error(&self, category: &'static str) {
        self.reconcile_errors
            .get_or_create(&CategoryLabels {
                category: category.to_string(),
            })
            .inc();
    }

    /// One load of the policy files: whether it succeeded, at Unix time `now`.
    pub fn record_reload(&self, ok: bool, now: f64) {
        self.reload_ok.get_or_create(&vec![]).set(i64::from(ok));
        if ok {
            self.reload_success_time.get_or_create(&vec![]).set(now);
        }
    }

    /// A deleted policy: its gauges go, so no stale "last success" lingers.
    pub fn forget(&self, policy: &PolicyLabels) {
        self.last_success.remove(policy);
        self.unreadable_sweeps.remove(policy);
        self.unreadable_streaks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(policy);
        for result in SWEEP_RESULTS {
            self.last_result.remove(&ResultLabels {
                namespace: policy.namespace.clone(),
                policy: policy.policy.clone(),
                result: result.to_string(),
            });
        }
        for state in ["ok", "failed"] {
            self.replicas.remove(&StateLabels {
                namespace: policy.namespace.clone(),
                policy: policy.policy.clone(),
                state: state.to_string(),
            });
        }
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("encoding to a String cannot fail");
        out
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
