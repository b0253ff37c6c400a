//! The controller across an API server restart, on the real kube-apiserver: the server (with its
//! etcd) is killed and started again on the same data, certificates and port. The controller
//! keeps running, its watch recovers, a sweep it ran while the server was away reaches the
//! status afterwards, and a policy that is not due is not swept again by the relist.
//!
//! On an API server of its own ([`OwnServer`]), so the restart disturbs no other test's server;
//! under the scenarios' `SERIAL` lock, as its short TTLs are timed like theirs.

use crate::common;

use std::time::Duration;

use kube::api::{Api, PostParams};
use serde_json::json;

use common::k8s::{wait_until, Controller, ControllerOpts, OwnServer};
use common::{sleep_past, GatewayOpts, TestGateway};
use pushgateway_janitor::crd::{PushgatewayRetention, PushgatewayRetentionSpec};

const SOON: Duration = Duration::from_secs(60);

fn policy(name: &str, gw: &TestGateway, jobs: &str, interval: &str) -> PushgatewayRetention {
    let spec: PushgatewayRetentionSpec = serde_json::from_value(json!({
        "static": {"urls": [gw.base_url]},
        "ttl": "2s",
        "minTtl": "1s",
        "interval": interval,
        "selector": format!("{{job=~\"{jobs}\"}}"),
    }))
    .expect("a valid spec");
    PushgatewayRetention::new(name, spec)
}

fn totals(p: &PushgatewayRetention) -> (i64, i64) {
    p.status
        .as_ref()
        .map_or((0, 0), |s| (s.totals.sweeps, s.totals.deleted))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_rides_out_an_api_server_restart_and_its_status_catches_up() {
    let _serial = super::controller_e2e::setup::SERIAL.lock().await;
    let server = OwnServer::start();
    let cluster = server.cluster("restart").await;
    let api: Api<PushgatewayRetention> = cluster.api();
    let gw = TestGateway::start(GatewayOpts::default());
    for job in ["once-1", "fast-1"] {
        gw.push(&[("job", job)], "x 1\n").await;
    }
    sleep_past(2.0).await;
    let mut opts = ControllerOpts::new("restart", Some(&cluster.ns));
    opts.kubeconfig = Some(server.kubeconfig.clone());
    opts.extra_args = ["--confirm-timeout", "5s"].map(String::from).to_vec();
    let ctl = Controller::start(&opts);
    // "once" is due once an hour; "fast" every 4 s.
    for p in [
        policy("once", &gw, "once-.*", "1h"),
        policy("fast", &gw, "fast-.*", "4s"),
    ] {
        api.create(&PostParams::default(), &p)
            .await
            .expect("create");
    }
    let swept = wait_until(SOON, || async {
        let once = api
            .get("once")
            .await
            .map(|p| totals(&p))
            .unwrap_or_default();
        let fast = api
            .get("fast")
            .await
            .map(|p| totals(&p))
            .unwrap_or_default();
        once == (1, 1) && fast.1 == 1
    })
    .await;
    assert!(swept, "first sweeps; log:\n{}", ctl.log_tail(30));

    // Right after a sweep of "fast" is in its status, a group it will find stale at its next
    // sweep (4 s later, TTL 2 s), and the server goes away before that sweep.
    let sweeps_before = totals(&api.get("fast").await.unwrap()).0;
    let next = wait_until(SOON, || async {
        api.get("fast")
            .await
            .is_ok_and(|p| totals(&p).0 > sweeps_before)
    })
    .await;
    assert!(next, "a further sweep of fast; log:\n{}", ctl.log_tail(30));
    gw.push(&[("job", "fast-2")], "x 1\n").await;
    cluster.server.kill();
    // A group "once" would delete if the relist made it sweep again.
    gw.push(&[("job", "once-2")], "x 1\n").await;

    // While the server is away, "fast" still sweeps on its cadence.
    let swept_while_away = wait_until(Duration::from_secs(15), || async {
        !gw.has_group(&[("job", "fast-2")]).await
    })
    .await;
    assert!(
        swept_while_away,
        "fast-2 not deleted while the API server was away; log:\n{}",
        ctl.log_tail(30)
    );
    cluster.server.start_again();

    // The sweep it ran while the server was away reaches the status: 2 groups deleted in all.
    let caught_up = wait_until(SOON, || async {
        api.get("fast").await.is_ok_and(|p| totals(&p).1 == 2)
    })
    .await;
    assert!(
        caught_up,
        "fast's status never counted the sweep made while the server was away: {:?}\n{}",
        api.get("fast").await.map(|p| p.status),
        ctl.log_tail(40)
    );
    // The watch works again: a policy created now is swept and its status written.
    gw.push(&[("job", "after-1")], "x 1\n").await;
    sleep_past(2.0).await;
    api.create(
        &PostParams::default(),
        &policy("after", &gw, "after-.*", "1h"),
    )
    .await
    .expect("create after the restart");
    let recovered = wait_until(SOON, || async {
        api.get("after").await.is_ok_and(|p| totals(&p) == (1, 1))
    })
    .await;
    assert!(
        recovered,
        "no sweep after the restart; log:\n{}",
        ctl.log_tail(40)
    );
    assert!(!gw.has_group(&[("job", "after-1")]).await);
    // "once" was not due: the relist after the restart did not sweep it again.
    assert_eq!(totals(&api.get("once").await.unwrap()), (1, 1));
    assert!(
        gw.has_group(&[("job", "once-2")]).await,
        "once swept again for the same due time"
    );
    assert_eq!(
        ctl.readyz().await,
        Some(200),
        "the controller is still serving"
    );
}
