//! Point 3: policies applied through the API get their stale groups deleted and their status
//! written; events are created and updated when they repeat; a spec change sweeps at once; a
//! suspended or deleted policy stops.

use kube::api::DeleteParams;
use serde_json::json;

use super::setup::*;
use crate::common::k8s::wait_until;
use crate::common::{free_port, sleep_past, GatewayOpts};

/// A new policy: the stale groups go, the fresh one stays; the status says so (conditions for
/// the current generation, lastSweep, totals); `lastTransitionTime` of Ready stays put across
/// later sweeps; a `Swept` event regards the policy.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_policy_deletes_the_stale_groups_and_reports_it() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("sweep", GatewayOpts::default()).await;
    // A longer TTL than the others, so the fresh group stays fresh through the first sweep
    // even on a loaded machine.
    s.gw.push(STALE_1, "x 1\n").await;
    s.gw.push(STALE_2, "x 2\n").await;
    sleep_past(10.0).await;
    s.gw.push(FRESH, "x 3\n").await;
    s.create("sweep", spec_for(&s.gw, json!({"ttl": "10s"})))
        .await;
    s.wait_gone(&[STALE_1, STALE_2]).await;
    let p = s
        .wait_status("sweep", "Ready=True for generation 1 with 2 deleted", |p| {
            observed_current(p)
                && condition_is(p, "Ready", "True")
                && p.status.as_ref().is_some_and(|s| s.totals.deleted == 2)
        })
        .await;
    s.assert_present(&[FRESH], "pushed within the TTL").await;
    // Removed by hand, so the later sweeps below have nothing to delete.
    s.gw.delete(FRESH).await;
    s.gw.wait_for_groups(|g| g.is_empty(), SOON).await;
    let status = p.status.clone().unwrap();
    let last = status.last_sweep.clone().expect("lastSweep");
    assert_eq!(last.replicas_found, 1, "{last:#?}");
    assert_eq!(last.replicas[0].state, "ok", "{last:#?}");
    assert!(!last.dry_run);
    for type_ in ["Ready", "Degraded", "SpecInvalid", "GuardTripped"] {
        let c = condition(&p, type_).unwrap_or_else(|| panic!("no {type_}: {status:#?}"));
        assert_eq!(c.observed_generation, Some(1), "{c:#?}");
    }
    assert_eq!(condition(&p, "Degraded").unwrap().status, "False");

    // Later sweeps rewrite lastSweep and the totals, not the time Ready became True.
    let since = condition(&p, "Ready").unwrap().last_transition_time.clone();
    let later = s.wait_sweeps("sweep", totals_sweeps(&p), 2).await;
    let ready = condition(&later, "Ready").unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(ready.last_transition_time, since, "{ready:#?}");
    let later_status = later.status.as_ref().unwrap();
    assert_ne!(
        later_status.last_sweep.as_ref().unwrap().start_time,
        last.start_time,
        "lastSweep was not rewritten"
    );
    assert_eq!(later_status.totals.deleted, 2, "{later_status:#?}");
    assert_eq!(later_status.totals.failed_sweeps, 0, "{later_status:#?}");

    let events = s.events_about("sweep").await;
    let swept: Vec<_> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Swept"))
        .collect();
    assert_eq!(swept.len(), 1, "{events:#?}");
    let e = swept[0];
    assert_eq!(e.type_.as_deref(), Some("Normal"));
    assert_eq!(
        e.reporting_controller.as_deref(),
        Some("pushgateway-janitor")
    );
    assert_eq!(e.reporting_instance.as_deref(), Some("ctl-a"));
    let note = e.note.as_deref().unwrap_or_default();
    assert!(note.starts_with("deleted 2 groups on 1 replicas"), "{note}");
    assert_eq!(
        e.regarding.as_ref().and_then(|r| r.kind.as_deref()),
        Some("PushgatewayRetention")
    );
}

/// A replica that fails at every sweep gives one `ReplicaFailed` Event, updated as a series,
/// not one Event per sweep.
#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_event_is_updated_not_duplicated() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("events", GatewayOpts::default()).await;
    let dead = format!("http://127.0.0.1:{}/", free_port());
    s.create(
        "flaky",
        spec_with(&[s.gw.base_url.as_str(), dead.as_str()], json!({})),
    )
    .await;
    let p = s
        .wait_status("flaky", "Degraded=True after a sweep", |p| {
            condition_is(p, "Degraded", "True") && totals_sweeps(p) >= 1
        })
        .await;
    s.wait_sweeps("flaky", totals_sweeps(&p), 2).await;
    let repeated = wait_until(SOON, || async {
        let events = s.events_about("flaky").await;
        events
            .iter()
            .any(|e| e.series.as_ref().is_some_and(|series| series.count >= 2))
    })
    .await;
    let events = s.events_about("flaky").await;
    assert!(repeated, "no event series with count >= 2: {events:#?}");
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ReplicaFailed"))
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "one ReplicaFailed Event object: {events:#?}"
    );
    assert_eq!(failed[0].type_.as_deref(), Some("Warning"));
    assert!(
        failed[0]
            .note
            .as_deref()
            .unwrap_or_default()
            .contains(&dead),
        "{:#?}",
        failed[0]
    );
    let p = s.get("flaky").await;
    assert!(condition_is(&p, "Ready", "False"), "{:#?}", p.status);
    let c = condition(&p, "Degraded").unwrap();
    assert_eq!(c.reason, "ReplicaFailed");
}

