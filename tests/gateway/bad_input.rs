//! Bad input and bad remotes: a mistake the user makes is refused with exit code 2 before anything
//! is touched; a replica answering garbage, a truncated body or nothing at all is reported as
//! failed and the others are still swept; a janitor that cannot start exits 4.

use crate::common;

use std::time::Duration;

use common::{janitor, sleep_past, Fault, FaultServer, GatewayOpts, TestGateway};
use serde_json::Value;

/// Runs `sweep` with `args` against `gw` and returns the exit code and stderr.
fn refused(gw: &TestGateway, args: &[&str]) -> (i32, String) {
    let mut cmd = janitor();
    cmd.arg("sweep")
        .args(["--gateway", &gw.base_url])
        .args(args);
    let out = common::run_bounded(cmd, Duration::from_secs(60));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn bad_flags_are_refused_with_exit_2_before_anything_is_touched() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(1.5).await;
    let cases: &[(&[&str], &str)] = &[
        (&["--ttl", "7x"], "7x"),
        (&["--ttl", "1s", "--min-ttl", "1m"], "floor"),
        (
            &[
                "--ttl",
                "1s",
                "--min-ttl",
                "1s",
                "--selector",
                r#"{job=~"("}"#,
            ],
            "job",
        ),
        (
            &["--ttl", "1s", "--min-ttl", "1s", "--selector", "{job=}"],
            "selector",
        ),
        (
            &["--ttl", "1s", "--min-ttl", "1s", "--gateway", "not a url"],
            "not a url",
        ),
        (
            &[
                "--ttl",
                "1s",
                "--min-ttl",
                "1s",
                "--max-deletions-percent",
                "150",
            ],
            "percent",
        ),
        (
            &[
                "--ttl",
                "1s",
                "--min-ttl",
                "1s",
                "--no-superseded",
                "--superseded-grace",
                "5m",
            ],
            "superseded",
        ),
        (
            &["--ttl", "1s", "--min-ttl", "1s", "--only-if-all-stale"],
            "wipe",
        ),
        (&["--action", "wipe", "--ttl", "1h"], "--ttl"),
        (&["--min-ttl", "1s"], "--ttl"),
        (
            &[
                "--ttl",
                "1s",
                "--min-ttl",
                "1s",
                "--prometheus",
                "http://127.0.0.1:1",
            ],
            "--prometheus",
        ),
        (
            &[
                "--ttl",
                "1s",
                "--min-ttl",
                "1s",
                "--gateway-password-file",
                "/nonexistent",
            ],
            "--gateway",
        ),
        // A credential file that is not there: the user's input, named by its flag.
        (
            &[
                "--ttl",
                "1s",
                "--min-ttl",
                "1s",
                "--gateway-bearer-token-file",
                "/nonexistent/token",
            ],
            "--gateway-bearer-token-file: cannot read /nonexistent/token",
        ),
    ];
    for (args, needle) in cases {
        let (code, stderr) = refused(&gw, args);
        assert_eq!(code, 2, "{args:?} is refused with exit 2: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: the error names {needle:?}: {stderr}"
        );
    }
    assert_eq!(
        gw.groups().await.len(),
        1,
        "nothing was deleted by a refused run"
    );
}

/// A sweep with a short request timeout, for replicas that hang.
fn sweep_json(args: &[&str]) -> (i32, Value) {
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--request-timeout", "3s"])
        .collect();
    let (code, report, _) = common::sweep_json(&args);
    (code, report)
}

#[tokio::test]
async fn garbage_truncated_and_hanging_replicas_fail_alone() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    // Mocks only for faults a real gateway cannot produce.
    let garbage = FaultServer::start(Fault::Garbage);
    let truncated = FaultServer::start(Fault::Truncated);
    let hang = FaultServer::start(Fault::HangMidBody);
    let silent = FaultServer::start(Fault::HangBeforeHeaders);
    sleep_past(1.5).await;
    let (code, report) = sweep_json(&[
        "--gateway",
        &gw.base_url,
        "--gateway",
        &garbage.base_url,
        "--gateway",
        &truncated.base_url,
        "--gateway",
        &hang.base_url,
        "--gateway",
        &silent.base_url,
        "--ttl",
        "1s",
    ]);
    assert_eq!(code, 1, "{report:#}");
    assert!(
        gw.groups().await.is_empty(),
        "the real replica was still swept"
    );
    let replicas = report["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 5);
    for fault in [&garbage, &truncated, &hang, &silent] {
        let r = replicas
            .iter()
            .find(|r| r["url"] == fault.base_url.as_str())
            .unwrap();
        assert_eq!(r["state"], "failed", "{r}");
        assert!(
            r["groups"].is_null(),
            "a failed replica is never counted as empty: {r}"
        );
        assert!(!r["error"].as_str().unwrap().is_empty());
    }
    assert_eq!(report["summary"]["replicas_failed"], 4);
}

/// The janitor's own start-up failure is neither the user's input (2) nor a remote's (1): `run`
/// that cannot listen on its address exits 4 and says why, having swept nothing.
#[tokio::test]
async fn a_janitor_that_cannot_listen_exits_4_and_touches_nothing() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(1.5).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
             name: p\nspec:\n  static:\n    urls: [\"{}\"]\n  ttl: 1s\n  minTtl: 1s\n",
            gw.base_url
        ),
    )
    .unwrap();
    // Held for the whole run: the janitor's bind must fail.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut cmd = janitor();
    cmd.args(["run", "--policies", policy.to_str().unwrap()])
        .args(["--min-ttl", "1s", "--listen", &addr]);
    let out = common::run_bounded(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")) && stderr.contains("in use"),
        "{stderr}"
    );
    assert_eq!(gw.groups().await.len(), 1, "nothing was swept");
}
