//! The delete step against a fake replica: one DELETE per decision, none after the permit is
//! withdrawn or after the replica stopped answering, none while its write queue is full, and
//! none for a copy another sweep just deleted. Each one not sent says why in its type.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::delete::{delete, Deleted, Deleting};
use super::fake::{self, key, pushed, Fake, NOW};
use super::remote::Remote;
use super::{Permit, NOT_ATTEMPTED};
use crate::model::Naming;
use crate::report::{NotSent, Outcome};

const JOBS: [&str; 4] = ["a", "b", "c", "d"];

fn fake_with_jobs() -> Fake {
    let groups = JOBS.iter().map(|j| pushed(&[("job", j)], 7200.0)).collect();
    Fake::new("http://a:9091/", groups)
}

async fn delete_jobs(fake: &Fake, permit: &Permit, read_at: Instant) -> Deleted {
    let decisions = JOBS
        .iter()
        .map(|j| (fake::decision(key(&[("job", j)])), NOW - 7200.0))
        .collect();
    let with = Deleting {
        permit,
        naming: Naming::Legacy,
        read_at,
        // One at a time: which DELETE comes first is then known.
        concurrency: 1,
        fresh_claim: Duration::from_secs(30),
        progress: None,
    };
    delete(fake, with, decisions).await
}

/// `(job, why not sent)` of every failed action, by job.
fn failed(d: &Deleted) -> Vec<(String, Option<NotSent>)> {
    let mut failed: Vec<_> = d
        .failed
        .iter()
        .inspect(|a| assert_eq!(a.outcome, Outcome::Failed))
        .map(|a| (a.decision.labels["job"].to_string(), a.not_sent))
        .collect();
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    failed
}

#[tokio::test]
async fn every_decision_gets_one_delete_and_a_claim() {
    let fake = fake_with_jobs();
    let d = delete_jobs(&fake, &Permit::always(), Instant::now()).await;
    assert!(d.failed.is_empty());
    assert_eq!(d.to_confirm.len(), 4);
    assert!(d.to_confirm.iter().all(|c| c.not_sent.is_none()));
    let mut claimed = d.claimed.clone();
    claimed.sort();
    assert_eq!(claimed, JOBS.map(|j| key(&[("job", j)])));
    assert!(d.first_sent.is_some() && d.max_window.is_some());
    assert_eq!(fake.deletes(), 4);
    assert!(fake.keys().is_empty());
}

/// After the first DELETE without an answer, the rest are not sent: each would only wait for
/// its own timeout.
#[tokio::test]
async fn a_replica_that_stops_answering_gets_no_more_deletes() {
    let fake = fake_with_jobs();
    fake.store().deletes_answered = Some(1);
    let d = delete_jobs(&fake, &Permit::always(), Instant::now()).await;
    assert_eq!(d.to_confirm.len(), 1);
    assert_eq!(
        failed(&d),
        [
            ("b".into(), None),
            ("c".into(), Some(NotSent::ReplicaStoppedAnswering)),
            ("d".into(), Some(NotSent::ReplicaStoppedAnswering)),
        ]
    );
    let unsent = d.failed.iter().find(|a| a.not_sent.is_some()).unwrap();
    let error = unsent.error.as_ref().unwrap().detail();
    assert!(
        error.starts_with("not attempted: the replica stopped answering (http://a:9091/"),
        "{error}"
    );
    assert_eq!(fake.deletes(), 2, "the one answered and the one timed out");
}

#[tokio::test]
async fn leadership_lost_mid_sweep_sends_no_more_deletes() {
    let fake = fake_with_jobs();
    let (tx, rx) = watch::channel(true);
    let tx = Arc::new(tx);
    fake.after_delete(move |n, _| {
        if n == 2 {
            tx.send_replace(false);
        }
    });
    let d = delete_jobs(&fake, &super::fake::permit(rx), Instant::now()).await;
    assert_eq!(d.to_confirm.len(), 2);
    let lost = Some(NotSent::LeadershipLost);
    assert_eq!(failed(&d), [("c".into(), lost), ("d".into(), lost)]);
    assert!(d
        .failed
        .iter()
        .all(|a| a.error.as_ref().unwrap().detail() == NOT_ATTEMPTED));
    assert_eq!(fake.deletes(), 2);
    assert_eq!(fake.keys(), [key(&[("job", "c")]), key(&[("job", "d")])]);
}

#[tokio::test]
async fn a_full_write_queue_gets_no_delete() {
    let fake = fake_with_jobs();
    fake.store().queue_full = true;
    let d = delete_jobs(&fake, &Permit::always(), Instant::now()).await;
    let unhealthy = Some(NotSent::Unhealthy);
    assert_eq!(failed(&d), JOBS.map(|j| (j.to_string(), unhealthy)));
    assert!(d.first_sent.is_none() && d.claimed.is_empty());
    assert_eq!(fake.deletes(), 0);
}

/// A 400 is about that one key: the others are still sent.
#[tokio::test]
async fn a_refused_delete_fails_alone() {
    let fake = fake_with_jobs();
    fake.store().refused.push(key(&[("job", "b")]));
    let d = delete_jobs(&fake, &Permit::always(), Instant::now()).await;
    assert_eq!(failed(&d), [("b".into(), None)]);
    let error = d.failed[0].error.as_ref().unwrap().detail();
    assert!(error.contains("HTTP 400"), "{error}");
    assert_eq!(d.to_confirm.len(), 3);
    assert_eq!(fake.deletes(), 4);
}

/// Two policies plan the same delete from reads made before either sent it: only the first
/// sends it; the second confirms it, and says it did not send it.
#[tokio::test]
async fn a_delete_another_sweep_just_sent_is_not_sent_again() {
    let fake = fake_with_jobs();
    let read_at = Instant::now();
    let first = delete_jobs(&fake, &Permit::always(), read_at).await;
    assert_eq!(first.to_confirm.len(), 4);
    fake.release(&first.claimed);

    let second = delete_jobs(&fake, &Permit::always(), read_at).await;
    assert_eq!(fake.deletes(), 4, "no DELETE sent twice");
    assert!(second.failed.is_empty() && second.claimed.is_empty());
    assert_eq!(second.to_confirm.len(), 4, "confirmed all the same");
    assert!(second
        .to_confirm
        .iter()
        .all(|c| c.not_sent == Some(NotSent::SentByAnother)));
    let later = delete_jobs(&fake, &Permit::always(), Instant::now()).await;
    assert_eq!(
        fake.deletes(),
        8,
        "a copy read after the release is deleted again"
    );
    assert_eq!(later.claimed.len(), 4);
}
