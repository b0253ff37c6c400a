use super::*;
use crate::model::Group;

pub(super) const H: f64 = 3600.0;
pub(super) const NOW: f64 = 1_700_000_000.0;

pub(super) fn key(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A group last pushed `age` seconds before `NOW`.
pub(super) fn pushed(pairs: &[(&str, &str)], age: f64) -> Group {
    Group {
        labels: key(pairs),
        push_time: NOW - age,
        push_failure_time: 0.0,
        last_push_successful: true,
        declared_ttl: None,
        series: Some(1),
        instance_unsure: false,
    }
}

/// A phantom: never pushed successfully, last failure `age` seconds before `NOW`.
pub(super) fn phantom(pairs: &[(&str, &str)], age: f64) -> Group {
    Group {
        push_time: 0.0,
        push_failure_time: NOW - age,
        last_push_successful: false,
        ..pushed(pairs, 0.0)
    }
}

pub(super) fn snap(clock: f64, groups: Vec<Group>) -> Snapshot {
    Snapshot {
        clock,
        source: Default::default(),
        naming: Default::default(),
        groups,
        unkeyed: vec![],
    }
}

pub(super) fn policy(ttl_h: f64) -> Rules {
    Rules {
        ttl: Duration::from_secs_f64(ttl_h * H),
        selector: Selector::default(),
        superseded_grace: Some(Duration::from_secs(300)),
        ttl_from_metric: None,
        min_ttl: Duration::from_secs(60),
        max_ttl: None,
        action: Action::DeleteGroups,
    }
}

pub(super) fn run(p: &Rules, snaps: &[Option<&Snapshot>]) -> Plan {
    let inputs: Vec<ReplicaInput> = snaps
        .iter()
        .map(|s| ReplicaInput {
            snapshot: *s,
            status: None,
        })
        .collect();
    plan(p, &inputs)
}

/// (replica, job, reason) of every decision, in plan order.
pub(super) fn summary(plan: &Plan) -> Vec<(usize, String, Reason)> {
    plan.decisions()
        .map(|d| (d.replica, d.labels["job"].to_string(), d.reason))
        .collect()
}
#[test]
fn expires_only_groups_older_than_ttl() {
    let s = snap(
        NOW,
        vec![
            pushed(&[("job", "old")], 7.0 * H + 120.0),
            pushed(&[("job", "edge")], 6.0 * H),
            pushed(&[("job", "new")], H),
        ],
    );
    let plan = run(&policy(6.0), &[Some(&s)]);
    assert_eq!(summary(&plan), vec![(0, "old".into(), Reason::Expired)]);
    let d = &plan.replicas[0].deletes[0];
    assert_eq!(d.age_seconds, Some(7.0 * H + 120.0));
    assert_eq!(d.detail, "age 7h 2m over ttl 6h");
}

#[test]
fn age_is_measured_on_each_replicas_own_clock() {
    // Replica 1's clock is a day ahead, and so are its push times: its group is 1h old, not 25h.
    let r0 = snap(NOW, vec![pushed(&[("job", "a")], 7.0 * H)]);
    let mut g = pushed(&[("job", "b")], H);
    g.push_time += 24.0 * H;
    let r1 = snap(NOW + 24.0 * H, vec![g]);
    let plan = run(&policy(6.0), &[Some(&r0), Some(&r1)]);
    assert_eq!(summary(&plan), vec![(0, "a".into(), Reason::Expired)]);
}

#[test]
fn groups_outside_the_selector_are_never_decided() {
    let s = snap(
        NOW,
        vec![
            pushed(&[("job", "nightly-x")], 9.0 * H),
            pushed(&[("job", "keep")], 9.0 * H),
            phantom(&[("job", "keep"), ("instance", "")], 9.0 * H),
        ],
    );
    let mut p = policy(6.0);
    p.selector = r#"job=~"nightly-.*""#.parse().unwrap();
    for action in [
        Action::DeleteGroups,
        Action::Wipe {
            only_if_all_stale: false,
        },
        Action::Wipe {
            only_if_all_stale: true,
        },
    ] {
        p.action = action;
        let plan = run(&p, &[Some(&s)]);
        let jobs: Vec<_> = summary(&plan).into_iter().map(|(_, j, _)| j).collect();
        assert_eq!(jobs, vec!["nightly-x".to_string()], "{action:?}");
    }
}

#[test]
fn group_without_any_reference_time_is_kept_with_a_note() {
    let mut g = phantom(&[("job", "ghost")], 0.0);
    g.push_failure_time = 0.0;
    let s = snap(NOW, vec![g]);
    let plan = run(&policy(1.0), &[Some(&s)]);
    assert_eq!(plan.total_deletes(), 0);
    assert!(
        plan.replicas[0].notes[0].contains(r#"no age; kept: {job="ghost"}"#),
        "{:?}",
        plan.replicas[0].notes
    );
}

#[test]
fn declared_ttl_replaces_ttl_within_bounds() {
    let mut p = policy(6.0);
    p.ttl_from_metric = Some("janitor_ttl_seconds".into());
    p.max_ttl = Some(Duration::from_secs(48 * 3600));
    let with = |job: &str, age_h: f64, declared: f64| {
        let mut g = pushed(&[("job", job)], age_h * H);
        g.declared_ttl = Some(declared);
        g
    };
    let s = snap(
        NOW,
        vec![
            with("short", 2.0, H),                // declared 1h, 2h old: expired
            with("long", 10.0, 24.0 * H),         // declared 24h, 10h old: kept
            with("floor", 0.05, 1.0), // declared 1s raised to the 1m floor; 3m old: expired
            with("ceiling", 50.0, 1e9), // declared huge, capped at 48h: expired
            pushed(&[("job", "plain")], 5.0 * H), // no declaration, policy ttl 6h: kept
        ],
    );
    let plan = run(&p, &[Some(&s)]);
    let jobs: Vec<_> = summary(&plan).into_iter().map(|(_, j, _)| j).collect();
    assert_eq!(jobs, vec!["ceiling", "floor", "short"]);
    assert_eq!(
        plan.replicas[0].deletes[2].detail,
        "age 2h over declared ttl 1h"
    );
    assert_eq!(
        plan.replicas[0].deletes[1].detail,
        "age 3m over declared ttl 1m"
    );
    // Without --ttl-from-metric the same groups follow the policy ttl.
    p.ttl_from_metric = None;
    let jobs: Vec<_> = summary(&run(&p, &[Some(&s)]))
        .into_iter()
        .map(|(_, j, _)| j)
        .collect();
    assert_eq!(jobs, vec!["ceiling", "long"]);
}

#[test]
fn invalid_declared_ttl_falls_back_to_ttl_with_a_note() {
    let mut p = policy(6.0);
    p.ttl_from_metric = Some("janitor_ttl_seconds".into());
    let groups = [f64::NAN, 0.0, -5.0, f64::INFINITY]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut g = pushed(&[("job", &format!("j{i}"))], 2.0 * H);
            g.declared_ttl = Some(*v);
            g
        })
        .collect();
    let s = snap(NOW, groups);
    let plan = run(&p, &[Some(&s)]);
    assert_eq!(plan.total_deletes(), 0, "2h old under the 6h fallback");
    let note = &plan.replicas[0].notes[0];
    assert!(
        note.starts_with("4 selected group(s) declare an invalid janitor_ttl_seconds"),
        "{note}"
    );
    assert!(note.contains("ttl 6h used instead"), "{note}");
}
