//! The controller process on the real server: ready after its first watch list, and a clean
//! stop on SIGTERM.

use std::time::Duration;

use serde_json::json;

use crate::common::k8s::wait_until;
use crate::common::GatewayOpts;
use crate::setup::*;

/// `/readyz` is 200 once the watch delivered; the audit log shows the namespaced watch.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_200_after_the_first_watch_event() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("ready", GatewayOpts::default()).await;
    s.create("ready", spec_for(&s.gw, json!({}))).await;
    s.wait_status("ready", "a sweep", |p| totals_sweeps(p) >= 1)
        .await;
    let watched = s.cluster.server.audit_events().iter().any(|e| {
        e["verb"] == "watch"
            && e["objectRef"]["resource"] == "pushgatewayretentions"
            && e["objectRef"]["namespace"] == s.cluster.ns.as_str()
    });
    assert!(
        watched,
        "no namespaced watch of pushgatewayretentions in the audit log"
    );
    let last = std::sync::Mutex::new(None);
    let ready = wait_until(SOON, || async {
        let r = s.ctl.readyz().await;
        *last.lock().unwrap() = r;
        r == Some(200)
    })
    .await;
    let last = last.into_inner().unwrap();
    assert!(
        ready,
        "/readyz never 200 ({last:?}); log:\n{}",
        s.ctl.log_tail(20)
    );
}

/// After SIGTERM `/readyz` stops answering 200 (503 while shutting down, or nothing once
/// gone) and the process exits 0 within its shutdown timeout.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_readiness_and_exits_0() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("stop", GatewayOpts::default()).await;
    s.create("stop", spec_for(&s.gw, json!({}))).await;
    s.wait_status("stop", "a sweep", |p| totals_sweeps(p) >= 1)
        .await;
    let mut ctl = s.ctl;
    ctl.terminate();
    let seen = std::sync::Mutex::new(Vec::new());
    let not_ready = wait_until(SOON, || async {
        let r = ctl.readyz().await;
        seen.lock().unwrap().push(r);
        r != Some(200)
    })
    .await;
    let seen = seen.into_inner().unwrap();
    assert!(not_ready, "/readyz stayed 200 after SIGTERM: {seen:?}");
    assert!(
        seen.iter()
            .all(|r| matches!(r, Some(200) | Some(503) | None)),
        "/readyz after SIGTERM: {seen:?}"
    );
    let status = ctl.wait_exit(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}; log:\n{}",
        ctl.log_tail(30)
    );
    assert!(
        ctl.log_tail(5).contains("stopped"),
        "no clean stop:\n{}",
        ctl.log_tail(30)
    );
}
