//! Discovery through Prometheus that a pushed sample cannot spoof, against real gateways, a real
//! Prometheus scraping them with `honor_labels: true`, and a real nginx where a proxy belongs.
//!
//! The attack: anyone who can push can PUT `up 1` to `/metrics/job/<job>/instance/<any host>`;
//! Prometheus then answers `up{job="<job>"}` with that instance as if it were a replica.

use crate::common;

use std::time::Duration;

use common::{
    sleep_past, sweep_json, GatewayOpts, TestGateway, TestNginx, TestPrometheus, Tripwire,
};
use serde_json::Value;

const JOB: &str = "pushgateway";

/// Pushes the fake: one `up` sample whose `instance` is the tripwire's address.
async fn push_fake_up(gw: &TestGateway, fake: &str) {
    let status = gw
        .push_raw_path(&format!("metrics/job/{JOB}/instance/{fake}"), "up 1\n")
        .await;
    assert!(
        status == 200 || status == 202,
        "fake push answered {status}"
    );
}

fn refused_instances(report: &Value) -> Vec<String> {
    report["refused"]
        .as_array()
        .unwrap_or_else(|| panic!("no refused list: {report:#}"))
        .iter()
        .map(|r| r["instance"].as_str().unwrap().to_string())
        .collect()
}

