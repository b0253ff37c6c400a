use super::*;
use crate::model::Labels;
use crate::plan::Reason;
use crate::report::{ActionReport, Failure, GuardReport, ReplicaReport, Summary};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn replica(url: &str, state: ReplicaState, error: Option<&str>) -> ReplicaReport {
    ReplicaReport {
        error: error.map(Failure::from),
        ..ReplicaReport::for_test(url, state, 2)
    }
}

fn action(job: &str, outcome: Outcome) -> ActionReport {
    ActionReport {
        gateway: "http://a:9091/".into(),
        labels: Labels::from([("job".to_string(), job.to_string())]),
        reason: Reason::Expired,
        age_seconds: Some(5.0),
        outcome,
        detail: String::new(),
        error: None,
        not_sent: None,
    }
}

fn report(actions: Vec<ActionReport>, replicas: Vec<ReplicaReport>) -> SweepReport {
    let failed = replicas
        .iter()
        .filter(|r| r.state == ReplicaState::Failed)
        .count();
    let mut r = SweepReport {
        started_at: "2026-01-01T00:00:00Z".into(),
        duration_seconds: 0.25,
        dry_run: false,
        action: "delete",
        replicas,
        actions,
        notes: vec![],
        refused: vec![],
        summary: Summary::default(),
    };
    r.summary = Summary {
        replicas: r.replicas.len(),
        replicas_failed: failed,
        groups_seen: 4,
        deleted: r.count(Outcome::Deleted),
        would_delete: r.count(Outcome::WouldDelete),
        ..Default::default()
    };
    r
}

fn cond<'a>(s: &'a PushgatewayRetentionStatus, t: &str) -> &'a Condition {
    s.conditions.iter().find(|c| c.type_ == t).expect(t)
}

