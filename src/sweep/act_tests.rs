//! Acting on one replica, its steps in order, against a fake replica: a group pushed again after
//! its delete is found back, an old plan is re-planned, a failed re-read sends nothing, a wipe is
//! confirmed like deletes and is not sent once a fresh plan drops it.

use std::time::Duration;

use super::act::{act_on_replica, Job, ReplicaOutcome};
use super::fake::{self, pushed, Fake, NOW};
use super::remote::Remote;
use super::{plan_inputs, SweepConfig};
use crate::model::Source;
use crate::plan::{self, Action};
use crate::report::{NotSent, Outcome};

/// Reads the fake, plans it with `sweep`'s policy, lets `between` change the fake, then acts.
async fn act(fake: &Fake, sweep: &SweepConfig, between: impl FnOnce(&Fake)) -> ReplicaOutcome {
    let reads = [fake.read_shared(Source::Metrics).await];
    let inputs = plan_inputs(&reads);
    let planned = plan::plan(&sweep.policy, &inputs).replicas[0].clone();
    between(fake);
    let job = Job {
        remote: fake,
        sweep,
        read: &reads[0],
        index: 0,
        inputs: &inputs,
    };
    act_on_replica(job, planned.deletes, planned.admin_wipe, None).await
}

/// `(job, outcome, why not sent)` of every action, by job.
fn ends(o: &ReplicaOutcome) -> Vec<(String, Outcome, Option<NotSent>)> {
    let mut ends: Vec<_> = o
        .actions
        .iter()
        .map(|a| (a.decision.labels["job"].to_string(), a.outcome, a.not_sent))
        .collect();
    ends.sort_by(|a, b| a.0.cmp(&b.0));
    ends
}

fn two_old_groups() -> Fake {
    let groups = vec![
        pushed(&[("job", "a")], 7200.0),
        pushed(&[("job", "b")], 7200.0),
    ];
    Fake::new("http://a:9091/", groups)
}

#[tokio::test]
async fn the_confirmation_finds_a_group_pushed_again_after_its_delete() {
    let fake = two_old_groups();
    // A push of `b` lands right after its DELETE.
    fake.after_delete(|_, store| {
        if store.deletes.last().unwrap().0["job"] == *"b" {
            store.groups.push(pushed(&[("job", "b")], 0.0));
        }
    });
    let sweep = fake::sweep(fake::policy(3600));
    let o = act(&fake, &sweep, |_| {}).await;
    assert_eq!(
        ends(&o),
        [
            ("a".into(), Outcome::Deleted, None),
            ("b".into(), Outcome::Repushed, None)
        ]
    );
    assert!(!o.replanned && o.error.is_none());
    assert!(o.deleting.is_some() && o.max_window.is_some());
    assert_eq!(fake.deletes(), 2);
    assert_eq!(fake.store().groups[0].push_time, NOW, "the new push stays");
}

#[tokio::test]
async fn an_old_plan_is_re_planned_and_a_group_pushed_since_is_kept() {
    let fake = two_old_groups();
    let mut sweep = fake::sweep(fake::policy(3600));
    sweep.tuning.replan_after = Duration::ZERO;
    let o = act(&fake, &sweep, |f| f.store().groups[1].push_time = NOW).await;
    assert!(o.replanned);
    assert_eq!(
        ends(&o),
        [
            ("a".into(), Outcome::Deleted, None),
            ("b".into(), Outcome::Kept, None)
        ]
    );
    assert_eq!(fake.store().deletes.len(), 1);
    assert_eq!(fake.keys(), [fake::key(&[("job", "b")])]);
}

#[tokio::test]
async fn a_failed_re_read_before_deleting_sends_nothing() {
    let fake = two_old_groups();
    fake.store().reads_answered = Some(1);
    let mut sweep = fake::sweep(fake::policy(3600));
    sweep.tuning.replan_after = Duration::ZERO;
    let o = act(&fake, &sweep, |_| {}).await;
    let unsent = Some(NotSent::ReReadFailed);
    assert_eq!(
        ends(&o),
        [
            ("a".into(), Outcome::Failed, unsent),
            ("b".into(), Outcome::Failed, unsent)
        ]
    );
    assert!(o
        .actions
        .iter()
        .all(|a| a.error.as_deref() == Some("not attempted")));
    let error = o.error.expect("the replica's error");
    assert!(
        error.detail().starts_with("re-read before deleting failed"),
        "{error}"
    );
    assert_eq!(fake.deletes(), 0);
    assert!(o.deleting.is_none());
}

fn wipe_sweep(only_if_all_stale: bool) -> SweepConfig {
    let mut policy = fake::policy(3600);
    policy.action = Action::Wipe { only_if_all_stale };
    fake::sweep(policy)
}

#[tokio::test]
async fn a_wipe_is_confirmed_like_deletes() {
    let fake = two_old_groups();
    fake.store().status.as_mut().unwrap().admin_api = true;
    let o = act(&fake, &wipe_sweep(false), |_| {}).await;
    assert!(o.admin_wiped);
    assert_eq!(
        ends(&o),
        [
            ("a".into(), Outcome::Deleted, None),
            ("b".into(), Outcome::Deleted, None)
        ]
    );
    assert_eq!((fake.wipes(), fake.deletes()), (1, 0));
    assert!(o.deleting.is_some() && o.max_window.is_some());
}

#[tokio::test]
async fn a_wipe_on_a_full_write_queue_fails_every_decision_unsent() {
    let fake = two_old_groups();
    fake.store().status.as_mut().unwrap().admin_api = true;
    fake.store().queue_full = true;
    let o = act(&fake, &wipe_sweep(false), |_| {}).await;
    assert!(!o.admin_wiped);
    let unsent = Some(NotSent::Unhealthy);
    assert_eq!(
        ends(&o),
        [
            ("a".into(), Outcome::Failed, unsent),
            ("b".into(), Outcome::Failed, unsent)
        ]
    );
    assert!(o.error.is_some() && o.deleting.is_none());
    assert_eq!(fake.store().wipes, 0);
}

/// A push landed before the wipe of an "only if all stale" policy: the re-plan drops the wipe.
#[tokio::test]
async fn a_wipe_the_fresh_plan_drops_is_not_sent() {
    let fake = two_old_groups();
    fake.store().status.as_mut().unwrap().admin_api = true;
    let mut sweep = wipe_sweep(true);
    sweep.tuning.replan_after = Duration::ZERO;
    let o = act(&fake, &sweep, |f| f.store().groups[0].push_time = NOW).await;
    assert_eq!(
        ends(&o),
        [
            ("a".into(), Outcome::Kept, None),
            ("b".into(), Outcome::Kept, None)
        ]
    );
    assert_eq!((fake.wipes(), fake.deletes()), (0, 0));
    assert_eq!(fake.keys().len(), 2);
}
