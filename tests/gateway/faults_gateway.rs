//! Crashes and restarts of real Pushgateway replicas in the middle of the janitor's work, each
//! checked by what the gateways hold afterwards (issue #11): a replica killed (SIGKILL) while
//! thousands of its groups are being deleted, and a replica restarted with its persistence file,
//! bringing deleted groups back.
//!
//! Every wait is bounded; every child is killed by its PID when its struct drops.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::Proc;
use common::run::wait_until;
use common::{free_port, janitor, run_bounded, sleep_past, GatewayOpts, TestGateway};
use serde_json::Value;

/// A replica that persists to `file` every second, filled without its consistency check.
fn persistent_gateway(file: &Path) -> TestGateway {
    TestGateway::start(GatewayOpts {
        persistence_file: Some(file.to_path_buf()),
        extra_args: vec![
            "--persistence.interval=1s".into(),
            "--push.disable-consistency-check".into(),
        ],
        ..Default::default()
    })
}

/// A one-shot sweep of the `fill` job over `gateways` (2s TTL), bounded; exit code and report.
fn sweep_command(gateways: &[&TestGateway], extra: &[&str]) -> Command {
    let mut cmd = janitor();
    cmd.arg("sweep");
    for gw in gateways {
        cmd.args(["--gateway", &gw.base_url]);
    }
    cmd.args([
        "--ttl",
        "2s",
        "--min-ttl",
        "1s",
        "--selector",
        r#"{job="fill"}"#,
    ])
    .args(["--request-timeout", "10s", "--confirm-timeout", "10s"])
    .args(["--output", "json"])
    .args(extra);
    cmd
}

fn parse(out: &std::process::Output) -> (i32, Value, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("report is not JSON ({e}):\n{stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn replica<'a>(report: &'a Value, gw: &TestGateway) -> &'a Value {
    report["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .find(|r| r["url"].as_str() == Some(gw.base_url.as_str()))
        .unwrap_or_else(|| panic!("no replica {} in {report:#}", gw.base_url))
}

fn outcomes_on(report: &Value, gw: &TestGateway, outcome: &str) -> usize {
    report["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["gateway"].as_str() == Some(gw.base_url.as_str()) && a["outcome"] == outcome)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_mid_delete_is_reported_failed_the_other_swept_and_the_next_sweep_finishes(
) {
    const BIG: usize = 3000;
    const SMALL: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let mut big = persistent_gateway(&dir.path().join("big.data"));
    let small = persistent_gateway(&dir.path().join("small.data"));
    big.fill("fill", BIG, 32).await;
    small.fill("fill", SMALL, 32).await;
    // Outside the selector: must survive the crash, the restart and both sweeps.
    big.push(&[("job", "other")], "keep 1\n").await;
    small.push(&[("job", "other")], "keep 1\n").await;
    assert_eq!(big.count_job("fill").await, BIG);
    sleep_past(2.0).await;

    // 100 deletes/s: about 30 s for the big replica, so the kill lands well inside its deletes.
    let cmd = sweep_command(&[&big, &small], &["--delete-rate", "100"]);
    let sweep = tokio::task::spawn_blocking(move || run_bounded(cmd, Duration::from_secs(120)));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = big.count_job("fill").await;
        if left < BIG - 200 {
            break;
        }
        assert!(
            Instant::now() < deadline && !sweep.is_finished(),
            "the sweep never got 200 deletes into the big replica ({left} left)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    big.stop(); // SIGKILL, mid-delete
    let (code, report, stderr) = parse(&sweep.await.unwrap());

    assert_eq!(code, 1, "a failed replica is exit 1:\n{report:#}\n{stderr}");
    let big_report = replica(&report, &big);
    assert_eq!(big_report["state"], "failed", "{big_report:#}");
    assert!(big_report["error"].is_string(), "{big_report:#}");
    assert!(
        outcomes_on(&report, &big, "failed") + outcomes_on(&report, &big, "unconfirmed") > 0,
        "the deletes the kill cut off are reported failed or unconfirmed:\n{big_report:#}"
    );
    let small_report = replica(&report, &small);
    assert_eq!(small_report["state"], "ok", "{small_report:#}");
    assert_eq!(outcomes_on(&report, &small, "deleted"), SMALL);
    assert_eq!(small.count_job("fill").await, 0);
    assert!(small.has_group(&[("job", "other")]).await);
    // A one-shot sweep has no memory: it gives the start time, never `restarted`.
    assert_eq!(
        small_report["start_time"].as_str(),
        Some(small.start_time().await.as_str())
    );
    assert!(small_report.get("restarted").is_none(), "{small_report:#}");

    // Back on the same port with the same persistence file: whatever reached the disk is back.
    big.restart();
    let back = big.count_job("fill").await;
    println!("after the restart the big replica holds {back} of {BIG} fill groups again");
    assert!(big.has_group(&[("job", "other")]).await);

    let out = run_bounded(
        sweep_command(&[&big, &small], &["--delete-rate", "1000"]),
        Duration::from_secs(120),
    );
    let (code, report, stderr) = parse(&out);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_eq!(outcomes_on(&report, &big, "deleted"), back);
    assert_eq!(big.count_job("fill").await, 0, "no stale group left");
    assert_eq!(small.count_job("fill").await, 0);
    assert!(big.has_group(&[("job", "other")]).await);
    assert!(small.has_group(&[("job", "other")]).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_restarted_with_its_persistence_file_is_swept_again_and_reported_restarted() {
    const GROUPS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gw.data");
    let mut gw = persistent_gateway(&file);
    gw.fill("fill", GROUPS, 8).await;
    gw.push(&[("job", "other")], "keep 1\n").await;
    // The gateway writes the file at most every second once something changed: wait (bounded)
    // for a write after the last push, then past one more interval, so the copy has it all.
    let pushed = std::time::SystemTime::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let written = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
        if written.is_some_and(|w| w > pushed) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = dir.path().join("gw.data.before");
    std::fs::copy(&file, &before).unwrap();
    let first_start = gw.start_time().await;
    sleep_past(2.0).await;

    let policy = format!(
        "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
         name: restarts\n  namespace: faults\nspec:\n  static:\n    urls: [\"{}\"]\n  \
         ttl: 2s\n  minTtl: 1s\n  interval: 1s\n  selector: '{{job=\"fill\"}}'\n",
        gw.base_url
    );
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, policy).unwrap();
    let mut cmd = janitor();
    cmd.args(["run", "--policies", policy_file.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--min-ttl", "1s", "--log-format", "json"]);
    let running = Proc::spawn("pushgateway-janitor run", cmd, &dir.path().join("run.log"));

    wait_until(
        "the first sweep",
        Duration::from_secs(30),
        &running,
        || async { gw.count_job("fill").await == 0 },
    )
    .await;
    // Restarted with the file from before the deletes: every deleted group is back.
    std::fs::copy(&before, &file).unwrap();
    gw.restart();
    assert_ne!(
        gw.start_time().await,
        first_start,
        "a restart changes start_time"
    );
    assert_eq!(
        gw.count_job("fill").await,
        GROUPS,
        "the old file brings them back"
    );

    wait_until(
        "the sweep after the restart",
        Duration::from_secs(30),
        &running,
        || async { gw.count_job("fill").await == 0 },
    )
    .await;
    wait_until(
        "the restart in the log",
        Duration::from_secs(10),
        &running,
        || async {
            running.log_text().lines().any(|l| {
                l.contains("replica restarted since the last sweep") && l.contains(&gw.base_url)
            })
        },
    )
    .await;
    assert!(gw.has_group(&[("job", "other")]).await);
}
