//! Point 5 and the Prometheus source: replicas found through a Service's EndpointSlices created
//! by the test (ready, not ready, terminating), credentials read from a Secret through the API,
//! and replicas found through a real Prometheus.

use serde_json::json;

use super::fixtures::*;
use super::setup::*;
use crate::common::{sleep_past, GatewayOpts, TestPrometheus};

/// A `service` source sweeps every endpoint that is not terminating, ready or not, with the
/// password read from a Secret through the API; the terminating one is left alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_service_source_sweeps_its_endpoint_slices_with_a_secret_from_the_api() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("service", GatewayOpts::default()).await;
    let gws = [
        gateway_with_basic_auth(),
        gateway_with_basic_auth(),
        gateway_with_basic_auth(),
    ];
    for gw in &gws {
        push_authed(gw, STALE_1, "x 1\n").await;
    }
    create_service(
        &s.cluster,
        "pgw",
        &[
            (&gws[0], true, false),
            (&gws[1], false, false),
            (&gws[2], false, true),
        ],
    )
    .await;
    create_secret(&s.cluster, "pgw-auth").await;
    sleep_past(TTL_SECS).await;
    let spec = spec_for(
        &s.gw,
        json!({
            "static": null,
            "service": {"name": "pgw", "port": "http"},
            "gatewayAuth": {"basicUsername": USER,
                            "basicPassword": {"name": "pgw-auth", "key": "password"}},
        }),
    );
    s.create("via-service", spec).await;
    let p = s
        .wait_status("via-service", "a sweep of 2 replicas that deleted 2", |p| {
            p.status.as_ref().is_some_and(|st| st.totals.deleted == 2)
        })
        .await;
    let last = p.status.as_ref().unwrap().last_sweep.clone().unwrap();
    let mut urls: Vec<String> = last.replicas.iter().map(|r| r.url.clone()).collect();
    urls.sort();
    let mut want = vec![gws[0].base_url.clone(), gws[1].base_url.clone()];
    want.sort();
    assert_eq!(
        urls, want,
        "the ready and the not-ready endpoint, not the terminating one"
    );
    assert!(last.replicas.iter().all(|r| r.state == "ok"), "{last:#?}");
    assert!(groups_authed(&gws[0]).await.is_empty());
    assert!(groups_authed(&gws[1]).await.is_empty());
    assert_eq!(
        groups_authed(&gws[2]).await,
        ["stale-1"],
        "terminating: not swept"
    );

    // The password came from the API: the controller read that Secret.
    let reads = s
        .cluster
        .server
        .audit_events()
        .into_iter()
        .filter(|e| {
            e["verb"] == "get"
                && e["objectRef"]["resource"] == "secrets"
                && e["objectRef"]["namespace"] == s.cluster.ns.as_str()
                && e["objectRef"]["name"] == "pgw-auth"
                && e["responseStatus"]["code"] == 200
        })
        .count();
    assert!(reads >= 1, "no read of Secret pgw-auth in the audit log");
}

/// A `prometheus` source: the replicas are the targets of `up{job=...}` on a real Prometheus.
#[tokio::test(flavor = "multi_thread")]
async fn a_prometheus_source_finds_the_replicas_through_up() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("prom", GatewayOpts::default()).await;
    let prom = TestPrometheus::start("pushgateway", &[s.gw.address()]);
    prom.wait_for_up("pushgateway", 1, SOON).await;
    s.gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create(
        "via-prometheus",
        spec_for(
            &s.gw,
            json!({"static": null, "prometheus": {"url": prom.url, "job": "pushgateway"}}),
        ),
    )
    .await;
    s.wait_gone(&[STALE_1]).await;
    let p = s
        .wait_status("via-prometheus", "Ready=True", |p| {
            condition_is(p, "Ready", "True")
        })
        .await;
    let last = p.status.unwrap().last_sweep.unwrap();
    assert_eq!(last.replicas.len(), 1, "{last:#?}");
    assert_eq!(last.replicas[0].url, s.gw.base_url);
}