/// With an interval of an hour, only a spec change can bring a second sweep soon: a narrowed
/// selector sweeps at once, deleting a group only the new selector matches, keeping one only the
/// old one matched.
#[tokio::test(flavor = "multi_thread")]
async fn a_spec_change_sweeps_at_once() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("change", GatewayOpts::default()).await;
    let a1: &[(&str, &str)] = &[("job", "a-1")];
    let a2: &[(&str, &str)] = &[("job", "a-2")];
    let b1: &[(&str, &str)] = &[("job", "b-1")];
    s.gw.push(a1, "x 1\n").await;
    s.gw.push(b1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create(
        "change",
        spec_for(
            &s.gw,
            json!({"selector": r#"{job=~"a-.*"}"#, "interval": "1h"}),
        ),
    )
    .await;
    s.wait_gone(&[a1]).await;
    let p = s
        .wait_status("change", "generation 1 swept", |p| {
            observed_current(p) && totals_sweeps(p) == 1
        })
        .await;
    s.assert_present(&[b1], "outside the first selector").await;

    s.gw.push(a2, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    let patched = s
        .patch_spec("change", json!({"selector": r#"{job=~"b-.*"}"#}))
        .await;
    assert_eq!(patched.metadata.generation, Some(2));
    s.wait_gone(&[b1]).await;
    let p2 = s
        .wait_status("change", "generation 2 swept", |p| {
            observed_current(p) && totals_sweeps(p) == 2
        })
        .await;
    s.assert_present(&[a2], "stale, but outside the new selector")
        .await;
    assert_eq!(
        p2.status.as_ref().unwrap().totals.deleted,
        2,
        "{:#?} then {:#?}",
        p.status,
        p2.status
    );
}

/// `suspend: true`: Ready=False/Suspended, and a group that goes stale meanwhile stays; set
/// back to false, it goes.
#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_policy_deletes_nothing() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("pause", GatewayOpts::default()).await;
    s.gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create("pause", spec_for(&s.gw, json!({}))).await;
    s.wait_gone(&[STALE_1]).await; // it works before the suspension

    s.patch_spec("pause", json!({"suspend": true})).await;
    let p = s
        .wait_status("pause", "Ready=False reason Suspended", |p| {
            observed_current(p)
                && condition(p, "Ready")
                    .is_some_and(|c| c.status == "False" && c.reason == "Suspended")
        })
        .await;
    let sweeps_then = totals_sweeps(&p);
    s.gw.push(STALE_2, "x 2\n").await;
    sleep_past(TTL_SECS).await;
    tokio::time::sleep(INTERVAL * 3).await; // a few intervals while stale
    s.assert_present(&[STALE_2], "the policy is suspended")
        .await;
    let p = s.get("pause").await;
    assert_eq!(
        totals_sweeps(&p),
        sweeps_then,
        "swept while suspended: {:#?}",
        p.status
    );

    s.patch_spec("pause", json!({"suspend": false})).await;
    s.wait_gone(&[STALE_2]).await;
}

/// Deleting the policy stops its sweeps: a group that goes stale afterwards stays, and the
/// audit log shows no write to the policy after its deletion.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_policy_stops_sweeping() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("bye", GatewayOpts::default()).await;
    s.gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create("bye", spec_for(&s.gw, json!({}))).await;
    s.wait_gone(&[STALE_1]).await; // it works before the delete

    s.api
        .delete("bye", &DeleteParams::default())
        .await
        .expect("delete the policy");
    let gone = wait_until(SOON, || async {
        matches!(s.api.get("bye").await, Err(kube::Error::Api(ref e)) if e.code == 404)
    })
    .await;
    assert!(gone, "the policy is still there");
    let mark = s.cluster.server.audit_events().len();
    s.gw.push(STALE_2, "x 2\n").await;
    sleep_past(TTL_SECS).await;
    tokio::time::sleep(INTERVAL * 3).await;
    s.assert_present(&[STALE_2], "its policy was deleted").await;
    let writes: Vec<_> = s.cluster.server.audit_events()[mark..]
        .iter()
        .filter(|e| {
            e["objectRef"]["namespace"] == s.cluster.ns.as_str()
                && e["objectRef"]["name"] == "bye"
                && !matches!(e["verb"].as_str(), Some("get" | "list" | "watch"))
        })
        .cloned()
        .collect();
    assert!(
        writes.is_empty(),
        "writes to the deleted policy: {writes:#?}"
    );
}
