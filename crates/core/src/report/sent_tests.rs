//! What a report counts as sent: only a DELETE (or wipe) that went out, whatever came of it. An
//! action never sent says so in its type (`not_sent`), not in its error's words.

use super::*;

fn action(outcome: Outcome, error: Option<&str>, not_sent: Option<NotSent>) -> ActionReport {
    ActionReport {
        gateway: "http://a:9091/".into(),
        labels: Labels::from([("job".to_string(), "old".to_string())]),
        reason: Reason::Expired,
        age_seconds: Some(5.0),
        outcome,
        detail: String::new(),
        error: error.map(Failure::from),
        not_sent,
    }
}

fn report(actions: Vec<ActionReport>) -> SweepReport {
    SweepReport {
        started_at: "2026-01-01T00:00:00Z".into(),
        duration_seconds: 0.25,
        dry_run: false,
        action: "delete",
        replicas: vec![ReplicaReport::for_test(
            "http://a:9091/",
            ReplicaState::Failed,
            4,
        )],
        actions,
        notes: vec![],
        refused: vec![],
        summary: Summary::default(),
    }
}

/// The first DELETE got no answer, so the others were never sent: only the first counts. (Until
/// the outcome was typed, only the leadership-lost text was told apart, and this counted 3.)
#[test]
fn deletes_not_sent_to_a_replica_that_stopped_answering_are_not_counted_as_sent() {
    let r = report(vec![
        action(Outcome::Deleted, None, None),
        action(Outcome::Failed, Some("connection refused"), None),
        action(
            Outcome::Failed,
            Some("not attempted: the replica stopped answering (connection refused)"),
            Some(NotSent::ReplicaStoppedAnswering),
        ),
    ]);
    assert_eq!(r.delete_requests(), 2);
}

#[test]
fn no_reason_for_not_sending_is_counted_as_sent() {
    for why in [
        NotSent::LeadershipLost,
        NotSent::ReplicaStoppedAnswering,
        NotSent::Unhealthy,
        NotSent::ReReadFailed,
    ] {
        let r = report(vec![
            action(Outcome::Failed, Some("whatever it says"), Some(why)),
            action(Outcome::Unconfirmed, Some("still present"), None),
        ]);
        assert_eq!(r.delete_requests(), 1, "{why:?}");
        assert_eq!(
            r.count(Outcome::Failed),
            1,
            "still a failed action: {why:?}"
        );
    }
}

/// A delete another policy sent moments before ends as that request did (deleted, repushed,
/// unconfirmed): counted in its outcome, never as a second request.
#[test]
fn a_delete_sent_by_another_policy_counts_in_its_outcome_not_as_a_request() {
    for outcome in [Outcome::Deleted, Outcome::Repushed, Outcome::Unconfirmed] {
        let r = report(vec![
            action(outcome, None, Some(NotSent::SentByAnother)),
            action(Outcome::Deleted, None, None),
        ]);
        assert_eq!(r.delete_requests(), 1, "{outcome:?}");
        assert_eq!(
            r.count(outcome),
            if outcome == Outcome::Deleted { 2 } else { 1 }
        );
    }
}

/// What is counted as sent: every outcome of a request that went out, and nothing else.
#[test]
fn only_outcomes_of_a_request_sent_count() {
    let outcomes = [
        (Outcome::WouldDelete, false),
        (Outcome::Deleted, true),
        (Outcome::Repushed, true),
        (Outcome::Unconfirmed, true),
        (Outcome::Failed, true),
        (Outcome::Kept, false),
        (Outcome::Aborted, false),
    ];
    for (outcome, sent) in outcomes {
        assert_eq!(action(outcome, None, None).sent(), sent, "{outcome:?}");
    }
}

/// The reason is for counting: the JSON report and the table read exactly as before.
#[test]
fn not_sent_changes_neither_the_json_nor_the_table() {
    let text = "leadership lost: not attempted";
    let typed = report(vec![action(
        Outcome::Failed,
        Some(text),
        Some(NotSent::LeadershipLost),
    )]);
    let untyped = report(vec![action(Outcome::Failed, Some(text), None)]);
    assert_eq!(typed.to_json(), untyped.to_json());
    assert_eq!(typed.to_table(), untyped.to_table());
    let json: serde_json::Value = serde_json::from_str(&typed.to_json()).unwrap();
    let keys: Vec<&str> = json["actions"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "age_seconds",
            "detail",
            "error",
            "gateway",
            "labels",
            "outcome",
            "reason"
        ]
    );
    assert_eq!(json["actions"][0]["error"], text);
}
