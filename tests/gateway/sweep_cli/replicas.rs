//! Which replicas a sweep reaches: copies behind a load balancer, a poisoned or down replica,
//! replicas found through Prometheus (or none found, or Prometheus down), and instances under a
//! route prefix.

use serde_json::Value;

use super::{outcomes, run};
use crate::common::{self, sleep_past, GatewayOpts, TestGateway, TestPrometheus};

#[tokio::test]
async fn a_stale_copy_behind_a_load_balancer_is_superseded_and_the_fresh_copy_stays() {
    let r0 = TestGateway::start(GatewayOpts::default());
    let r1 = TestGateway::start(GatewayOpts::default());
    let key = [("job", "nightly"), ("instance", "etl")];
    r0.push(&key, "rows 1\n").await;
    sleep_past(3.0).await;
    r1.push(&key, "rows 2\n").await;
    let (code, report, stderr) = run(&[
        "--gateway",
        &r0.base_url,
        "--gateway",
        &r1.base_url,
        "--ttl",
        "1h",
        "--superseded-grace",
        "1s",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !r0.has_group(&key).await,
        "the older copy on replica 0 is gone"
    );
    assert!(
        r1.has_group(&key).await,
        "the newest copy on replica 1 stays"
    );
    let actions = &report["actions"];
    assert_eq!(actions.as_array().unwrap().len(), 1);
    assert_eq!(actions[0]["reason"], "superseded");
    assert_eq!(actions[0]["gateway"], r0.base_url.as_str());

    // With superseded detection off, nothing younger than the TTL goes.
    r0.push(&key, "rows 1\n").await;
    sleep_past(2.0).await;
    r1.push(&key, "rows 2\n").await;
    let (code, report, _) = run(&[
        "--gateway",
        &r0.base_url,
        "--gateway",
        &r1.base_url,
        "--ttl",
        "1h",
        "--no-superseded",
    ]);
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["planned"], 0);
    assert!(r0.has_group(&key).await && r1.has_group(&key).await);
}

#[tokio::test]
async fn a_poisoned_replica_is_healed_and_its_real_group_stays() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.poison("a").await;
    let (code, report, stderr) = run(&["--gateway", &gw.base_url, "--ttl", "1h"]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    let actions = outcomes(&report);
    assert_eq!(
        actions,
        vec![(
            r#"{"instance":"","job":"a"}"#.to_string(),
            "poison".to_string(),
            "deleted".to_string()
        )]
    );
    assert!(gw.has_group(&[("job", "a")]).await, "the real group stays");
    assert_eq!(gw.get("metrics").await.0, 200, "/metrics answers again");
}

#[tokio::test]
async fn a_replica_that_is_down_is_reported_and_the_others_are_still_swept() {
    let up = TestGateway::start(GatewayOpts::default());
    let mut down = TestGateway::start(GatewayOpts::default());
    up.push(&[("job", "old")], "x 1\n").await;
    down.stop();
    sleep_past(2.0).await;
    let (code, report, _) = run(&[
        "--gateway",
        &up.base_url,
        "--gateway",
        &down.base_url,
        "--ttl",
        "2s",
    ]);
    assert_eq!(code, 1, "a failed replica makes exit code 1");
    assert!(up.groups().await.is_empty(), "the live replica was swept");
    let failed: Vec<&Value> = report["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["url"], down.base_url.as_str());
    assert!(
        failed[0]["groups"].is_null(),
        "an unreachable replica is never counted as empty"
    );
    assert!(failed[0]["error"]
        .as_str()
        .unwrap()
        .contains(&down.address()));
}

#[tokio::test]
async fn replicas_found_through_prometheus_include_down_and_poisoned_ones() {
    let healthy = TestGateway::start(GatewayOpts::default());
    let poisoned = TestGateway::start(GatewayOpts::default());
    let mut down = TestGateway::start(GatewayOpts::default());
    down.stop();
    poisoned.poison("p").await;
    healthy.push(&[("job", "old")], "x 1\n").await;
    let prom = TestPrometheus::start(
        "pushgateway",
        &[healthy.address(), poisoned.address(), down.address()],
    );
    prom.wait_for_up("pushgateway", 3, std::time::Duration::from_secs(30))
        .await;
    sleep_past(2.0).await;
    let (code, report, stderr) = run(&[
        "--prometheus",
        &prom.url,
        "--job",
        "pushgateway",
        "--ttl",
        "2s",
    ]);
    assert_eq!(code, 1, "the down replica fails the run: {stderr}");
    assert_eq!(report["summary"]["replicas"], 3);
    assert_eq!(report["summary"]["replicas_failed"], 1);
    assert!(healthy.groups().await.is_empty());
    assert_eq!(
        poisoned.get("metrics").await.0,
        200,
        "the poisoned replica was healed"
    );
}

#[tokio::test]
async fn prometheus_down_is_a_failed_run_that_touches_nothing() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let (code, report, _) = run(&["--prometheus", &dead, "--job", "pushgateway", "--ttl", "1s"]);
    assert_eq!(code, 1);
    assert!(report["summary"]["error"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1"));
    assert_eq!(gw.groups().await.len(), 1);
}

#[tokio::test]
async fn instances_become_urls_under_the_route_prefix() {
    let gw = TestGateway::start(GatewayOpts {
        route_prefix: Some("/pgw".into()),
        ..Default::default()
    });
    gw.push(&[("job", "old")], "x 1\n").await;
    let prom = TestPrometheus::start("pushgateway", &[gw.address()]);
    // Prometheus scrapes the prefixed gateway at the wrong path and marks it down; that is
    // fine: discovery takes every target whatever its up value.
    prom.wait_for_up("pushgateway", 1, std::time::Duration::from_secs(30))
        .await;
    sleep_past(2.0).await;
    let (code, report, stderr) = run(&[
        "--prometheus",
        &prom.url,
        "--job",
        "pushgateway",
        "--gateway-path-prefix",
        "/pgw",
        "--ttl",
        "2s",
    ]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(report["replicas"][0]["url"], gw.base_url.as_str());
    assert!(gw.groups().await.is_empty());
}

#[tokio::test]
async fn zero_replicas_found_is_an_error_not_a_clean_run() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    let prom = TestPrometheus::start("pushgateway", &[gw.address()]);
    prom.wait_for_up("pushgateway", 1, std::time::Duration::from_secs(30))
        .await;
    let (code, report, _) = run(&[
        "--prometheus",
        &prom.url,
        "--job",
        "no-such-job",
        "--ttl",
        "1s",
    ]);
    assert_eq!(code, 1, "{report:#}");
    let error = report["summary"]["error"].as_str().unwrap();
    assert!(error.contains("no-such-job"), "{error}");
    assert!(gw.has_group(&[("job", "old")]).await);
}