fn replica_urls(report: &Value) -> Vec<String> {
    let mut urls: Vec<String> = report["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["url"].as_str().unwrap().to_string())
        .collect();
    urls.sort();
    urls
}

#[tokio::test]
async fn a_pushed_up_series_is_refused_never_contacted_and_the_real_replicas_are_swept() {
    let a = TestGateway::start(GatewayOpts::default());
    let b = TestGateway::start(GatewayOpts::default());
    let fake = Tripwire::start();
    // A stale copy on a, the newer copy on b: a superseded decision, which an unreadable "replica"
    // would have blocked everywhere.
    a.push(&[("job", "batch")], "rows 1\n").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    b.push(&[("job", "batch")], "rows 2\n").await;
    a.push(&[("job", "fresh")], "rows 1\n").await;
    push_fake_up(&a, &fake.address()).await;
    let prom = TestPrometheus::start(JOB, &[a.address(), b.address()]);
    // The attack works on Prometheus: up{job} answers the fake as a third instance.
    let up = prom
        .wait_for_up_matching(
            JOB,
            |up| up.len() == 3 && up.contains_key(&fake.address()),
            Duration::from_secs(30),
        )
        .await;
    assert!(up.contains_key(&a.address()) && up.contains_key(&b.address()));

    let (code, report, stderr) = sweep_json(&[
        "--prometheus",
        &prom.url,
        "--job",
        JOB,
        "--ttl",
        "1h",
        "--superseded-grace",
        "1s",
        "--selector",
        r#"{job!="pushgateway"}"#,
    ]);
    assert_eq!(
        code, 0,
        "the fake changes no exit code: {stderr}\n{report:#}"
    );
    assert_eq!(fake.connections(), 0, "the fake address was contacted");
    assert_eq!(refused_instances(&report), [fake.address()]);
    assert_eq!(report["summary"]["refused"], 1);
    assert_eq!(report["summary"]["replicas"], 2);
    let mut want = vec![a.base_url.clone(), b.base_url.clone()];
    want.sort();
    assert_eq!(replica_urls(&report), want);
    assert!(
        stderr.contains("refused") && stderr.contains(&fake.address()),
        "the log names the fake: {stderr}"
    );
    // Swept exactly as if the fake were not there.
    assert!(
        !a.has_group(&[("job", "batch")]).await,
        "stale copy superseded"
    );
    assert!(b.has_group(&[("job", "batch")]).await, "newest copy kept");
    assert!(
        a.has_group(&[("job", "fresh")]).await,
        "fresh group kept: {report:#}"
    );
}

#[tokio::test]
async fn relabeled_instances_and_route_prefixes_come_from_the_scrape_url() {
    let gw = TestGateway::start(GatewayOpts {
        route_prefix: Some("/pgw".into()),
        ..Default::default()
    });
    gw.push(&[("job", "old")], "x 1\n").await;
    // `instance` becomes a pod-like name: no URL can be made of it, the scrape URL is the truth.
    let prom = TestPrometheus::start_with_scrape_configs(
        &format!(
            "  - job_name: {JOB}\n    honor_labels: true\n    metrics_path: /pgw/metrics\n    \
             static_configs:\n      - targets: [\"{}\"]\n    relabel_configs:\n      \
             - target_label: instance\n        replacement: pgw-0\n",
            gw.address()
        ),
        None,
    );
    prom.wait_for_up_matching(
        JOB,
        |up| up.get("pgw-0") == Some(&1.0),
        Duration::from_secs(30),
    )
    .await;
    sleep_past(2.0).await;
    let (code, report, stderr) =
        sweep_json(&["--prometheus", &prom.url, "--job", JOB, "--ttl", "2s"]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(replica_urls(&report), vec![gw.base_url.clone()]);
    assert!(refused_instances(&report).is_empty());
    assert!(!gw.has_group(&[("job", "old")]).await);
}

#[tokio::test]
async fn without_a_targets_api_only_allowed_addresses_are_contacted() {
    let gw = TestGateway::start(GatewayOpts::default());
    let fake = Tripwire::start();
    gw.push(&[("job", "old")], "x 1\n").await;
    push_fake_up(&gw, &fake.address()).await;
    let prom = TestPrometheus::start(JOB, &[gw.address()]);
    prom.wait_for_up(JOB, 2, Duration::from_secs(30)).await;
    // A query front end with no targets API, as Thanos Query, Mimir or VictoriaMetrics may be.
    let front = TestNginx::start(
        "",
        &format!(
            "location /api/v1/targets {{ return 404; }}\n    \
             location / {{ proxy_pass http://127.0.0.1:{}; }}",
            prom.port
        ),
    );
    sleep_past(2.0).await;
    let selector = r#"{job!="pushgateway"}"#;

    let (code, report, _) = sweep_json(&[
        "--prometheus",
        &front.url,
        "--job",
        JOB,
        "--ttl",
        "2s",
        "--selector",
        selector,
    ]);
    assert_eq!(code, 1, "{report:#}");
    let error = report["summary"]["error"].as_str().unwrap();
    assert!(error.contains("targets API"), "{error}");
    assert!(gw.has_group(&[("job", "old")]).await, "nothing touched");

    let (code, _, stderr) = sweep_json(&[
        "--prometheus",
        &front.url,
        "--job",
        JOB,
        "--ttl",
        "2s",
        "--discovery",
        "up",
    ]);
    assert_eq!(code, 2, "up discovery without an allow-list is refused");
    assert!(stderr.contains("--allow-replica"), "{stderr}");
    assert!(gw.has_group(&[("job", "old")]).await, "nothing touched");

    let (code, report, stderr) = sweep_json(&[
        "--prometheus",
        &front.url,
        "--job",
        JOB,
        "--ttl",
        "2s",
        "--selector",
        selector,
        "--discovery",
        "up",
        "--allow-replica-host",
        &gw.address(),
    ]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(fake.connections(), 0, "the fake address was contacted");
    assert_eq!(refused_instances(&report), [fake.address()]);
    assert_eq!(replica_urls(&report), vec![gw.base_url.clone()]);
    assert!(
        !gw.has_group(&[("job", "old")]).await,
        "the allowed replica was swept"
    );
}

#[tokio::test]
async fn credentials_never_follow_a_redirect_to_another_host() {
    let elsewhere = Tripwire::start();
    // A "replica" that sends every request to another host, with nginx doing the redirecting.
    let redirector = TestNginx::start(
        "",
        &format!(
            "location / {{ return 307 http://{}$request_uri; }}",
            elsewhere.address()
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2\n").unwrap();
    let (code, report, stderr) = sweep_json(&[
        "--gateway",
        &redirector.url,
        "--ttl",
        "1m",
        "--gateway-basic-user",
        "ops",
        "--gateway-password-file",
        password.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}\n{report:#}");
    assert_eq!(
        elsewhere.connections(),
        0,
        "the redirect was followed to another host"
    );
    let error = report["replicas"][0]["error"].as_str().unwrap();
    assert!(error.contains("redirected to another host"), "{error}");
    assert!(
        redirector.access_log().contains("307"),
        "the redirect was really answered"
    );
    assert!(!stderr.contains("hunter2") && !report.to_string().contains("hunter2"));
}
