//! Unit tests of `metrics.rs`: what each record call puts in the OpenMetrics text.

use super::*;
use crate::model::Labels;
use crate::plan::Reason;
use crate::report::{ActionReport, ReplicaReport, Summary};

fn report(outcomes: &[Outcome], failed_replica: bool) -> SweepReport {
    let replica = |state| ReplicaReport::for_test("http://pgw:9091/", state, 3);
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
                not_sent: None,
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
    assert!(text
        .contains(r#"pgw_janitor_delete_errors_total{namespace="monitoring",policy="nightly"} 1"#));
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

fn unreadable(mut r: SweepReport, url: &str) -> SweepReport {
    let mut replica = r.replicas[0].clone();
    replica.url = url.into();
    replica.state = ReplicaState::Failed;
    replica.groups = None;
    r.replicas.push(replica);
    r
}

fn line(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(series))
        .map(|l| l[series.len()..].trim().to_string())
}

#[test]
fn a_replica_unreadable_in_consecutive_sweeps_counts_up_and_a_read_resets_it() {
    let m = Metrics::new();
    let series =
        r#"pgw_janitor_replica_unreadable_sweeps{namespace="monitoring",policy="nightly"}"#;
    m.record_sweep(&policy(), &report(&[], false), 1.0);
    assert_eq!(line(&m.encode(), series).as_deref(), Some("0"));
    for _ in 0..3 {
        m.record_sweep(&policy(), &unreadable(report(&[], false), "http://b/"), 1.0);
    }
    // A second replica starting to fail later does not raise the longest run.
    m.record_sweep(
        &policy(),
        &unreadable(unreadable(report(&[], false), "http://b/"), "http://c/"),
        1.0,
    );
    let text = m.encode();
    assert_eq!(line(&text, series).as_deref(), Some("4"), "{text}");
    assert!(!text.contains("http://b/"), "no replica URL in a label");
    // A failed discovery read nothing: the run neither grows nor ends.
    let mut failed = report(&[], false);
    failed.replicas.clear();
    failed.summary.error = Some("no targets".into());
    m.record_sweep(&policy(), &failed, 1.0);
    assert_eq!(line(&m.encode(), series).as_deref(), Some("4"));
    m.record_sweep(&policy(), &unreadable(report(&[], false), "http://c/"), 1.0);
    assert_eq!(
        line(&m.encode(), series).as_deref(),
        Some("2"),
        "b was read again"
    );
    m.record_sweep(&policy(), &report(&[], false), 1.0);
    assert_eq!(line(&m.encode(), series).as_deref(), Some("0"));
}

#[test]
fn the_last_sweep_result_is_one_hot_and_follows_the_latest_sweep() {
    let m = Metrics::new();
    let result = |r: &str| {
        format!(
            r#"pgw_janitor_last_sweep_result{{namespace="monitoring",policy="nightly",result="{r}"}}"#
        )
    };
    m.record_spec_invalid(&policy());
    let text = m.encode();
    for r in SWEEP_RESULTS {
        let want = if r == "spec_invalid" { "1" } else { "0" };
        assert_eq!(
            line(&text, &result(r)).as_deref(),
            Some(want),
            "{r}: {text}"
        );
    }
    m.record_sweep(&policy(), &report(&[], true), 1.0);
    let text = m.encode();
    assert_eq!(line(&text, &result("replica_failed")).as_deref(), Some("1"));
    assert_eq!(line(&text, &result("spec_invalid")).as_deref(), Some("0"));
    m.forget(&policy());
    assert!(!m.encode().contains("last_sweep_result{"), "forgotten");
}

#[test]
fn every_action_is_counted_by_reason_and_outcome() {
    let m = Metrics::new();
    m.record_sweep(
        &policy(),
        &report(
            &[Outcome::Deleted, Outcome::Unconfirmed, Outcome::Unconfirmed],
            false,
        ),
        1.0,
    );
    let text = m.encode();
    let actions = |o: &str| {
        format!(
            r#"pgw_janitor_actions_total{{namespace="monitoring",policy="nightly",reason="expired",outcome="{o}"}}"#
        )
    };
    assert_eq!(
        line(&text, &actions("deleted")).as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(line(&text, &actions("unconfirmed")).as_deref(), Some("2"));
    assert_eq!(
        line(&text, &actions("failed")),
        None,
        "only outcomes that happened"
    );
}

#[test]
fn reloads_are_shown_only_once_there_was_one() {
    let m = Metrics::new();
    assert!(!m.encode().contains("config_last_reload"));
    m.record_reload(true, 1.7e9);
    m.record_reload(false, 1.8e9);
    let text = m.encode();
    // An empty label set is written `{}`, which OpenMetrics and Prometheus accept.
    assert!(
        text.contains("pgw_janitor_config_last_reload_successful{} 0\n"),
        "{text}"
    );
    assert!(text.contains("pgw_janitor_config_last_reload_success_timestamp_seconds{} 1700000000"));
}

/// `delete_attempts` says "requests sent": a DELETE never sent (leadership lost, the replica
/// stopped answering, ...) is a failed action and an error, but no attempt.
#[test]
fn a_delete_never_sent_is_no_attempt() {
    let m = Metrics::new();
    let mut r = report(&[Outcome::Deleted, Outcome::Failed, Outcome::Failed], true);
    r.actions[2].not_sent = Some(crate::report::NotSent::ReplicaStoppedAnswering);
    m.record_sweep(&policy(), &r, 1.0);
    let text = m.encode();
    let per_policy = |name: &str| {
        line(
            &text,
            &format!(r#"pgw_janitor_{name}_total{{namespace="monitoring",policy="nightly"}}"#),
        )
    };
    assert_eq!(
        per_policy("delete_attempts").as_deref(),
        Some("2"),
        "{text}"
    );
    assert_eq!(per_policy("delete_errors").as_deref(), Some("2"), "{text}");
}

/// Names, types and help texts are an interface (the alerts, the dashboard, users' queries): with
/// every family holding a series, the registry describes exactly these, whatever concern
/// registers them.
#[test]
fn every_metric_keeps_its_name_type_and_help() {
    let m = Metrics::new();
    let mut tripped = report(&[Outcome::Deleted, Outcome::WouldDelete], false);
    tripped.summary.guard = Some(crate::report::GuardReport {
        limit: "maxDeletions",
        planned: 2,
        allowed: 1,
        message: String::new(),
    });
    tripped.refused = vec![crate::discover::Refused {
        instance: "127.0.0.1:9".into(),
        url: None,
        why: "no target".into(),
    }];
    m.record_sweep(&policy(), &tripped, 1.0);
    m.record_sweep(&policy(), &report(&[Outcome::Failed], false), 2.0);
    m.record_reload(true, 3.0);
    m.record_reconcile_error("kube");
    let text = m.encode();
    let mut described: Vec<&str> = text.lines().filter(|l| l.starts_with("# ")).collect();
    described.sort();
    let types = [
        ("actions", "counter"),
        ("build", "info"),
        ("config_last_reload_success_timestamp_seconds", "gauge"),
        ("config_last_reload_successful", "gauge"),
        ("delete_attempts", "counter"),
        ("delete_errors", "counter"),
        ("discovery_refused", "counter"),
        ("groups_deleted", "counter"),
        ("groups_would_delete", "counter"),
        ("guard_trips", "counter"),
        ("last_success_timestamp_seconds", "gauge"),
        ("last_sweep_result", "gauge"),
        ("reconcile_errors", "counter"),
        ("replica_unreadable_sweeps", "gauge"),
        ("replicas", "gauge"),
        ("sweep_duration_seconds", "histogram"),
        ("sweeps", "counter"),
    ];
    let helps = [
        "actions Every planned group action, by policy, reason and outcome: deleted, repushed, \
         unconfirmed, failed, kept, aborted, would-delete.",
        "build Build information.",
        "config_last_reload_success_timestamp_seconds Unix time of the last successful load of \
         the policy files (run --policies).",
        "config_last_reload_successful Whether the last load of the policy files succeeded (run \
         --policies), as Prometheus names it.",
        "delete_attempts DELETE or wipe requests sent.",
        "delete_errors Deletes that failed or stayed unconfirmed.",
        "discovery_refused Replica candidates discovery refused and never contacted: up series \
         with no scrape target behind them (pushed up samples), addresses outside the \
         allow-list.",
        "groups_deleted Groups deleted and confirmed gone, by policy and reason.",
        "groups_would_delete Groups a dry run would have deleted, by policy and reason.",
        "guard_trips Sweeps aborted by a guard.",
        "last_success_timestamp_seconds Unix time of the last sweep that handled every replica.",
        "last_sweep_result 1 for the result of the policy's last sweep (or spec check), 0 for the \
         other results.",
        "reconcile_errors Reconcile errors by category.",
        "replica_unreadable_sweeps Consecutive sweeps the policy's most troubled replica could \
         not be read in (0: every replica was read in the last sweep).",
        "replicas Replicas seen in the last sweep, by state (ok, failed).",
        "sweep_duration_seconds Duration of a sweep.",
        "sweeps Sweeps by result: ok, replica_failed, guard_tripped, discovery_failed, \
         spec_invalid.",
    ];
    let mut want: Vec<String> = helps
        .iter()
        .map(|h| format!("# HELP pgw_janitor_{h}"))
        .chain(
            types
                .iter()
                .map(|(n, t)| format!("# TYPE pgw_janitor_{n} {t}")),
        )
        .chain(["# EOF".to_string()])
        .collect();
    want.sort();
    assert_eq!(described, want);
}
