//! Long work shows progress: logged at a steady interval (done, total, rate, time left) when
//! stderr is no terminal, a bar on stderr when it is one (a real pseudo-terminal, through
//! util-linux's `script`), never mixed into the report on stdout, and nothing with `--quiet`.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{janitor, run_bounded, sleep_past, GatewayOpts, TestGateway};
use serde_json::Value;

const GROUPS: usize = 300;

/// A replica with [`GROUPS`] groups old enough to expire under `--ttl 1s`.
async fn replica_to_clean() -> TestGateway {
    let gw = TestGateway::start(GatewayOpts {
        // Filling only: the consistency check makes each push look at every other group.
        extra_args: vec!["--push.disable-consistency-check".into()],
        ..Default::default()
    });
    for i in 0..GROUPS {
        gw.push(&[("job", "batch"), ("n", &i.to_string())], "x 1\n")
            .await;
    }
    sleep_past(1.0).await;
    gw
}

/// At 100 deletes a second, 300 deletes take three seconds at least: long enough for several
/// progress reports every half second.
fn sweep_args(gw: &TestGateway) -> Vec<String> {
    [
        "sweep",
        "--gateway",
        &gw.base_url,
        "--ttl",
        "1s",
        "--min-ttl",
        "1s",
        "--delete-rate",
        "100",
        "--progress-interval",
        "500ms",
        "--output",
        "json",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test]
async fn progress_is_logged_at_a_steady_interval_when_stderr_is_no_terminal() {
    let gw = replica_to_clean().await;
    let mut cmd = janitor();
    cmd.args(sweep_args(&gw)).args(["--log-format", "json"]);
    let out = run_bounded(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    assert_eq!(report["summary"]["deleted"], GROUPS);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "pgw_janitor::progress" && l["task"] == "delete")
        .collect();
    // 300 deletes at 100 a second take three seconds: several reports every half second.
    assert!(lines.len() >= 2, "fewer than two progress lines: {lines:?}");
    let at: Vec<jiff::Timestamp> = lines
        .iter()
        .map(|l| l["timestamp"].as_str().expect("timestamp").parse().unwrap())
        .collect();
    for pair in at.windows(2) {
        let gap = pair[1].duration_since(pair[0]).as_secs_f64();
        // Never more often than the interval (a little slack for the timer's rounding).
        assert!(
            gap >= 0.45,
            "progress lines {gap}s apart, interval 0.5s: {lines:?}"
        );
    }
    let done: Vec<u64> = lines.iter().map(|l| l["done"].as_u64().unwrap()).collect();
    assert!(
        done.windows(2).all(|d| d[0] <= d[1]),
        "done went back: {done:?}"
    );
    for l in &lines {
        assert_eq!(l["total"], GROUPS, "{l}");
        let done = l["done"].as_u64().unwrap();
        assert!(done <= GROUPS as u64, "{l}");
        assert!(l["rate"].as_f64().is_some(), "{l}");
        assert_eq!(l["unit"], "groups", "{l}");
    }
    assert!(
        lines.iter().any(|l| l["eta_seconds"].as_f64().is_some()),
        "time left: {lines:?}"
    );
    assert!(gw.groups().await.is_empty());
}

/// Runs the janitor on a pseudo-terminal with stdout redirected to `report`; returns what the
/// terminal showed.
fn on_a_terminal(args: &[String], report: &std::path::Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let typescript = dir.path().join("typescript");
    let quoted: Vec<String> =
        std::iter::once(env!("CARGO_BIN_EXE_pushgateway-janitor").to_string())
            .chain(args.iter().cloned())
            .map(|a| format!("'{a}'"))
            .collect();
    let shell = format!("{} > '{}'", quoted.join(" "), report.display());
    let mut cmd = Command::new("script");
    cmd.args(["--quiet", "--return", "--flush", "--command", &shell])
        .arg(&typescript)
        .env("TERM", "xterm");
    let out = run_bounded(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).to_string()
}

#[tokio::test]
async fn on_a_terminal_a_bar_shows_on_stderr_and_never_in_the_report_and_quiet_hides_it() {
    let gw = replica_to_clean().await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let screen = on_a_terminal(&sweep_args(&gw), &report_path);
    assert!(
        screen.contains("delete (groups)") && screen.contains(&format!("/{GROUPS}")),
        "no bar on the terminal:\n{screen}"
    );
    assert!(
        !screen.contains("\"target\":\"pgw_janitor::progress\"") && !screen.contains(" progress "),
        "the bar replaces the progress lines:\n{screen}"
    );
    let report = std::fs::read_to_string(&report_path).unwrap();
    assert!(
        !report.contains('\u{1b}'),
        "no terminal codes in the report"
    );
    let report: Value = serde_json::from_str(&report).expect("the report is JSON");
    assert_eq!(report["summary"]["deleted"], GROUPS);

    let gw = replica_to_clean().await;
    let mut args = sweep_args(&gw);
    args.push("--quiet".into());
    let screen = on_a_terminal(&args, &report_path);
    assert!(!screen.contains("delete (groups)"), "--quiet:\n{screen}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["summary"]["deleted"], GROUPS);
}
