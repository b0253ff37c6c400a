//! Prometheus down, and restarting, while the janitor runs (issue #11), with a real Prometheus
//! and real gateways: without discovery nothing is touched and the failure is reported; once
//! Prometheus is back, the same `run --policies` loop sweeps again. Every wait is bounded.

use crate::common;

use std::time::Duration;

use common::process::Proc;
use common::run::wait_until;
use common::{
    free_port, janitor, run_bounded, sleep_past, GatewayOpts, TestGateway, TestPrometheus,
};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_sweep_with_prometheus_down_fails_naming_it_and_touches_nothing() {
    let gw = TestGateway::start(GatewayOpts::default());
    let mut prom = TestPrometheus::start("pushgateway", &[gw.address()]);
    prom.wait_for_up("pushgateway", 1, Duration::from_secs(60))
        .await;
    gw.push(&[("job", "fill")], "x 1\n").await;
    sleep_past(2.0).await;
    prom.stop();

    let mut cmd = janitor();
    cmd.args(["sweep", "--prometheus", &prom.url, "--job", "pushgateway"])
        .args(["--ttl", "2s", "--min-ttl", "1s", "--output", "json"])
        .args(["--prometheus-timeout", "5s"]);
    let out = run_bounded(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let error = report["summary"]["error"].as_str().unwrap_or_default();
    assert!(error.contains(&prom.url), "names Prometheus: {error}");
    assert!(
        error.contains("connection refused") || error.contains("Connection refused"),
        "names the cause: {error}"
    );
    assert_eq!(report["replicas"], Value::Array(vec![]), "{report:#}");
    assert!(gw.has_group(&[("job", "fill")]).await, "nothing touched");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loop_reports_prometheus_down_touches_nothing_and_sweeps_again_once_it_is_back() {
    let a = TestGateway::start(GatewayOpts::default());
    let b = TestGateway::start(GatewayOpts::default());
    let mut prom = TestPrometheus::start("pushgateway", &[a.address(), b.address()]);
    prom.wait_for_up("pushgateway", 2, Duration::from_secs(60))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let policy = format!(
        "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
         name: via-prometheus\n  namespace: faults\nspec:\n  prometheus:\n    url: {}\n    \
         job: pushgateway\n  ttl: 2s\n  minTtl: 1s\n  interval: 1s\n  \
         selector: '{{job=\"fill\"}}'\n",
        prom.url
    );
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy).unwrap();
    let mut cmd = janitor();
    cmd.args(["run", "--policies", file.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--min-ttl", "1s", "--prometheus-timeout", "3s"]);
    let mut running = Proc::spawn("pushgateway-janitor run", cmd, &dir.path().join("run.log"));
    let fill = [("job", "fill")];

    // Up: the loop sweeps both replicas.
    a.push(&fill, "x 1\n").await;
    b.push(&fill, "x 1\n").await;
    wait_until(
        "the sweep with Prometheus up",
        Duration::from_secs(30),
        &running,
        || async { !a.has_group(&fill).await && !b.has_group(&fill).await },
    )
    .await;

    // Down: the sweeps fail discovery, say so, and delete nothing, however stale.
    prom.stop();
    let seen = running.log_text().len();
    a.push(&fill, "x 2\n").await;
    b.push(&fill, "x 2\n").await;
    sleep_past(2.0).await;
    let refused = |log: &str| {
        log[seen..].lines().any(|l| {
            l.contains("sweep done with trouble")
                && l.contains(&prom.url)
                && l.to_lowercase().contains("connection refused")
        })
    };
    wait_until(
        "a failed sweep while Prometheus is down",
        Duration::from_secs(30),
        &running,
        || {
            let found = refused(&running.log_text());
            async move { found }
        },
    )
    .await;
    assert!(a.has_group(&fill).await && b.has_group(&fill).await);
    assert!(running.try_exit().is_none(), "the loop goes on");

    // Back, on the same port with its data: the next sweeps find both replicas and delete.
    prom.start_again();
    wait_until(
        "the sweep after Prometheus is back",
        Duration::from_secs(60),
        &running,
        || async { !a.has_group(&fill).await && !b.has_group(&fill).await },
    )
    .await;
}
