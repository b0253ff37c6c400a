//! Sweeps through the light read (`GET /metrics`) against a real gateway (1.5.1, or the binary
//! `PGW_JANITOR_TEST_PUSHGATEWAY` names), every request seen by a real nginx in front of it:
//! - a key whose instance `/metrics` cannot tell (absent, or `instance=""`) is deleted as the
//!   first, and as its twin only when the same copy stays; no other group is ever addressed;
//! - a poisoned replica is planned from the JSON API (`/metrics` answers 500), and its phantom's
//!   delete is confirmed by a JSON re-read once `/metrics` answers again and can only say "it,
//!   or its twin".

use crate::common;

use std::time::Duration;

use common::{janitor, key, run_bounded, sleep_past, GatewayOpts, TestGateway, TestNginx};
use serde_json::Value;

/// A sweep of `base` with `ttl`; its JSON report, and the reads it made (`metrics`
/// or `json`, from its debug log).
fn sweep(base: &str, ttl: &str) -> (i32, Value, Vec<String>, String) {
    let mut cmd = janitor();
    cmd.args(["sweep", "--gateway", base, "--ttl", ttl, "--min-ttl", "1s"])
        .args([
            "--confirm-timeout",
            "10s",
            "--output",
            "json",
            "--log-format",
            "json",
        ])
        .args(["--log-level", "error,pushgateway_janitor::engine=debug"])
        .env_remove("PGW_JANITOR_READ");
    let out = run_bounded(cmd, Duration::from_secs(60));
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let reads = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["message"] == "replica read")
        .map(|e| e["read"].as_str().unwrap_or_default().to_string())
        .collect();
    (out.status.code().unwrap_or(-1), report, reads, stderr)
}

/// nginx in front of `gw`, logging every request.
fn front_of(gw: &TestGateway) -> (TestNginx, String) {
    let front = TestNginx::start(
        "",
        &format!("location / {{ proxy_pass http://{}; }}", gw.address()),
    );
    let base = format!("{}/", front.url);
    (front, base)
}

/// The requests nginx proxied, `METHOD PATH` without the query, in order.
fn proxied(front: &TestNginx) -> Vec<String> {
    front
        .access_log()
        .lines()
        .filter_map(|l| l.split('"').nth(1))
        .filter_map(|req| {
            let mut parts = req.split(' ');
            Some(format!(
                "{} {}",
                parts.next()?,
                parts.next()?.split('?').next()?
            ))
        })
        .collect()
}

#[tokio::test]
async fn an_unsure_instance_is_deleted_as_either_twin_and_no_third_group_is_touched() {
    let gw = TestGateway::start(GatewayOpts::default());
    let (front, base) = front_of(&gw);
    // Old: one group without instance, one with `instance=""`; beside each, a group that a
    // careless delete could hit, kept fresh.
    gw.push(&[("job", "a")], "x 1\n").await;
    gw.push(&[("job", "b"), ("instance", "")], "x 1\n").await;
    sleep_past(2.0).await;
    gw.push(&[("job", "a"), ("instance", "x")], "x 1\n").await;
    gw.push(&[("job", "b"), ("zone", "")], "x 1\n").await;

    let (code, report, reads, stderr) = sweep(&base, "2s");
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(report["summary"]["deleted"], 2, "{report:#}");
    assert!(reads.iter().all(|r| r == "metrics"), "{reads:?}");
    let mut left = gw.groups().await;
    left.sort();
    let mut fresh = vec![
        key(&[("job", "a"), ("instance", "x")]),
        key(&[("job", "b"), ("zone", "")]),
    ];
    fresh.sort();
    assert_eq!(left, fresh);

    // Exactly these DELETEs: each key as read, and `b`'s twin once `b` stayed.
    let deletes: Vec<String> = proxied(&front)
        .into_iter()
        .filter(|r| r.starts_with("DELETE "))
        .collect();
    let (a, b) = (
        "DELETE /metrics/job@base64/YQ",
        "DELETE /metrics/job@base64/Yg",
    );
    let b_twin = "DELETE /metrics/job@base64/Yg/instance@base64/=";
    let mut sorted = deletes.clone();
    sorted.sort();
    assert_eq!(sorted, [a, b, b_twin], "{deletes:?}");
    let at = |r: &str| deletes.iter().position(|d| d == r).unwrap();
    assert!(at(b) < at(b_twin), "the twin goes second: {deletes:?}");
}

#[tokio::test]
async fn a_poisoned_replica_is_planned_from_json_and_its_phantom_confirmed_by_a_json_re_read() {
    let gw = TestGateway::start(GatewayOpts::default());
    let (front, base) = front_of(&gw);
    gw.poison("a").await;
    let (code, report, reads, stderr) = sweep(&base, "1h");
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    let actions = report["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{report:#}");
    assert_eq!(
        actions[0]["labels"],
        serde_json::json!({"job": "a", "instance": ""})
    );
    assert_eq!(actions[0]["outcome"], "deleted", "{report:#}");
    assert!(gw.has_group(&[("job", "a")]).await, "the real group stays");
    // The plan's read fell back to the JSON API. A confirming read from `/metrics` (once the
    // phantom is gone, it answers again) can only say "it, or its twin": a JSON read follows it.
    // (Were the delete applied between a 500 from `/metrics` and the fallback, a JSON read alone
    // would confirm it.)
    eprintln!("reads: {reads:?}");
    assert_eq!(reads.first().map(String::as_str), Some("json"), "{reads:?}");
    assert_eq!(reads.last().map(String::as_str), Some("json"), "{reads:?}");
    let requests = proxied(&front);
    let deletes: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("DELETE "))
        .collect();
    assert_eq!(
        deletes,
        ["DELETE /metrics/job@base64/YQ/instance@base64/="],
        "only the phantom: {requests:?}"
    );
}
