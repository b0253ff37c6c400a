//! Who deleted my metrics: every DELETE the janitor sends is one structured log line at the
//! default level (policy, replica, grouping key, reason, age, outcome), read here from real sweeps
//! in JSON log format; and an idle loop writes no info line per sweep.

use crate::common;

use std::time::{Duration, Instant};

use common::process::Proc;
use common::{free_port, janitor, key, run_bounded, sleep_past, GatewayOpts, TestGateway};
use serde_json::Value;

fn policy(namespace: &str, name: &str, gw: &TestGateway, ttl: &str, extra: &str) -> String {
    format!(
        "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
         name: {name}\n  namespace: {namespace}\nspec:\n  static:\n    urls: [\"{}\"]\n  \
         ttl: {ttl}\n  minTtl: 1s\n{extra}",
        gw.base_url
    )
}

/// The JSON log lines of `stderr`; a line that is not JSON fails the test.
fn log_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_delete_sent_is_one_info_line_with_policy_replica_key_reason_age_and_outcome() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "nightly"), ("instance", "a/b c")], "x 1\n")
        .await;
    gw.push(&[("job", "ci")], "x 1\n").await;
    sleep_past(2.0).await;
    gw.push(&[("job", "fresh")], "x 1\n").await;
    // A phantom left by a failed push: deleted at once, as poison; the group it collides with
    // is fresh and stays.
    gw.poison("phantom").await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        policy("team", "sweeper", &gw, "2s", ""),
    )
    .unwrap();
    let mut cmd = janitor();
    cmd.args(["run", "--policies", dir.path().to_str().unwrap()])
        .args(["--once", "--min-ttl", "1s", "--output", "json"])
        .args(["--log-format", "json"]);
    let out = run_bounded(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let deletes: Vec<Value> = log_lines(&stderr)
        .into_iter()
        .filter(|l| l["message"] == "group delete")
        .collect();
    let mut groups: Vec<&str> = deletes
        .iter()
        .map(|l| l["group"].as_str().unwrap())
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [
            r#"{instance="", job="phantom"}"#,
            r#"{instance="a/b c", job="nightly"}"#,
            r#"{job="ci"}"#,
        ],
        "{stderr}"
    );
    for line in &deletes {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["policy"], "team/sweeper", "{line}");
        assert_eq!(
            line["replica"].as_str().unwrap().trim_end_matches('/'),
            gw.base_url.trim_end_matches('/'),
            "{line}"
        );
        assert_eq!(line["outcome"], "deleted", "{line}");
        let reason = line["reason"].as_str().unwrap();
        match line["group"].as_str().unwrap() {
            r#"{instance="", job="phantom"}"# => assert_eq!(reason, "poison", "{line}"),
            _ => {
                assert_eq!(reason, "expired", "{line}");
                assert!(line["age_seconds"].as_f64().unwrap() >= 2.0, "{line}");
            }
        }
    }
    // The lines match what happened on the gateway and in the report.
    let mut left = gw.groups().await;
    left.sort();
    assert_eq!(
        left,
        vec![key(&[("job", "fresh")]), key(&[("job", "phantom")])],
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report[0]["report"]["summary"]["deleted"],
        deletes.len(),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_loop_writes_no_info_line_per_sweep() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "fresh")], "x 1\n").await;
    let dir = tempfile::tempdir().unwrap();
    for name in ["quiet-a", "quiet-b"] {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            policy("idle", name, &gw, "1h", "  interval: 1s\n"),
        )
        .unwrap();
    }
    let listen = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("run.log");
    let mut cmd = janitor();
    cmd.args(["run", "--policies", dir.path().to_str().unwrap()])
        .args([
            "--listen",
            &listen,
            "--min-ttl",
            "1s",
            "--log-format",
            "json",
        ]);
    // Its stdout and stderr share the log: the loop writes nothing but JSON log lines.
    let running = Proc::spawn("pushgateway-janitor run", cmd, &log);

    // Wait (bounded) until each policy has swept at least three times, by its own metric.
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let sweeps = |text: &str, name: &str| -> u64 {
        let prefix =
            format!(r#"pgw_janitor_sweeps_total{{namespace="idle",policy="{name}",result="ok"}} "#);
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let swept = loop {
        let text = match http.get(format!("http://{listen}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let (a, b) = (sweeps(&text, "quiet-a"), sweeps(&text, "quiet-b"));
        if a >= 3 && b >= 3 {
            break a + b;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 3 sweeps each within 30s:\n{text}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop(running);

    let text = std::fs::read_to_string(&log).unwrap();
    let loud: Vec<Value> = log_lines(&text)
        .into_iter()
        .filter(|l| l["level"] == "INFO" || l["level"] == "WARN" || l["level"] == "ERROR")
        .collect();
    // No line about a policy's sweep; what is left is what the process says once, at start
    // (serving, policies loaded): fewer lines than sweeps, whatever their wording.
    let about_a_policy: Vec<&Value> = loud.iter().filter(|l| !l["policy"].is_null()).collect();
    assert!(
        about_a_policy.is_empty(),
        "idle sweeps logged at info or above: {about_a_policy:?}"
    );
    assert!(
        (loud.len() as u64) < swept && loud.len() <= 3,
        "{} lines at info or above for {swept} sweeps: {loud:?}",
        loud.len()
    );
    assert!(gw.has_group(&[("job", "fresh")]).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_from_the_command_line_logs_its_deletes_as_policy_cli_and_a_dry_run_none() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let sweep = |extra: &[&str]| {
        let mut cmd = janitor();
        cmd.args([
            "sweep",
            "--gateway",
            &gw.base_url,
            "--ttl",
            "2s",
            "--min-ttl",
            "1s",
        ])
        .args(["--log-format", "json"])
        .args(extra);
        let out = run_bounded(cmd, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        log_lines(&stderr)
            .into_iter()
            .filter(|l| l["message"] == "group delete")
            .collect::<Vec<Value>>()
    };
    assert!(
        sweep(&["--dry-run"]).is_empty(),
        "a dry run sends no DELETE"
    );
    let lines = sweep(&[]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["policy"], "cli");
    assert_eq!(lines[0]["group"], r#"{job="old"}"#);
    assert_eq!(lines[0]["outcome"], "deleted");
    assert!(!gw.has_group(&[("job", "old")]).await);
}