#[test]
fn a_clean_sweep_is_ready_counts_totals_and_samples_groups() {
    let r = report(
        vec![action("a", Outcome::Deleted), action("b", Outcome::Deleted)],
        vec![replica("http://a:9091/", ReplicaState::Ok, None)],
    );
    let now = ts("2026-01-01T00:00:01Z");
    let s = swept(&Default::default(), &r, Some(3), None, now);
    assert_eq!(cond(&s, READY).status, "True");
    assert_eq!(cond(&s, DEGRADED).status, "False");
    assert_eq!(cond(&s, SPEC_INVALID).status, "False");
    assert_eq!(cond(&s, GUARD_TRIPPED).status, "False");
    assert_eq!(cond(&s, READY).observed_generation, Some(3));
    let last = s.last_sweep.as_ref().unwrap();
    assert_eq!((last.deleted, last.replicas_found), (2, 1));
    assert_eq!(last.sample, vec![r#"{job="a"}"#, r#"{job="b"}"#]);
    assert_eq!(
        (s.totals.sweeps, s.totals.deleted, s.totals.failed_sweeps),
        (1, 2, 0)
    );
    let again = swept(&s, &r, Some(3), None, ts("2026-01-01T00:05:00Z"));
    assert_eq!(again.totals.deleted, 4, "totals add up over sweeps");
    assert_eq!(
        cond(&again, READY).last_transition_time,
        Time(now),
        "an unchanged status keeps its transition time"
    );
}

#[test]
fn a_failed_replica_degrades_and_names_the_replica() {
    let r = report(
        vec![],
        vec![
            replica("http://a:9091/", ReplicaState::Ok, None),
            replica(
                "http://b:9091/",
                ReplicaState::Failed,
                Some("connection refused"),
            ),
        ],
    );
    let s = swept(
        &Default::default(),
        &r,
        Some(1),
        None,
        ts("2026-01-01T00:00:01Z"),
    );
    assert_eq!(cond(&s, READY).status, "False");
    let degraded = cond(&s, DEGRADED);
    assert_eq!(degraded.status, "True");
    assert!(
        degraded
            .message
            .contains("http://b:9091/: connection refused"),
        "{}",
        degraded.message
    );
    assert_eq!(s.totals.failed_sweeps, 1);
}

#[test]
fn a_guard_trip_says_so_in_its_own_condition() {
    let mut r = report(
        vec![action("a", Outcome::Aborted)],
        vec![replica("http://a:9091/", ReplicaState::Ok, None)],
    );
    r.summary.guard = Some(GuardReport {
        limit: "count",
        planned: 1,
        allowed: 0,
        message: "plan deletes 1 groups, maxDeletions.count is 0".into(),
    });
    let s = swept(
        &Default::default(),
        &r,
        None,
        None,
        ts("2026-01-01T00:00:01Z"),
    );
    assert_eq!(cond(&s, GUARD_TRIPPED).status, "True");
    assert!(cond(&s, GUARD_TRIPPED).message.contains("maxDeletions"));
    assert_eq!(cond(&s, READY).reason, "GuardTripped");
}

#[test]
fn an_invalid_spec_keeps_the_last_sweep_and_a_fix_clears_it() {
    let r = report(
        vec![action("a", Outcome::Deleted)],
        vec![replica("http://a:9091/", ReplicaState::Ok, None)],
    );
    let good = swept(
        &Default::default(),
        &r,
        Some(1),
        None,
        ts("2026-01-01T00:00:01Z"),
    );
    let bad = spec_invalid(
        &good,
        "invalid spec.selector: bad regex",
        Some(2),
        ts("2026-01-01T00:01:00Z"),
    );
    assert_eq!(cond(&bad, SPEC_INVALID).status, "True");
    assert_eq!(cond(&bad, SPEC_INVALID).reason, "InvalidSpec");
    assert_eq!(cond(&bad, READY).status, "False");
    assert_eq!(bad.last_sweep, good.last_sweep);
    assert_eq!(bad.observed_generation, Some(2));
    let fixed = waiting(
        &bad,
        Some(3),
        ts("2026-01-01T00:06:00Z"),
        None,
        ts("2026-01-01T00:02:00Z"),
    );
    assert_eq!(cond(&fixed, SPEC_INVALID).status, "False");
    assert_eq!(cond(&fixed, READY).reason, "Waiting");
}

#[test]
fn discovery_failures_count_but_keep_the_last_sweep() {
    let s = discovery_failed(
        &Default::default(),
        "discovery: no endpoints",
        Some(1),
        ts("2026-01-01T00:00:00Z"),
    );
    assert_eq!(cond(&s, DEGRADED).reason, "DiscoveryFailed");
    assert_eq!(cond(&s, READY).status, "False");
    assert_eq!((s.totals.sweeps, s.totals.failed_sweeps), (1, 1));
    assert!(s.last_sweep.is_none());
}

#[test]
fn the_status_carries_only_the_janitors_words_about_a_failed_replica() {
    let remote = crate::Error::Status {
        url: "http://a:9091/api/v1/metrics".into(),
        status: 500,
        body: "password=hunter2".into(),
    };
    let r = report(
        vec![],
        vec![ReplicaReport {
            error: Some(Failure::from(&remote)),
            ..ReplicaReport::for_test("http://a:9091/", ReplicaState::Failed, 0)
        }],
    );
    assert!(
        r.replicas[0].error.as_deref().unwrap().contains("hunter2"),
        "the report keeps it"
    );
    let s = swept(
        &Default::default(),
        &r,
        Some(1),
        None,
        ts("2026-01-01T00:00:00Z"),
    );
    let text = serde_json::to_string(&s).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("HTTP 500: Internal Server Error"), "{text}");
    let events: Vec<_> = crate::controller::events::for_sweep(&r)
        .into_iter()
        .filter_map(|e| e.note)
        .collect();
    assert!(events.iter().any(|n| n.contains("HTTP 500")), "{events:?}");
    assert!(events.iter().all(|n| !n.contains("hunter2")), "{events:?}");
}
