//! Superseded copies across replicas, and poison phantoms.

use super::tests::*;
use super::*;
use crate::model::Group;

#[test]
fn older_copy_is_superseded_by_a_fresher_copy_on_another_replica() {
    let r0 = snap(NOW, vec![pushed(&[("job", "a")], 40.0 * 60.0)]);
    // Replica 1 is 3h behind in clock, but its copy is only 5m old on its own clock.
    let mut fresh = pushed(&[("job", "a")], 5.0 * 60.0);
    fresh.push_time -= 3.0 * H;
    let r1 = snap(NOW - 3.0 * H, vec![fresh]);
    let plan = run(&policy(6.0), &[Some(&r0), Some(&r1)]);
    assert_eq!(summary(&plan), vec![(0, "a".into(), Reason::Superseded)]);
    assert_eq!(
        plan.replicas[0].deletes[0].detail,
        "newer copy on replica 1, 35m fresher"
    );
}

#[test]
fn copies_within_grace_or_equal_age_are_not_superseded() {
    let mut p = policy(6.0);
    p.superseded_grace = Some(Duration::from_secs(600));
    let r0 = snap(
        NOW,
        vec![
            pushed(&[("job", "a")], 900.0),
            pushed(&[("job", "b")], 900.0),
        ],
    );
    let r1 = snap(
        NOW,
        vec![
            pushed(&[("job", "a")], 400.0),
            pushed(&[("job", "b")], 900.0),
        ],
    );
    assert_eq!(run(&p, &[Some(&r0), Some(&r1)]).total_deletes(), 0);
    p.superseded_grace = Some(Duration::ZERO);
    assert_eq!(
        summary(&run(&p, &[Some(&r0), Some(&r1)])),
        vec![(0, "a".into(), Reason::Superseded)]
    );
}

#[test]
fn superseded_is_off_when_disabled_or_a_replica_was_not_read() {
    let r0 = snap(NOW, vec![pushed(&[("job", "a")], 2.0 * H)]);
    let r1 = snap(NOW, vec![pushed(&[("job", "a")], 60.0)]);
    let mut p = policy(6.0);
    p.superseded_grace = None;
    assert_eq!(run(&p, &[Some(&r0), Some(&r1)]).total_deletes(), 0);

    let plan = run(&policy(6.0), &[Some(&r0), Some(&r1), None]);
    assert_eq!(plan.total_deletes(), 0);
    assert_eq!(
        plan.replicas[0].notes,
        vec!["superseded check skipped this run: replica 2 not read"]
    );
    assert_eq!(plan.replicas[2].notes, vec!["not read: nothing decided"]);
}

#[test]
fn expired_wins_over_superseded() {
    let r0 = snap(NOW, vec![pushed(&[("job", "a")], 8.0 * H)]);
    let r1 = snap(NOW, vec![pushed(&[("job", "a")], 60.0)]);
    let plan = run(&policy(6.0), &[Some(&r0), Some(&r1)]);
    assert_eq!(summary(&plan), vec![(0, "a".into(), Reason::Expired)]);
}

#[test]
fn phantom_or_expired_copies_never_supersede_a_live_one() {
    let mut p = policy(6.0);
    p.ttl_from_metric = Some("ttl".into());
    // Replica 1's copy is fresher but itself expires under its declared 1m TTL.
    let mut short = pushed(&[("job", "a")], 120.0);
    short.declared_ttl = Some(60.0);
    let r0 = snap(
        NOW,
        vec![pushed(&[("job", "a")], H), pushed(&[("job", "b")], H)],
    );
    let r1 = snap(NOW, vec![short, phantom(&[("job", "b")], 10.0)]);
    let plan = run(&p, &[Some(&r0), Some(&r1)]);
    assert_eq!(summary(&plan), vec![(1, "a".into(), Reason::Expired)]);
}

#[test]
fn colliding_phantom_is_poison_at_once_and_the_real_group_is_judged_normally() {
    let s = snap(
        NOW,
        vec![
            pushed(&[("job", "a")], 60.0),
            phantom(&[("job", "a"), ("instance", "")], 5.0),
            phantom(&[("job", "lonely"), ("instance", "")], 5.0),
        ],
    );
    let plan = run(&policy(6.0), &[Some(&s)]);
    let d = &plan.replicas[0].deletes;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].labels, key(&[("job", "a"), ("instance", "")]));
    assert_eq!(d[0].reason, Reason::Poison);
    assert_eq!(
        d[0].detail,
        r#"phantom (no successful push) exports the same series as {job="a"}"#
    );
}

