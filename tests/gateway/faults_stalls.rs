//! Replicas that stop answering or answer slowly, with real programs (issue #11): a real gateway
//! stopped with SIGSTOP while the janitor is connected to it (its port stays open, nothing
//! answers), and real gateways behind a real nginx that throttles their answers (`limit_rate`).
//! Each is bounded by `--request-timeout`, reported, and the other replicas are still handled.
//! What the gateways hold afterwards is checked on every replica.

use crate::common;

use std::time::{Duration, Instant};

use common::{janitor, run_bounded, sleep_past, GatewayOpts, TestGateway, TestNginx};
use serde_json::Value;

/// A one-shot sweep of the `fill` job (2s TTL), bounded in time; exit code and report.
fn sweep(urls: &[&str], timeout: &str) -> std::process::Command {
    let mut cmd = janitor();
    cmd.arg("sweep");
    for url in urls {
        cmd.args(["--gateway", url]);
    }
    cmd.args([
        "--ttl",
        "2s",
        "--min-ttl",
        "1s",
        "--selector",
        r#"{job="fill"}"#,
    ])
    .args(["--request-timeout", timeout, "--confirm-timeout", "10s"])
    .args(["--delete-rate", "1000", "--output", "json"]);
    cmd
}

fn parse(out: &std::process::Output) -> (i32, Value) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn replica<'a>(report: &'a Value, url: &str) -> &'a Value {
    report["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .find(|r| r["url"].as_str() == Some(url))
        .unwrap_or_else(|| panic!("no replica {url} in {report:#}"))
}

fn deleted_on(report: &Value, url: &str) -> usize {
    report["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["gateway"].as_str() == Some(url) && a["outcome"] == "deleted")
        .count()
}

fn assert_timed_out(replica: &Value) {
    assert_eq!(replica["state"], "failed", "{replica:#}");
    assert!(
        replica["groups"].is_null(),
        "unread, so unknown: {replica:#}"
    );
    let error = replica["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("no answer within"),
        "the error says it timed out: {replica:#}"
    );
}

/// Established TCP connections whose local port is `port` (IPv4 loopback), from /proc/net/tcp:
/// how many clients the replica is serving right now.
fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 3 && cols[1].ends_with(&local) && cols[3] == "01"
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_stopped_while_the_janitor_reads_it_is_bounded_by_the_timeout_and_the_rest_swept()
{
    // Big enough that producing its answer takes the gateway a while.
    const BIG: usize = 10_000;
    let fast_fill = GatewayOpts {
        extra_args: vec!["--push.disable-consistency-check".into()],
        ..Default::default()
    };
    let stopped = TestGateway::start(fast_fill.clone());
    let other = TestGateway::start(fast_fill);
    stopped.fill("fill", BIG, 32).await;
    other.fill("fill", 50, 8).await;
    sleep_past(2.0).await;

    let idle = connections_to(stopped.port);
    let cmd = sweep(&[&stopped.base_url, &other.base_url], "3s");
    let run = tokio::task::spawn_blocking(move || run_bounded(cmd, Duration::from_secs(90)));
    // Stop it the moment the janitor is connected (its status call or its read).
    let deadline = Instant::now() + Duration::from_secs(30);
    while connections_to(stopped.port) <= idle {
        assert!(
            Instant::now() < deadline && !run.is_finished(),
            "the janitor never connected to the replica"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stopped.signal("STOP");
    let out = run.await.unwrap();
    stopped.signal("CONT");
    let (code, report) = parse(&out);

    assert_eq!(code, 1, "{report:#}");
    assert_timed_out(replica(&report, &stopped.base_url));
    assert_eq!(deleted_on(&report, &stopped.base_url), 0);
    assert_eq!(replica(&report, &other.base_url)["state"], "ok");
    assert_eq!(deleted_on(&report, &other.base_url), 50);
    assert_eq!(other.count_job("fill").await, 0);
    // Nothing was decided for the stopped replica, so nothing of it went.
    assert_eq!(stopped.count_job("fill").await, BIG);
}

/// nginx in front of `gw`, sending its answers at `rate` (nginx `limit_rate`).
fn throttled(gw: &TestGateway, rate: &str) -> TestNginx {
    TestNginx::start(
        "",
        &format!(
            "location / {{ proxy_pass http://{}; limit_rate {rate}; }}",
            gw.address()
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_slower_than_the_timeout_is_reported_and_one_slow_within_it_is_swept() {
    let fast_fill = GatewayOpts {
        extra_args: vec!["--push.disable-consistency-check".into()],
        ..Default::default()
    };
    let too_slow = TestGateway::start(fast_fill.clone());
    let slow = TestGateway::start(fast_fill.clone());
    let direct = TestGateway::start(fast_fill);
    // ~200 groups are tens of kilobytes of JSON: far over 3 s at 1 KiB/s.
    too_slow.fill("fill", 200, 8).await;
    // A few groups at 64 KiB/s: slow, but well inside 3 s.
    slow.fill("fill", 5, 4).await;
    direct.fill("fill", 20, 4).await;
    let too_slow_proxy = throttled(&too_slow, "1k");
    let slow_proxy = throttled(&slow, "64k");
    let too_slow_url = format!("{}/", too_slow_proxy.url);
    let slow_url = format!("{}/", slow_proxy.url);
    sleep_past(2.0).await;

    let out = run_bounded(
        sweep(&[&too_slow_url, &slow_url, &direct.base_url], "3s"),
        Duration::from_secs(90),
    );
    let (code, report) = parse(&out);

    assert_eq!(code, 1, "{report:#}");
    assert_timed_out(replica(&report, &too_slow_url));
    assert_eq!(too_slow.count_job("fill").await, 200, "nothing went there");
    assert_eq!(replica(&report, &slow_url)["state"], "ok", "{report:#}");
    assert_eq!(deleted_on(&report, &slow_url), 5);
    assert_eq!(slow.count_job("fill").await, 0);
    assert_eq!(deleted_on(&report, &direct.base_url), 20);
    assert_eq!(direct.count_job("fill").await, 0);
    // The deletes really went through the slow proxy.
    assert!(
        slow_proxy
            .access_log()
            .contains("DELETE /metrics/job@base64/"),
        "{}",
        slow_proxy.access_log()
    );
}
