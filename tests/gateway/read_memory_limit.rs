//! The light read proven under a memory limit, on a real gateway (`PGW_JANITOR_TEST_PUSHGATEWAY`,
//! Debian's 1.5.1 by default): filled with groups, moved into a cgroup v1 memory cgroup whose
//! limit is 1.4x its resting RSS, then swept. The sweep through `/metrics` deletes the stale
//! groups and leaves the gateway alive; the same sweep with the JSON read forced
//! (`PGW_JANITOR_READ=json`) gets the gateway OOM-killed, shown here too, so the test cannot pass
//! because the limit was loose or the store too small.
//!
//! Needs root and the cgroup v1 memory controller (`/sys/fs/cgroup/memory`); it fails, never
//! skips, without them. The cgroup is removed however the test ends.

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::run::run_bounded;
use common::{janitor, sleep_past, GatewayOpts, TestGateway};
use futures::{stream, StreamExt};
use serde_json::Value;

/// Groups to fill: each holds 11 series (a gauge family of 10 and a histogram), like the read
/// benchmark's, so the JSON answer is built from 330 000 series.
const GROUPS: usize = 30_000;
const STALE: usize = 5;
const LIMIT_FACTOR: f64 = 1.4;
const MEMORY_CGROUPS: &str = "/sys/fs/cgroup/memory";

/// A memory cgroup of its own; dropping it moves whatever still runs in it back to the root
/// cgroup and removes it.
struct MemoryCgroup {
    dir: PathBuf,
}

