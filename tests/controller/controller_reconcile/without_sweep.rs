//! Reconciles that sweep nothing and say why: an invalid selector, a suspended policy, a policy
//! not yet due, and a replica that is not the leader.

use super::*;

#[tokio::test]
async fn an_invalid_selector_is_reported_in_status_and_an_event_and_touches_no_gateway() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let mut spec = static_spec(&[&gw.base_url]);
    spec["selector"] = json!(r#"{job=~"(unclosed"}"#);
    let obj = policy("bad", spec, None);
    let (ctx, mut api) = context(true);
    let scenario = tokio::spawn(async move {
        let status = api.status_apply("bad").await;
        let (state, reason, message) = condition(&status, "SpecInvalid");
        assert_eq!((state, reason), ("True", "InvalidSpec"));
        assert!(message.contains("spec.selector"), "{message}");
        assert_eq!(condition(&status, "Ready").0, "False");
        let note = api.event("bad", "Warning", "InvalidSpec").await;
        assert!(note.contains("spec.selector"), "{note}");
        api.silent().await;
    });
    assert_eq!(reconcile(&obj, &ctx).await, Reconciled::SpecInvalid);
    tokio::time::timeout(WAIT, scenario).await.unwrap().unwrap();
    assert!(gw.has_group(&[("job", "old")]).await, "no gateway touched");
    assert!(ctx.metrics.encode().contains(r#"result="spec_invalid""#));
}

#[tokio::test]
async fn a_suspended_policy_says_so_and_sweeps_nothing() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let mut spec = static_spec(&[&gw.base_url]);
    spec["suspend"] = json!(true);
    let obj = policy("paused", spec, None);
    let (ctx, mut api) = context(true);
    let scenario = tokio::spawn(async move {
        let status = api.status_apply("paused").await;
        assert_eq!(condition(&status, "Ready").0, "False");
        assert_eq!(condition(&status, "Ready").1, "Suspended");
        assert!(status.last_sweep.is_none());
        api.silent().await;
    });
    assert_eq!(reconcile(&obj, &ctx).await, Reconciled::Suspended);
    tokio::time::timeout(WAIT, scenario).await.unwrap().unwrap();
    assert!(gw.has_group(&[("job", "old")]).await);
}

#[tokio::test]
async fn a_policy_not_due_is_requeued_without_a_sweep_or_a_write() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let started = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(10);
    let cond = |t: &str, s: &str, r: &str| {
        json!({"type": t, "status": s, "reason": r, "message": "the spec was accepted",
               "observedGeneration": 1, "lastTransitionTime": "2026-01-01T00:00:00Z"})
    };
    let status = json!({
        "observedGeneration": 1,
        "conditions": [cond("Ready", "True", "Swept"), cond("SpecInvalid", "False", "Valid")],
        "lastSweep": {"startTime": started.to_string(), "durationSeconds": 0.1, "replicasFound": 1,
                      "replicasFailed": 0, "groupsSeen": 1, "deleted": 0, "wouldDelete": 0,
                      "failedDeletes": 0, "dryRun": false},
        "totals": {"sweeps": 1, "deleted": 0, "failedSweeps": 0},
    });
    let obj = policy("later", static_spec(&[&gw.base_url]), Some(status));
    let (ctx, mut api) = context(true);
    let done = reconcile(&obj, &ctx).await;
    match done {
        Reconciled::NotDue { after } => assert!(
            after > Duration::from_secs(280) && after <= Duration::from_secs(290),
            "next check at lastSweep + 5m: {after:?}"
        ),
        other => panic!("not due expected: {other:?}"),
    }
    api.silent().await;
    assert!(gw.has_group(&[("job", "old")]).await, "nothing swept");
}

#[tokio::test]
async fn a_non_leader_touches_neither_gateways_nor_status() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let obj = policy("follower", static_spec(&[&gw.base_url]), None);
    let (ctx, mut api) = context(false);
    let done = reconcile(&obj, &ctx).await;
    assert_eq!(
        done,
        Reconciled::NotLeader {
            after: Settings::default().not_leader_requeue
        }
    );
    api.silent().await;
    assert!(gw.has_group(&[("job", "old")]).await);
}
