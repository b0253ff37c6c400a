//! Properties over random replicas: a small key universe so copies, phantoms and collisions are common.
//! Times are whole seconds so shifting a clock is exact in f64.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::tests::{key, policy};
use super::*;
use crate::model::Group;

fn arb_labels() -> impl Strategy<Value = Labels> {
    (0..3usize, 0..3usize).prop_map(|(j, i)| {
        let mut l = key(&[("job", ["a", "b", "c"][j])]);
        match i {
            0 => {}
            1 => {
                l.insert("instance".into(), String::new());
            }
            _ => {
                l.insert("instance".into(), "x".into());
            }
        }
        l
    })
}

/// (labels, age of push or None for a phantom, age of failure or None, declared ttl)
type GroupSpec = (Labels, Option<u32>, Option<u32>, Option<f64>);

fn arb_group() -> impl Strategy<Value = GroupSpec> {
    let declared = prop::option::of(prop_oneof![
        Just(f64::NAN),
        Just(-1.0),
        Just(30.0),
        Just(3600.0),
        Just(1e9),
    ]);
    (
        arb_labels(),
        // Mostly recent pushes, so live copies on several replicas (superseded) are common.
        prop::option::weighted(0.8, prop_oneof![3 => 0u32..4000, 1 => 0u32..100_000]),
        prop::option::of(0u32..100_000),
        declared,
    )
}

fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
    (
        100_000u32..200_000,
        prop::collection::vec(arb_group(), 0..8),
    )
        .prop_map(|(clock, specs)| {
            let clock = f64::from(clock);
            // One group per key on a replica, as on a real gateway.
            let by_key: BTreeMap<Labels, GroupSpec> =
                specs.into_iter().map(|s| (s.0.clone(), s)).collect();
            let groups = by_key
                .into_values()
                .map(|(labels, push_age, fail_age, declared_ttl)| Group {
                    labels,
                    push_time: push_age.map_or(0.0, |a| clock - f64::from(a)),
                    push_failure_time: fail_age.map_or(0.0, |a| clock - f64::from(a)),
                    last_push_successful: push_age.is_some(),
                    declared_ttl,
                    series: Some(1),
                    instance_unsure: false,
                })
                .collect();
            Snapshot {
                clock,
                source: Default::default(),
                naming: Default::default(),
                groups,
                unkeyed: vec![],
            }
        })
}

fn arb_policy() -> impl Strategy<Value = Rules> {
    let selector = prop::sample::select(vec![
        "",
        r#"job="a""#,
        r#"job=~"a|b""#,
        r#"instance!="""#,
        r#"job!~"c", instance="""#,
    ]);
    let action = prop_oneof![
        Just(Action::DeleteGroups),
        Just(Action::Wipe {
            only_if_all_stale: false
        }),
        Just(Action::Wipe {
            only_if_all_stale: true
        }),
    ];
    (
        prop::sample::select(vec![60u64, 3600, 36_000, 86_400]),
        selector,
        prop::option::of(prop::sample::select(vec![0u64, 60, 600])),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![60u64, 7200])),
        action,
    )
        .prop_map(|(ttl, sel, grace, from_metric, max_ttl, action)| Rules {
            ttl: Duration::from_secs(ttl),
            selector: sel.parse().unwrap(),
            superseded_grace: grace.map(Duration::from_secs),
            ttl_from_metric: from_metric.then(|| "ttl".to_string()),
            max_ttl: max_ttl.map(Duration::from_secs),
            action,
            ..policy(1.0)
        })
}

/// Replicas, some unread.
fn arb_replicas() -> impl Strategy<Value = Vec<Option<Snapshot>>> {
    prop::collection::vec(prop::option::weighted(0.9, arb_snapshot()), 1..4)
}

fn run(p: &Rules, snaps: &[Option<Snapshot>]) -> Plan {
    let inputs: Vec<ReplicaInput> = snaps
        .iter()
        .map(|s| ReplicaInput {
            snapshot: s.as_ref(),
            status: None,
        })
        .collect();
    plan(p, &inputs)
}

fn age(s: &Snapshot, g: &Group) -> Option<f64> {
    g.reference_time().map(|t| s.clock - t)
}

