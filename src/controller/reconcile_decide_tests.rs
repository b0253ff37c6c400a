//! What a reconcile decides before it touches a gateway ([`decide`]): pure, so each branch is
//! proven here without an API server.

use super::*;
use crate::crd::{LastSweep, PushgatewayRetentionSpec};
use crate::policy;

const GENERATION: i64 = 3;

fn policy(spec: serde_json::Value) -> PushgatewayRetention {
    let spec: PushgatewayRetentionSpec = serde_json::from_value(spec).expect("a spec");
    let mut obj = PushgatewayRetention::new("nightly", spec);
    obj.metadata.namespace = Some("ns".into());
    obj.metadata.generation = Some(GENERATION);
    obj
}

fn hourly() -> PushgatewayRetention {
    policy(serde_json::json!({
        "static": {"urls": ["http://10.0.0.1:9091"]}, "ttl": "1h", "interval": "1h"
    }))
}

fn check(obj: &PushgatewayRetention) -> Result<CheckedPolicy> {
    policy::check(
        &obj.spec,
        Duration::from_secs(60),
        &crate::sweep::Tuning::default(),
    )
}

/// A status that says generation `GENERATION` was swept `ago` before `now`.
fn swept_ago(now: Timestamp, ago: jiff::SignedDuration) -> PushgatewayRetentionStatus {
    PushgatewayRetentionStatus {
        observed_generation: Some(GENERATION),
        last_sweep: Some(LastSweep {
            start_time: (now - ago).to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn outcome(decision: &Decision) -> Option<&Reconciled> {
    match decision {
        Decision::Settle(settle) => Some(&settle.outcome),
        Decision::Sweep { .. } => None,
    }
}

#[test]
fn a_refused_spec_is_said_once_in_status_and_event_and_never_swept() {
    let now = Timestamp::now();
    let obj =
        policy(serde_json::json!({"static": {"urls": ["http://10.0.0.1:9091"]}, "ttl": "1s"}));
    let prev = PushgatewayRetentionStatus::default();
    let first = decide(&obj, check(&obj), &prev, None, None, now).unwrap();
    let Decision::Settle(settle) = first else {
        panic!("a refused spec is not swept");
    };
    let Settle {
        status,
        event,
        outcome,
    } = *settle;
    assert_eq!(outcome, Reconciled::SpecInvalid);
    let invalid = status.conditions.iter().find(|c| c.type_ == SPEC_INVALID);
    assert_eq!(invalid.map(|c| c.status.as_str()), Some("True"));
    assert_eq!(event.map(|e| e.reason), Some("InvalidSpec".to_string()));
    // The status it wrote comes back: nothing new to say.
    let again = decide(&obj, check(&obj), &status, None, None, now).unwrap();
    assert!(matches!(&again, Decision::Settle(s) if s.event.is_none()));
}

#[test]
fn a_suspended_policy_waits_for_a_change() {
    let obj = policy(serde_json::json!({
        "static": {"urls": ["http://10.0.0.1:9091"]}, "ttl": "1h", "suspend": true
    }));
    let prev = PushgatewayRetentionStatus::default();
    let d = decide(&obj, check(&obj), &prev, None, None, Timestamp::now()).unwrap();
    assert_eq!(outcome(&d), Some(&Reconciled::Suspended));
}

#[test]
fn a_policy_swept_a_minute_ago_waits_the_rest_of_its_interval() {
    let now = Timestamp::now();
    let obj = hourly();
    let prev = swept_ago(now, jiff::SignedDuration::from_mins(1));
    let d = decide(&obj, check(&obj), &prev, None, None, now).unwrap();
    let Some(Reconciled::NotDue { after }) = outcome(&d) else {
        panic!("not due: {:?}", outcome(&d));
    };
    assert_eq!(after.as_secs(), 59 * 60, "{after:?}");
}

#[test]
fn a_due_policy_sweeps_unless_its_backoff_runs_and_a_changed_spec_skips_the_backoff() {
    let now = Timestamp::now();
    let mut obj = hourly();
    let prev = swept_ago(now, jiff::SignedDuration::from_hours(2));
    let backoff = Some(Duration::from_secs(30));
    let d = decide(&obj, check(&obj), &prev, None, None, now).unwrap();
    assert!(matches!(d, Decision::Sweep { .. }), "{:?}", outcome(&d));
    let d = decide(&obj, check(&obj), &prev, None, backoff, now).unwrap();
    assert_eq!(
        outcome(&d),
        Some(&Reconciled::BackingOff {
            after: Duration::from_secs(30)
        })
    );
    // The status describes an older generation: the new spec is swept at once.
    obj.metadata.generation = Some(GENERATION + 1);
    let d = decide(&obj, check(&obj), &prev, None, backoff, now).unwrap();
    assert!(matches!(d, Decision::Sweep { .. }), "{:?}", outcome(&d));
}

#[test]
fn a_sweep_this_process_remembers_counts_though_the_status_missed_it() {
    let now = Timestamp::now();
    let obj = hourly();
    let prev = swept_ago(now, jiff::SignedDuration::from_hours(2));
    let remembered = LastSwept {
        generation: Some(GENERATION),
        started: now - jiff::SignedDuration::from_mins(1),
        unsaved: None,
    };
    let d = decide(&obj, check(&obj), &prev, Some(&remembered), None, now).unwrap();
    assert!(matches!(outcome(&d), Some(Reconciled::NotDue { .. })));
}
