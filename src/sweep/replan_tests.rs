//! The re-plan step against a fake replica: a group pushed since the plan is kept, a failed
//! re-read deletes nothing, the fresh plan's keys are the ones acted on.

use super::fake::{self, key, pushed, Fake, NOW};
use super::plan_inputs;
use super::remote::Remote;
use super::replan::{replan, still_planned};
use crate::model::Source;
use crate::plan::{self, Action, Decision};

fn jobs(decisions: &[Decision]) -> Vec<String> {
    decisions
        .iter()
        .map(|d| d.labels["job"].to_string())
        .collect()
}

#[tokio::test]
async fn a_group_pushed_since_the_plan_is_kept_and_the_rest_still_deleted() {
    let fake = Fake::new(
        "http://a:9091/",
        vec![
            pushed(&[("job", "a")], 7200.0),
            pushed(&[("job", "b")], 7200.0),
            pushed(&[("job", "c")], 10.0),
        ],
    );
    let policy = fake::policy(3600);
    let read = fake.read_shared(Source::Metrics).await;
    let reads = [read.clone()];
    let inputs = plan_inputs(&reads);
    let decisions = plan::plan(&policy, &inputs).replicas[0].deletes.clone();
    assert_eq!(jobs(&decisions), ["a", "b"]);
    // `b` is pushed between the plan and the deletes.
    fake.store().groups[1].push_time = NOW;

    let Ok(fresh) = replan(&fake, &policy, &read, 0, &inputs, decisions, false).await else {
        panic!("the re-read answered");
    };
    assert_eq!(jobs(&fresh.keep), ["a"]);
    assert_eq!(jobs(&fresh.dropped), ["b"]);
    assert!(!fresh.admin_wipe);
    assert!(
        fresh.read.started > read.started,
        "a new read, not the planned one"
    );
    assert_eq!(fake.store().reads, [Source::Metrics, Source::Metrics]);
}

#[tokio::test]
async fn a_failed_re_read_hands_every_decision_back_and_deletes_nothing() {
    let fake = Fake::new("http://a:9091/", vec![pushed(&[("job", "a")], 7200.0)]);
    fake.store().reads_answered = Some(1);
    let policy = fake::policy(3600);
    let read = fake.read_shared(Source::Metrics).await;
    let reads = [read.clone()];
    let inputs = plan_inputs(&reads);
    let decisions = plan::plan(&policy, &inputs).replicas[0].deletes.clone();

    let Err((failure, back)) = replan(&fake, &policy, &read, 0, &inputs, decisions, false).await
    else {
        panic!("the re-read failed");
    };
    assert!(
        failure
            .detail()
            .starts_with("re-read before deleting failed: "),
        "{failure}"
    );
    assert_eq!(jobs(&back), ["a"]);
    assert_eq!(fake.deletes(), 0);
}

#[tokio::test]
async fn a_wipe_stands_only_while_the_fresh_plan_still_wipes() {
    let fake = Fake::new(
        "http://a:9091/",
        vec![
            pushed(&[("job", "a")], 7200.0),
            pushed(&[("job", "b")], 7200.0),
        ],
    );
    fake.store().status.as_mut().unwrap().admin_api = true;
    let mut policy = fake::policy(3600);
    policy.action = Action::Wipe {
        only_if_all_stale: true,
    };
    let read = fake.read_shared(Source::Metrics).await;
    let reads = [read.clone()];
    let inputs = plan_inputs(&reads);
    let planned = plan::plan(&policy, &inputs).replicas[0].clone();
    assert!(planned.admin_wipe);

    let again = replan(
        &fake,
        &policy,
        &read,
        0,
        &inputs,
        planned.deletes.clone(),
        true,
    );
    let Ok(fresh) = again.await else { panic!() };
    assert!(fresh.admin_wipe, "nothing changed: still a wipe");
    assert_eq!(jobs(&fresh.keep), ["a", "b"]);

    fake.store().groups[0].push_time = NOW;
    let again = replan(&fake, &policy, &read, 0, &inputs, planned.deletes, true);
    let Ok(fresh) = again.await else { panic!() };
    assert!(!fresh.admin_wipe, "one group is fresh now: no wipe");
    assert!(fresh.keep.is_empty());
    assert_eq!(jobs(&fresh.dropped), ["a", "b"]);
}

/// The fresh plan's key is acted on: read from `/metrics` it may be unsure of `instance`, and
/// the confirmation must then look it up loosely.
#[test]
fn the_fresh_plans_key_replaces_the_old_one() {
    let old = vec![
        fake::decision(key(&[("job", "a")])),
        fake::decision(key(&[("job", "gone")])),
    ];
    let fresh = vec![Decision {
        instance_unsure: true,
        ..fake::decision(key(&[("job", "a")]))
    }];
    let (keep, dropped) = still_planned(old, &fresh);
    assert_eq!(keep, fresh);
    assert_eq!(jobs(&dropped), ["gone"]);
}