/// The effective TTL as the brief defines it, written independently of the planner.
fn effective_ttl(p: &Rules, g: &Group) -> f64 {
    match (&p.ttl_from_metric, g.declared_ttl) {
        (Some(_), Some(v)) if v.is_finite() && v > 0.0 => v
            .max(p.min_ttl.as_secs_f64())
            .min(p.max_ttl.map_or(f64::INFINITY, |d| d.as_secs_f64())),
        _ => p.ttl.as_secs_f64(),
    }
}

fn find<'a>(snaps: &'a [Option<Snapshot>], d: &Decision) -> (&'a Snapshot, &'a Group) {
    let s = snaps[d.replica]
        .as_ref()
        .expect("decision on an unread replica");
    let g = s
        .groups
        .iter()
        .find(|g| g.labels == d.labels)
        .expect("decision names a group that exists");
    (s, g)
}

proptest! {
    #[test]
    fn every_decision_is_a_selected_group_on_a_read_replica_once(p in arb_policy(), snaps in arb_replicas()) {
        let plan = run(&p, &snaps);
        prop_assert_eq!(plan.replicas.len(), snaps.len());
        let mut seen = BTreeSet::new();
        for d in plan.decisions() {
            let (_, g) = find(&snaps, d);
            prop_assert!(p.selector.matches(&g.labels), "outside selector: {:?}", d);
            prop_assert!(seen.insert((d.replica, d.labels.clone())), "decided twice: {:?}", d);
        }
        for (r, s) in snaps.iter().enumerate() {
            if s.is_none() {
                prop_assert!(plan.replicas[r].deletes.is_empty() && !plan.replicas[r].admin_wipe);
            }
        }
    }

    #[test]
    fn no_group_within_its_effective_ttl_is_expired(p in arb_policy(), snaps in arb_replicas()) {
        for d in run(&p, &snaps).decisions().filter(|d| d.reason == Reason::Expired) {
            let (s, g) = find(&snaps, d);
            let age = age(s, g).expect("an expired group has an age");
            prop_assert!(age > effective_ttl(&p, g), "{:?}", d);
        }
    }

    #[test]
    fn superseded_never_removes_the_last_copy_nor_the_freshest(mut p in arb_policy(), snaps in arb_replicas()) {
        // The only action and setting under which superseded decisions appear.
        p.action = Action::DeleteGroups;
        p.superseded_grace.get_or_insert(Duration::ZERO);
        let plan = run(&p, &snaps);
        let deleted: BTreeSet<(usize, Labels)> = plan.decisions().map(|d| (d.replica, d.labels.clone())).collect();
        for d in plan.decisions().filter(|d| d.reason == Reason::Superseded) {
            let (s, g) = find(&snaps, d);
            let my_age = age(s, g).unwrap();
            let grace = p.superseded_grace.expect("superseded only with a grace").as_secs_f64();
            let kept_fresher = snaps.iter().enumerate().any(|(r, other)| {
                other.as_ref().is_some_and(|o| {
                    o.groups.iter().any(|og| {
                        r != d.replica && og.labels == d.labels && !og.is_phantom()
                            && age(o, og).is_some_and(|a| a < my_age - grace)
                            && !deleted.contains(&(r, og.labels.clone()))
                    })
                })
            });
            prop_assert!(kept_fresher, "no kept fresher copy for {:?}", d);
            prop_assert!(snaps.iter().all(Option::is_some), "superseded with an unread replica");
        }
    }

    #[test]
    fn plan_ignores_clock_skew(p in arb_policy(), snaps in arb_replicas(), shifts in prop::collection::vec(0u32..1_000_000_000, 4)) {
        let shifted: Vec<Option<Snapshot>> = snaps.iter().zip(&shifts).map(|(s, &c)| {
            s.as_ref().map(|s| {
                let c = f64::from(c);
                let mut s = s.clone();
                s.clock += c;
                for g in &mut s.groups {
                    if g.push_time != 0.0 { g.push_time += c; }
                    if g.push_failure_time != 0.0 { g.push_failure_time += c; }
                }
                s
            })
        }).collect();
        prop_assert_eq!(run(&p, &snaps), run(&p, &shifted));
    }

    #[test]
    fn plan_does_not_depend_on_group_order(p in arb_policy(), snaps in arb_replicas()) {
        let reversed: Vec<Option<Snapshot>> = snaps.iter().map(|s| s.clone().map(|mut s| { s.groups.reverse(); s })).collect();
        prop_assert_eq!(run(&p, &snaps), run(&p, &reversed));
    }
}
