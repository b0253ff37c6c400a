//! The wipe action, unreadable replicas, and output shape.

use super::tests::*;
use super::*;
use crate::model::UnkeyedGroup;

fn wipe_inputs<'a>(snaps: &'a [Snapshot], admin: &'a ReplicaStatus) -> Vec<ReplicaInput<'a>> {
    snaps
        .iter()
        .map(|s| ReplicaInput {
            snapshot: Some(s),
            status: Some(admin),
        })
        .collect()
}

#[test]
fn wipe_takes_every_selected_group_and_uses_admin_api_only_for_match_all() {
    let admin = ReplicaStatus {
        admin_api: true,
        ..Default::default()
    };
    let snaps = [snap(
        NOW,
        vec![
            pushed(&[("job", "a")], 60.0),
            pushed(&[("job", "b")], 9.0 * H),
        ],
    )];
    let mut p = policy(6.0);
    p.action = Action::Wipe {
        only_if_all_stale: false,
    };
    let plan = plan(&p, &wipe_inputs(&snaps, &admin));
    assert!(plan.replicas[0].admin_wipe);
    assert_eq!(
        summary(&plan),
        vec![(0, "a".into(), Reason::Wipe), (0, "b".into(), Reason::Wipe)]
    );
    assert_eq!(plan.replicas[0].deletes[0].detail, "wipe, age 1m");

    p.selector = r#"job="a""#.parse().unwrap();
    let plan = super::plan(&p, &wipe_inputs(&snaps, &admin));
    assert!(
        !plan.replicas[0].admin_wipe,
        "a selector must delete group by group"
    );
    assert_eq!(summary(&plan), vec![(0, "a".into(), Reason::Wipe)]);

    let no_admin = ReplicaStatus::default();
    p.selector = Selector::default();
    assert!(!super::plan(&p, &wipe_inputs(&snaps, &no_admin)).replicas[0].admin_wipe);
}

#[test]
fn admin_wipe_is_not_used_when_unkeyed_groups_would_go_too() {
    let admin = ReplicaStatus {
        admin_api: true,
        ..Default::default()
    };
    let mut s = snap(NOW, vec![pushed(&[("job", "a")], 60.0)]);
    s.unkeyed.push(UnkeyedGroup {
        why: "family named labels".into(),
    });
    let mut p = policy(6.0);
    p.action = Action::Wipe {
        only_if_all_stale: false,
    };
    let plan = plan(&p, &wipe_inputs(std::slice::from_ref(&s), &admin));
    assert!(!plan.replicas[0].admin_wipe);
    assert_eq!(plan.total_deletes(), 1);
    assert!(plan.replicas[0]
        .notes
        .iter()
        .any(|n| n.starts_with("admin wipe not used")));
}

#[test]
fn wipe_only_if_all_stale_skips_a_replica_with_any_fresh_group() {
    let admin = ReplicaStatus {
        admin_api: true,
        ..Default::default()
    };
    let snaps = [
        snap(
            NOW,
            vec![
                pushed(&[("job", "a")], 9.0 * H),
                pushed(&[("job", "b")], 60.0),
            ],
        ),
        snap(
            NOW,
            vec![
                pushed(&[("job", "a")], 7.0 * H),
                phantom(&[("job", "c")], 8.0 * H),
            ],
        ),
    ];
    let mut p = policy(6.0);
    p.action = Action::Wipe {
        only_if_all_stale: true,
    };
    let plan = plan(&p, &wipe_inputs(&snaps, &admin));
    assert!(plan.replicas[0].deletes.is_empty() && !plan.replicas[0].admin_wipe);
    assert_eq!(
        plan.replicas[0].notes,
        vec!["wipe skipped: 1 of 2 selected groups are not stale"]
    );
    assert_eq!(
        summary(&plan),
        vec![(1, "a".into(), Reason::Wipe), (1, "c".into(), Reason::Wipe)]
    );
    assert!(plan.replicas[1].admin_wipe);
    assert_eq!(
        plan.replicas[1].deletes[0].detail,
        "wipe, every group stale; expired: age 7h over ttl 6h"
    );
}

#[test]
fn unreadable_replica_is_never_treated_as_empty() {
    let s = snap(NOW, vec![pushed(&[("job", "a")], 9.0 * H)]);
    let mut p = policy(6.0);
    p.action = Action::Wipe {
        only_if_all_stale: true,
    };
    let plan = run(&p, &[None, Some(&s)]);
    assert_eq!(plan.replicas.len(), 2);
    assert_eq!(
        plan.replicas[0],
        ReplicaPlan {
            notes: vec!["not read: nothing decided".into()],
            ..Default::default()
        }
    );
    assert_eq!(summary(&plan), vec![(1, "a".into(), Reason::Wipe)]);
}

#[test]
fn decisions_are_ordered_by_replica_then_key() {
    let r0 = snap(
        NOW,
        vec![
            pushed(&[("job", "z")], 9.0 * H),
            pushed(&[("job", "b")], 9.0 * H),
            pushed(&[("job", "m")], 9.0 * H),
        ],
    );
    let r1 = snap(
        NOW,
        vec![
            pushed(&[("job", "c")], 9.0 * H),
            pushed(&[("job", "a")], 9.0 * H),
        ],
    );
    let plan = run(&policy(6.0), &[Some(&r0), Some(&r1)]);
    let order: Vec<_> = summary(&plan).into_iter().map(|(r, j, _)| (r, j)).collect();
    let want: Vec<(usize, String)> = [(0, "b"), (0, "m"), (0, "z"), (1, "a"), (1, "c")]
        .iter()
        .map(|(r, j)| (*r, j.to_string()))
        .collect();
    assert_eq!(order, want);
}

#[test]
fn reasons_display_and_serialize_lowercase() {
    for (r, s) in [
        (Reason::Expired, "expired"),
        (Reason::Superseded, "superseded"),
        (Reason::Poison, "poison"),
        (Reason::Wipe, "wipe"),
    ] {
        assert_eq!(r.to_string(), s);
        assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{s}\""));
    }
}
