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
use std::sync::atomic::AtomicU64;

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
}

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
            "reconcile_errors",
            "Reconcile errors by category",
            m.reconcile_errors.clone(),
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
            match action.outcome {
                Outcome::Deleted | Outcome::Repushed => {
                    self.deleted.get_or_create(&labels).inc();
                }
                Outcome::WouldDelete => {
                    self.would_delete.get_or_create(&labels).inc();
                }
                _ => {}
            }
            if matches!(
                action.outcome,
                Outcome::Deleted | Outcome::Repushed | Outcome::Unconfirmed | Outcome::Failed
            ) {
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
    }

    /// A policy whose spec was refused: counted, never swept.
    pub fn record_spec_invalid(&self, policy: &PolicyLabels) {
        self.count_sweep(policy, "spec_invalid");
    }

    fn count_sweep(&self, policy: &PolicyLabels, result: &str) {
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

    /// A deleted policy: its gauges go, so no stale "last success" lingers.
    pub fn forget(&self, policy: &PolicyLabels) {
        self.last_success.remove(policy);
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
mod tests {
    use super::*;
    use crate::model::Labels;
    use crate::plan::Reason;
    use crate::report::{ActionReport, ReplicaReport, Summary};

    fn report(outcomes: &[Outcome], failed_replica: bool) -> SweepReport {
        let replica = |state| ReplicaReport {
            url: "http://pgw:9091/".into(),
            state,
            error: None,
            groups: Some(3),
            unkeyed_groups: 0,
            version: None,
            admin_api: None,
            admin_wipe: false,
            replanned: false,
            read_seconds: None,
            max_delete_window_seconds: None,
            start_time: None,
            restarted: None,
        };
        let mut replicas = vec![replica(ReplicaState::Ok)];
        if failed_replica {
            replicas.push(replica(ReplicaState::Failed));
        }
        SweepReport {
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_seconds: 0.5,
            dry_run: false,
            action: "delete",
            replicas,
            actions: outcomes
                .iter()
                .map(|&outcome| ActionReport {
                    gateway: "http://pgw:9091/".into(),
                    labels: Labels::from([("job".to_string(), "secret-job".to_string())]),
                    reason: Reason::Expired,
                    age_seconds: Some(10.0),
                    outcome,
                    detail: String::new(),
                    error: None,
                })
                .collect(),
            notes: vec![],
            refused: vec![],
            summary: Summary {
                replicas_failed: usize::from(failed_replica),
                ..Default::default()
            },
        }
    }

    fn policy() -> PolicyLabels {
        PolicyLabels {
            namespace: "monitoring".into(),
            policy: "nightly".into(),
        }
    }

    #[test]
    fn a_sweep_is_counted_by_reason_and_result_without_grouping_labels() {
        let m = Metrics::new();
        m.record_sweep(
            &policy(),
            &report(
                &[Outcome::Deleted, Outcome::Deleted, Outcome::Failed],
                false,
            ),
            1.7e9,
        );
        let text = m.encode();
        assert!(text.contains(r#"pgw_janitor_groups_deleted_total{namespace="monitoring",policy="nightly",reason="expired"} 2"#), "{text}");
        assert!(text.contains(
            r#"pgw_janitor_delete_errors_total{namespace="monitoring",policy="nightly"} 1"#
        ));
        assert!(text.contains(
            r#"pgw_janitor_sweeps_total{namespace="monitoring",policy="nightly",result="ok"} 1"#
        ));
        assert!(text.contains(r#"pgw_janitor_last_success_timestamp_seconds{namespace="monitoring",policy="nightly"} 1700000000"#));
        assert!(text.contains("pgw_janitor_build_info{version="));
        assert!(
            !text.contains("secret-job"),
            "no grouping-key label on any metric"
        );
        assert!(!text.contains("pushgateway_"), "own prefix only");
        assert!(text.ends_with("# EOF\n"), "OpenMetrics");
    }

    #[test]
    fn refused_candidates_are_counted_without_their_addresses() {
        let m = Metrics::new();
        let mut r = report(&[], false);
        r.refused = vec![crate::discover::Refused {
            instance: "127.0.0.1:9".into(),
            url: None,
            why: "no target".into(),
        }];
        m.record_sweep(&policy(), &r, 1.0);
        let text = m.encode();
        assert!(
            text.contains(
                r#"pgw_janitor_discovery_refused_total{namespace="monitoring",policy="nightly"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains("127.0.0.1"), "no address in a label");
    }

    #[test]
    fn a_failed_replica_does_not_update_last_success() {
        let m = Metrics::new();
        m.record_sweep(&policy(), &report(&[], true), 1.7e9);
        let text = m.encode();
        assert!(!text.contains("last_success_timestamp_seconds{"), "{text}");
        assert!(text.contains(
            r#"pgw_janitor_replicas{namespace="monitoring",policy="nightly",state="failed"} 1"#
        ));
        assert!(text.contains(r#"result="replica_failed""#));
    }

    #[test]
    fn dry_runs_count_would_delete_and_forget_removes_gauges() {
        let m = Metrics::new();
        m.record_sweep(&policy(), &report(&[Outcome::WouldDelete], false), 1.0);
        assert!(m.encode().contains(r#"pgw_janitor_groups_would_delete_total{namespace="monitoring",policy="nightly",reason="expired"} 1"#));
        m.forget(&policy());
        assert!(!m.encode().contains("last_success_timestamp_seconds{"));
    }
}
