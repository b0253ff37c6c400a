//! The long-running loop: it deletes groups as they age, serves its probes and metrics, and stops
//! cleanly on SIGTERM.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_loop_deletes_groups_as_they_age_serves_probes_and_metrics_and_stops_on_sigterm() {
    let gw = TestGateway::start(GatewayOpts::default());
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "policy.yaml",
        &static_policy("loop", "every-2s", &gw, "  interval: 2s\n"),
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = janitor();
    cmd.args(["run", "--policies", file.to_str().unwrap()])
        .args(["--listen", &listen, "--min-ttl", "1s"]);
    let mut running = Proc::spawn("pushgateway-janitor run", cmd, &dir.path().join("run.log"));

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let get = |path: &str| {
        let req = http.get(format!("http://{listen}{path}"));
        async move {
            match req.send().await {
                Ok(r) => Some((r.status().as_u16(), r.text().await.unwrap_or_default())),
                Err(_) => None,
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while get("/readyz").await.map(|r| r.0) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "never ready:\n{}",
            running.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get("/livez").await.map(|r| r.0), Some(200));

    gw.push(&[("job", "ages-out")], "x 1\n").await;
    // 2s TTL, a sweep every 2s, the gateway clock's 1s resolution: well inside 20s.
    let deadline = Instant::now() + Duration::from_secs(20);
    while gw.has_group(&[("job", "ages-out")]).await {
        assert!(
            Instant::now() < deadline,
            "the group was never deleted:\n{}",
            running.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, metrics) = get("/metrics").await.expect("/metrics answers");
    assert_eq!(code, 200);
    assert!(
        metrics.contains(
            r#"pgw_janitor_groups_deleted_total{namespace="loop",policy="every-2s",reason="expired"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        running.log_text().contains("sweep done"),
        "{}",
        running.log_text()
    );

    running.terminate();
    let status = running
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no exit within 15s of SIGTERM:\n{}", running.log_text()));
    assert_eq!(status.code(), Some(0), "{}", running.log_text());
}