impl MemoryCgroup {
    /// A fresh cgroup, not limited yet. Memory a process took before it moved in stays charged
    /// where it was (this kernel refuses `memory.move_charge_at_immigrate`), so the gateway moves
    /// in right after its start, before it holds anything.
    fn new() -> MemoryCgroup {
        let root = PathBuf::from(MEMORY_CGROUPS);
        assert!(
            root.join("memory.limit_in_bytes").exists(),
            "this test needs the cgroup v1 memory controller at {MEMORY_CGROUPS}"
        );
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = root.join(format!(
            "pgw-janitor-read-limit-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        MemoryCgroup { dir }
    }

    fn write(&self, file: &str, value: &str) {
        let path = self.dir.join(file);
        std::fs::write(&path, value)
            .unwrap_or_else(|e| panic!("cannot write {value:?} to {}: {e}", path.display()));
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    fn counter(&self, file: &str) -> u64 {
        self.read(file).trim().parse().unwrap_or(0)
    }

    /// `oom_kill N` from `memory.oom_control`: processes the kernel killed in this cgroup.
    fn oom_kills(&self) -> u64 {
        self.read("memory.oom_control")
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            let _ = std::fs::write(PathBuf::from(MEMORY_CGROUPS).join("cgroup.procs"), pid);
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            eprintln!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// Whether the process runs (not gone, not a zombie waiting to be reaped).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit(')')
                .next()
                .map(|rest| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// The body every big group gets: 10 gauges and a histogram, as a batch job would push them.
fn group_body() -> String {
    let mut body = String::from("# TYPE bench_rows gauge\n");
    for s in 0..10 {
        body.push_str(&format!(
            "bench_rows{{table=\"t{s}\",stage=\"load\"}} {}\n",
            s * 1000 + 7
        ));
    }
    body.push_str("# TYPE bench_seconds histogram\n");
    for le in ["0.1", "1", "10", "+Inf"] {
        body.push_str(&format!("bench_seconds_bucket{{le=\"{le}\"}} 3\n"));
    }
    body.push_str("bench_seconds_sum 4.2\nbench_seconds_count 3\n");
    body
}

/// Pushes `{job="fill", instance="i-N"}` for N in `range`, 64 at a time; panics on a failure.
async fn fill(gw: &TestGateway, range: std::ops::Range<usize>) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let body = group_body();
    let failed = stream::iter(range)
        .map(|i| {
            let req = http
                .put(gw.url(&format!("metrics/job/fill/instance/i-{i}")))
                .body(body.clone())
                .send();
            async move { req.await.map(|r| r.status().is_success()).unwrap_or(false) }
        })
        .buffer_unordered(64)
        .filter(|ok| futures::future::ready(!ok))
        .count()
        .await;
    assert_eq!(failed, 0, "pushes failed");
}

/// How many groups `/metrics` shows (its `push_time_seconds` lines), `None` when it does not
/// answer 200.
async fn groups_shown(gw: &TestGateway) -> Option<usize> {
    let response = reqwest::get(gw.url("metrics")).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let text = response.text().await.ok()?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("push_time_seconds{"))
            .count(),
    )
}

/// One sweep deleting `job="stale"` groups older than 2 s, its debug log in JSON; bounded.
fn sweep(gw: &TestGateway, force_json: bool) -> (i32, Value, String) {
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
    .args(["--selector", r#"{job="stale"}"#, "--output", "json"])
    .args(["--request-timeout", "60s", "--confirm-timeout", "20s"])
    .args([
        "--log-format",
        "json",
        "--log-level",
        "error,pushgateway_janitor::engine=debug",
    ]);
    if force_json {
        cmd.env("PGW_JANITOR_READ", "json");
    } else {
        cmd.env_remove("PGW_JANITOR_READ");
    }
    let out = run_bounded(cmd, Duration::from_secs(90));
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// Which reads the janitor's debug log says it made (`metrics` or `json`).
fn reads_made(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["fields"]["message"] == "replica read" || e["message"] == "replica read")
        .filter_map(|e| {
            let read = e["fields"]["read"].as_str().or(e["read"].as_str())?;
            Some(read.to_string())
        })
        .collect()
}

async fn push_stale(gw: &TestGateway, round: usize) {
    for i in 0..STALE {
        gw.push(
            &[("job", "stale"), ("instance", &format!("s{round}-{i}"))],
            "x 1\n",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_light_read_sweeps_a_gateway_the_json_read_would_kill() {
    let _heavy = common::heavy().await;
    let started = Instant::now();
    let mut gw = TestGateway::start(GatewayOpts {
        // Filling is quadratic with the check (every push is compared with the whole store);
        // reading does not depend on it.
        extra_args: vec!["--push.disable-consistency-check".into()],
        ..Default::default()
    });
    let pid = gw.pid().expect("gateway pid");
    let cgroup = MemoryCgroup::new();
    cgroup.write("cgroup.procs", &pid.to_string());
    push_stale(&gw, 0).await;
    fill(&gw, 0..GROUPS).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while groups_shown(&gw).await != Some(GROUPS + STALE) {
        assert!(
            Instant::now() < deadline,
            "the gateway never showed every group"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sleep_past(2.0).await;
    let rest = rss_bytes(pid);
    let charged = cgroup.counter("memory.usage_in_bytes");
    assert!(
        charged * 10 >= rest * 9,
        "the gateway's memory is not charged to the cgroup: {charged} of {rest} bytes"
    );
    // 1.4x the resting RSS for the whole process: what the cgroup holds (all of it but the few
    // MiB the gateway took before it moved in), plus 0.4x the RSS.
    let limit = charged + ((LIMIT_FACTOR - 1.0) * rest as f64) as u64;
    cgroup.write("memory.limit_in_bytes", &limit.to_string());
    cgroup.write("memory.max_usage_in_bytes", "0");
    eprintln!(
        "filled in {:.1}s: {GROUPS} groups, resting RSS {} MiB, charged {} MiB, limit {} MiB",
        started.elapsed().as_secs_f64(),
        rest >> 20,
        charged >> 20,
        limit >> 20
    );

    // The light read: the gateway lives, and the stale groups go.
    let (code, report, stderr) = sweep(&gw, false);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(report["summary"]["deleted"], STALE, "{report:#}");
    let reads = reads_made(&stderr);
    assert!(
        !reads.is_empty() && reads.iter().all(|r| r == "metrics"),
        "reads made: {reads:?}\n{stderr}"
    );
    assert!(alive(pid), "the gateway survived the light sweep");
    assert_eq!(cgroup.oom_kills(), 0);
    let peak = cgroup.counter("memory.max_usage_in_bytes");
    eprintln!(
        "light sweep: the gateway's peak charge {} MiB, {:.2}x the charge at rest",
        peak >> 20,
        peak as f64 / charged as f64
    );
    assert_eq!(
        groups_shown(&gw).await,
        Some(GROUPS),
        "every fresh group stays"
    );

    // The same sweep reading the JSON API: the answer the gateway builds does not fit.
    push_stale(&gw, 1).await;
    sleep_past(2.0).await;
    let (code, report, stderr) = sweep(&gw, true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !alive(pid),
        "the gateway survived the JSON read: the limit does not prove anything\n{report:#}"
    );
    assert!(
        cgroup.oom_kills() >= 1,
        "{}",
        cgroup.read("memory.oom_control")
    );
    assert_ne!(code, 0, "the replica failed: {stderr}");
    let reads = reads_made(&stderr);
    assert!(reads.iter().all(|r| r == "json"), "reads made: {reads:?}");
    eprintln!(
        "JSON sweep: the gateway was OOM-killed ({} kill(s)); {:.1}s in all",
        cgroup.oom_kills(),
        started.elapsed().as_secs_f64()
    );
    gw.stop();
    drop(cgroup);
}
