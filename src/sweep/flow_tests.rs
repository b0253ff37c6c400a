//! A whole sweep over fake replicas: what is deleted, what stays, what the report counts and the
//! exit code, and that the DELETE requests a report counts are the requests the replicas got.

use tokio::sync::watch;

use super::fake::{self, key, pushed, Fake};
use super::flow::run_on;
use super::SweepConfig;
use crate::plan::Reason;
use crate::report::{exit, NotSent, Outcome, ReplicaState, SweepReport};

/// `(job, reason, outcome)` of every action, in report order.
fn actions(r: &SweepReport) -> Vec<(String, Reason, Outcome)> {
    r.actions
        .iter()
        .map(|a| (a.labels["job"].to_string(), a.reason, a.outcome))
        .collect()
}

fn sweep() -> SweepConfig {
    fake::sweep(fake::policy(3600))
}

#[tokio::test]
async fn a_fresh_group_is_never_deleted() {
    let fake = Fake::new(
        "http://a:9091/",
        vec![
            pushed(&[("job", "old")], 7200.0),
            pushed(&[("job", "fresh")], 60.0),
        ],
    );
    let r = run_on(&sweep(), std::slice::from_ref(&fake), vec![]).await;
    assert_eq!(
        actions(&r),
        [("old".into(), Reason::Expired, Outcome::Deleted)]
    );
    assert_eq!(fake.keys(), [key(&[("job", "fresh")])]);
    assert_eq!((r.summary.deleted, r.summary.groups_seen), (1, 2));
    assert_eq!(r.summary.exit_code, exit::OK);
    assert_eq!(r.delete_requests(), 1);
    assert_eq!(r.replicas[0].state, ReplicaState::Ok);
    assert_eq!(r.replicas[0].url, "http://a:9091/");
}

/// Pushes load-balanced over two replicas left an old copy on one: it goes, the newest stays.
#[tokio::test]
async fn a_superseded_copy_is_deleted_and_the_newest_kept() {
    let stale = Fake::new("http://a:9091/", vec![pushed(&[("job", "x")], 1000.0)]);
    let newest = Fake::new("http://b:9091/", vec![pushed(&[("job", "x")], 10.0)]);
    let r = run_on(&sweep(), &[stale, newest], vec![]).await;
    assert_eq!(
        actions(&r),
        [("x".into(), Reason::Superseded, Outcome::Deleted)]
    );
    assert_eq!(r.actions[0].gateway, "http://a:9091/");
    assert_eq!(r.summary.exit_code, exit::OK);
}

/// The first replica stops answering after one DELETE: its other deletes are not sent, and the
/// report counts exactly the requests that went out; the second replica is swept as usual.
#[tokio::test]
async fn a_replica_that_stops_answering_mid_sweep_fails_alone() {
    let jobs = ["a", "b", "c"];
    let groups = || jobs.iter().map(|j| pushed(&[("job", j)], 7200.0)).collect();
    let replicas = [
        Fake::new("http://a:9091/", groups()),
        Fake::new("http://b:9091/", groups()),
    ];
    replicas[0].store().deletes_answered = Some(1);
    let mut sweep = sweep();
    sweep.tuning.delete_concurrency = 1;
    let r = run_on(&sweep, &replicas, vec![]).await;
    let states: Vec<_> = r.replicas.iter().map(|r| r.state).collect();
    assert_eq!(states, [ReplicaState::Failed, ReplicaState::Ok]);
    assert_eq!(r.summary.exit_code, exit::REPLICA_FAILED);
    assert_eq!((r.summary.deleted, r.summary.failed), (4, 2));
    let unsent = r
        .actions
        .iter()
        .filter(|a| a.not_sent == Some(NotSent::ReplicaStoppedAnswering))
        .count();
    assert_eq!(unsent, 1);
    assert_eq!(replicas[0].deletes(), 2);
    assert_eq!(
        r.delete_requests(),
        replicas[0].deletes() + replicas[1].deletes()
    );
    assert!(replicas[1].keys().is_empty());
}

#[tokio::test]
async fn the_guard_trips_before_any_delete() {
    let fake = Fake::new(
        "http://a:9091/",
        vec![
            pushed(&[("job", "a")], 7200.0),
            pushed(&[("job", "b")], 7200.0),
        ],
    );
    let mut sweep = sweep();
    sweep.limits.max_deletions = Some(1);
    let r = run_on(&sweep, std::slice::from_ref(&fake), vec![]).await;
    assert_eq!(r.summary.exit_code, exit::GUARD);
    assert!(r.actions.iter().all(|a| a.outcome == Outcome::Aborted));
    assert_eq!(
        (fake.deletes(), fake.keys().len(), r.delete_requests()),
        (0, 2, 0)
    );
}

#[tokio::test]
async fn a_dry_run_sends_nothing() {
    let fake = Fake::new("http://a:9091/", vec![pushed(&[("job", "a")], 7200.0)]);
    let mut sweep = sweep();
    sweep.dry_run = true;
    let r = run_on(&sweep, std::slice::from_ref(&fake), vec![]).await;
    assert_eq!(
        actions(&r),
        [("a".into(), Reason::Expired, Outcome::WouldDelete)]
    );
    assert_eq!((fake.deletes(), r.summary.exit_code), (0, exit::OK));
}

#[tokio::test]
async fn a_sweep_without_its_permit_sends_nothing() {
    let fake = Fake::new("http://a:9091/", vec![pushed(&[("job", "a")], 7200.0)]);
    let (_tx, rx) = watch::channel(false);
    let mut sweep = sweep();
    sweep.permit = super::fake::permit(rx);
    let r = run_on(&sweep, std::slice::from_ref(&fake), vec![]).await;
    assert_eq!(r.actions[0].not_sent, Some(NotSent::LeadershipLost));
    assert_eq!((fake.deletes(), r.delete_requests()), (0, 0));
    assert_eq!(r.summary.exit_code, exit::REPLICA_FAILED);
}

#[tokio::test]
async fn no_replica_found_is_a_failed_sweep() {
    let r = run_on::<Fake>(&sweep(), &[], vec![]).await;
    assert_eq!(r.summary.exit_code, exit::REPLICA_FAILED);
    let error = r.summary.error.expect("says why");
    assert_eq!(
        error.detail(),
        "no gateway replica found: nothing was swept"
    );
}

/// Two policies match one group in one cycle (each read the replica before either deleted):
/// one DELETE goes out, both policies see the group deleted, and the requests their reports
/// count (`deletes_sent`, the `delete_attempts` metric) add up to the one request sent.
#[tokio::test]
async fn two_policies_matching_one_group_count_one_delete_request() {
    let fake = Fake::new("http://a:9091/", vec![pushed(&[("job", "a")], 7200.0)]);
    let (one, two) = (sweep(), fake::sweep(fake::policy(7000)));
    let replicas = std::slice::from_ref(&fake);
    let (r1, r2) = tokio::join!(
        run_on(&one, replicas, vec![]),
        run_on(&two, replicas, vec![])
    );
    assert_eq!(
        fake.deletes(),
        1,
        "one DELETE for both policies: {:?}",
        fake.store().deletes
    );
    for r in [&r1, &r2] {
        assert_eq!(
            actions(r),
            [("a".into(), Reason::Expired, Outcome::Deleted)]
        );
    }
    assert_eq!(r1.delete_requests() + r2.delete_requests(), 1);
}
