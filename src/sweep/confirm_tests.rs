//! The confirm step against a fake replica: a group gone is deleted, one pushed again is
//! repushed, one still there is unconfirmed; a key read from `/metrics` that stays gets its
//! `instance=""` twin deleted; an exact key the light read cannot tell is confirmed from JSON.

use std::time::Duration;

use super::confirm::{confirm, ToConfirm};
use super::fake::{self, key, pushed, Fake, NOW};
use crate::model::{Naming, Source};
use crate::plan::Decision;
use crate::report::{NotSent, Outcome};

const SOON: Duration = Duration::from_millis(300);

fn sent(decision: Decision, push: f64) -> ToConfirm {
    ToConfirm {
        decision,
        push,
        not_sent: None,
    }
}

#[tokio::test]
async fn gone_is_deleted_pushed_again_is_repushed_and_still_there_is_unconfirmed() {
    let fake = Fake::new(
        "http://a:9091/",
        vec![
            pushed(&[("job", "repushed")], 0.0),
            pushed(&[("job", "stays")], 7200.0),
        ],
    );
    let old = NOW - 7200.0;
    let pending = vec![
        sent(fake::decision(key(&[("job", "gone")])), old),
        sent(fake::decision(key(&[("job", "repushed")])), old),
        ToConfirm {
            not_sent: Some(NotSent::SentByAnother),
            ..sent(fake::decision(key(&[("job", "stays")])), old)
        },
    ];
    let mut done = confirm(&fake, Naming::Legacy, pending, SOON).await;
    done.sort_by(|a, b| a.decision.labels.cmp(&b.decision.labels));
    let outcomes: Vec<_> = done
        .iter()
        .map(|a| (a.decision.labels["job"].to_string(), a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("gone".into(), Outcome::Deleted),
            ("repushed".into(), Outcome::Repushed),
            ("stays".into(), Outcome::Unconfirmed),
        ]
    );
    assert!(done[0].error.is_none() && done[1].error.is_none());
    let why = done[2].error.as_ref().unwrap().detail();
    assert_eq!(why, "still present after 300ms");
    assert_eq!(done[2].not_sent, Some(NotSent::SentByAnother), "carried");
    assert!(fake.store().reads.len() > 1, "re-read until the deadline");
    assert_eq!(fake.deletes(), 0, "an exact key has no twin to delete");
}

/// The DELETE of `{job="a"}` removed nothing: the group was `{job="a",instance=""}`, which
/// `/metrics` shows alike. Its twin is deleted, once, and the group is then gone.
#[tokio::test]
async fn a_light_key_still_there_gets_its_twin_deleted() {
    let fake = Fake::new(
        "http://a:9091/",
        vec![pushed(&[("job", "a"), ("instance", "")], 7200.0)],
    );
    let unsure = Decision {
        instance_unsure: true,
        ..fake::decision(key(&[("job", "a")]))
    };
    let done = confirm(
        &fake,
        Naming::Legacy,
        vec![sent(unsure, NOW - 7200.0)],
        SOON,
    )
    .await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].outcome, Outcome::Deleted);
    assert_eq!(fake.store().deletes, [(key(&[("job", "a")]), true)]);
    assert!(fake.keys().is_empty());
}

/// `{job="a"}` (an exact key) was deleted; its twin `{job="a",instance=""}`, another group,
/// stays. `/metrics` shows the twin as maybe `{job="a"}`: only the JSON API can tell it is gone.
#[tokio::test]
async fn an_exact_key_the_light_read_cannot_tell_is_confirmed_from_json() {
    let fake = Fake::new(
        "http://a:9091/",
        vec![pushed(&[("job", "a"), ("instance", "")], 7200.0)],
    );
    let exact = fake::decision(key(&[("job", "a")]));
    let done = confirm(&fake, Naming::Legacy, vec![sent(exact, NOW - 7200.0)], SOON).await;
    assert_eq!(done[0].outcome, Outcome::Deleted);
    assert_eq!(fake.store().reads, [Source::Metrics, Source::Json]);
    assert_eq!(fake.deletes(), 0, "the twin is not this delete's");
    assert_eq!(fake.keys().len(), 1);
}

#[tokio::test]
async fn re_reads_that_fail_leave_deletes_unconfirmed_with_their_error() {
    let fake = Fake::new("http://a:9091/", vec![]);
    fake.store().reads_answered = Some(0);
    let d = fake::decision(key(&[("job", "a")]));
    let done = confirm(&fake, Naming::Legacy, vec![sent(d, NOW - 7200.0)], SOON).await;
    assert_eq!(done[0].outcome, Outcome::Unconfirmed);
    let why = done[0].error.as_ref().unwrap().detail();
    assert!(why.starts_with("confirming re-read failed: "), "{why}");
}

/// A replica whose naming changed (restarted with other flags) confirms nothing: the keys were
/// encoded for the old naming.
#[tokio::test]
async fn a_changed_naming_confirms_nothing() {
    let fake = Fake::new("http://a:9091/", vec![]);
    let d = fake::decision(key(&[("job", "a")]));
    let done = confirm(&fake, Naming::Utf8, vec![sent(d, NOW - 7200.0)], SOON).await;
    assert_eq!(done[0].outcome, Outcome::Unconfirmed);
    let why = done[0].error.as_ref().unwrap().detail();
    assert_eq!(why, "confirming re-read: the replica's naming changed");
}

/// Another sweep sent this DELETE and may not have had its answer yet: the twin is its to
/// delete, never this sweep's, which only waits for the group to go.
#[tokio::test]
async fn a_delete_sent_by_another_sweep_gets_no_twin_from_this_one() {
    let fake = Fake::new(
        "http://a:9091/",
        vec![pushed(&[("job", "a"), ("instance", "")], 7200.0)],
    );
    let unsure = Decision {
        instance_unsure: true,
        ..fake::decision(key(&[("job", "a")]))
    };
    let theirs = ToConfirm {
        not_sent: Some(NotSent::SentByAnother),
        ..sent(unsure, NOW - 7200.0)
    };
    let done = confirm(&fake, Naming::Legacy, vec![theirs], SOON).await;
    assert_eq!(done[0].outcome, Outcome::Unconfirmed);
    assert_eq!(done[0].not_sent, Some(NotSent::SentByAnother));
    assert_eq!(fake.deletes(), 0);
}