#[test]
fn poison_wins_over_expired_and_needs_no_age() {
    let mut ghost = phantom(&[("job", "a"), ("instance", "")], 0.0);
    ghost.push_failure_time = 0.0;
    let old_ghost = phantom(&[("job", "b"), ("instance", "")], 9.0 * H);
    let s = snap(
        NOW,
        vec![
            pushed(&[("job", "a")], 60.0),
            ghost,
            pushed(&[("job", "b")], 60.0),
            old_ghost,
        ],
    );
    let plan = run(&policy(6.0), &[Some(&s)]);
    let got: Vec<_> = plan
        .decisions()
        .map(|d| (&d.labels["job"], d.reason, d.age_seconds))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", Reason::Poison, None),
            ("b", Reason::Poison, Some(9.0 * H))
        ]
    );
}

#[test]
fn phantom_without_collision_ages_from_its_failure_time() {
    let s = snap(
        NOW,
        vec![
            phantom(&[("job", "old")], 7.0 * H),
            phantom(&[("job", "new")], H),
        ],
    );
    let plan = run(&policy(6.0), &[Some(&s)]);
    assert_eq!(summary(&plan), vec![(0, "old".into(), Reason::Expired)]);
}

/// A copy read from `/metrics`: no `instance`, which may be absent or empty.
fn light(pairs: &[(&str, &str)], age: f64) -> Group {
    Group {
        instance_unsure: true,
        ..pushed(pairs, age)
    }
}

#[test]
fn a_light_copy_is_superseded_by_either_exact_twin_and_supersedes_both() {
    let a = &[("job", "a")][..];
    let a_empty = &[("job", "a"), ("instance", "")][..];
    for exact in [a, a_empty] {
        // The light copy is older: the fresher exact one (a JSON read) supersedes it.
        let r0 = snap(NOW, vec![light(a, 2.0 * H)]);
        let r1 = snap(NOW, vec![pushed(exact, 60.0)]);
        let plan = run(&policy(6.0), &[Some(&r0), Some(&r1)]);
        assert_eq!(summary(&plan), vec![(0, "a".into(), Reason::Superseded)]);
        assert!(
            plan.replicas[0].deletes[0].instance_unsure,
            "deleted as either twin"
        );
        // The exact copy is older: the light one supersedes it.
        let r0 = snap(NOW, vec![pushed(exact, 2.0 * H)]);
        let r1 = snap(NOW, vec![light(a, 60.0)]);
        let plan = run(&policy(6.0), &[Some(&r0), Some(&r1)]);
        assert_eq!(summary(&plan), vec![(0, "a".into(), Reason::Superseded)]);
        assert_eq!(plan.replicas[0].deletes[0].labels, key(exact));
        assert!(!plan.replicas[0].deletes[0].instance_unsure);
    }
    // Two exact twins stay two keys, as before.
    let r0 = snap(NOW, vec![pushed(a, 2.0 * H)]);
    let r1 = snap(NOW, vec![pushed(a_empty, 60.0)]);
    assert_eq!(
        run(&policy(6.0), &[Some(&r0), Some(&r1)]).total_deletes(),
        0
    );
    // A non-empty instance is never a twin of a light copy.
    let r0 = snap(NOW, vec![light(a, 2.0 * H)]);
    let r1 = snap(NOW, vec![pushed(&[("job", "a"), ("instance", "x")], 60.0)]);
    assert_eq!(
        run(&policy(6.0), &[Some(&r0), Some(&r1)]).total_deletes(),
        0
    );
}

#[test]
fn the_freshest_light_copy_is_never_superseded() {
    let a = &[("job", "a")][..];
    let r = [
        snap(NOW, vec![light(a, 3.0 * H)]),
        snap(NOW, vec![light(a, 60.0)]),
        snap(
            NOW,
            vec![pushed(&[("job", "a"), ("instance", "")], 2.0 * H)],
        ),
    ];
    let plan = run(&policy(6.0), &[Some(&r[0]), Some(&r[1]), Some(&r[2])]);
    let replicas: Vec<usize> = plan.decisions().map(|d| d.replica).collect();
    assert_eq!(replicas, [0, 2], "{plan:?}");
}
