//! `pushgateway-janitor run --policies`: the policy files users `kubectl apply`, enforced without a
//! cluster, against real Pushgateway replicas and a real Prometheus.
//!
//! Every wait is bounded; the `run` child is killed through its own handle if a test fails.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, janitor, sleep_past, GatewayOpts, TestGateway, TestNginx, TestPrometheus};
use serde_json::Value;

/// Longest a `--once` run may take: a few sweeps of a local replica.
const ONCE: Duration = Duration::from_secs(60);

/// A policy document with a static source, a 2s TTL and the 1s floor these tests run with.
fn static_policy(namespace: &str, name: &str, gw: &TestGateway, extra: &str) -> String {
    static_policy_at(namespace, name, &gw.base_url, extra)
}

fn static_policy_at(namespace: &str, name: &str, url: &str, extra: &str) -> String {
    format!(
        "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
         name: {name}\n  namespace: {namespace}\nspec:\n  static:\n    urls: [\"{url}\"]\n  \
         ttl: 2s\n  minTtl: 1s\n{extra}"
    )
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write policy file");
    path
}

/// The `run` child, killed (by its handle) and reaped on drop.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for the child to exit on its own.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Output of a `--once` run.
struct Once {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Once {
    fn json(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
            .as_array()
            .expect("a JSON array of policy reports")
            .clone()
    }

    fn report(&self, name: &str) -> Value {
        self.json()
            .into_iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no report for {name}:\n{}", self.stdout))["report"]
            .clone()
    }
}

/// Runs `janitor args`, bounded by [`ONCE`]; output goes to files so no pipe can fill and block.
fn run_once(args: &[&str]) -> Once {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("stdout");
    let err = dir.path().join("stderr");
    let child = janitor()
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn the janitor");
    let mut running = Running {
        child,
        log: err.clone(),
    };
    let status = running
        .wait(ONCE)
        .unwrap_or_else(|| panic!("run --once took over {ONCE:?}:\n{}", running.log()));
    let read = |p: &Path| {
        let mut s = String::new();
        std::fs::File::open(p)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    Once {
        code: status.code().expect("exited, not killed"),
        stdout: read(&out),
        stderr: read(&err),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn once_runs_the_valid_policies_of_a_directory_and_reports_the_others_by_file_and_name() {
    let gw = TestGateway::start(GatewayOpts::default());
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "10-ttl.yaml",
        &static_policy(
            "team-a",
            "short-ttl",
            &gw,
            "  selector: '{job=~\"ttl-.*\"}'\n",
        ),
    );
    let broken = static_policy(
        "team-a",
        "broken-selector",
        &gw,
        "  selector: '{job=~\"(other\"}'\n",
    );
    let service = "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\n\
                   metadata:\n  name: in-cluster-only\nspec:\n  service:\n    name: pushgateway\n  \
                   ttl: 2s\n  minTtl: 1s\n";
    write(
        dir.path(),
        "20-more.yml",
        &format!("{broken}---\n{service}"),
    );
    write(dir.path(), "notes.txt", "not a policy file: ignored");

    gw.push(&[("job", "ttl-old")], "x 1\n").await;
    gw.push(&[("job", "other")], "x 1\n").await;
    sleep_past(2.0).await;
    gw.push(&[("job", "ttl-fresh")], "x 1\n").await;

    let out = run_once(&[
        "run",
        "--policies",
        dir.path().to_str().unwrap(),
        "--once",
        "--min-ttl",
        "1s",
        "--output",
        "json",
    ]);

    assert_eq!(
        out.code, 2,
        "the valid policy ran, and the refused ones make it exit 2:\n{}",
        out.stderr
    );
    let reports = out.json();
    assert_eq!(
        reports.len(),
        1,
        "only the valid policy ran: {}",
        out.stdout
    );
    assert_eq!(reports[0]["namespace"], "team-a");
    assert_eq!(reports[0]["report"]["summary"]["deleted"], 1);
    assert!(
        !gw.has_group(&[("job", "ttl-old")]).await,
        "stale group deleted"
    );
    assert!(
        gw.has_group(&[("job", "ttl-fresh")]).await,
        "fresh group kept"
    );
    assert!(
        gw.has_group(&[("job", "other")]).await,
        "the broken policy touched nothing"
    );
    let line = |needle: &str| {
        out.stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no stderr line with {needle:?}:\n{}", out.stderr))
            .to_string()
    };
    let broken = line("team-a/broken-selector");
    assert!(
        broken.contains("20-more.yml") && broken.contains("spec.selector"),
        "{broken}"
    );
    let service = line("default/in-cluster-only");
    assert!(
        service.contains("20-more.yml") && service.contains("needs a cluster"),
        "{service}"
    );
}

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
    let log = dir.path().join("run.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = janitor()
        .args(["run", "--policies", file.to_str().unwrap()])
        .args(["--listen", &listen, "--min-ttl", "1s"])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn the janitor");
    let mut running = Running { child, log };

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
        assert!(Instant::now() < deadline, "never ready:\n{}", running.log());
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
            running.log()
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
    assert!(running.log().contains("sweep done"), "{}", running.log());

    let pid = running.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let status = running
        .wait(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no exit within 15s of SIGTERM:\n{}", running.log()));
    assert_eq!(status.code(), Some(0), "{}", running.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn once_finds_the_replicas_through_prometheus() {
    let gw = TestGateway::start(GatewayOpts::default());
    let prom = TestPrometheus::start("pushgateway", &[gw.address()]);
    prom.wait_for_up("pushgateway", 1, Duration::from_secs(60))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "prom.yaml",
        &format!(
            "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
             name: via-prometheus\n  namespace: monitoring\nspec:\n  prometheus:\n    url: {}\n    \
             job: pushgateway\n  ttl: 2s\n  minTtl: 1s\n",
            prom.url
        ),
    );
    gw.push(&[("job", "prom-old")], "x 1\n").await;
    sleep_past(2.0).await;
    gw.push(&[("job", "prom-fresh")], "x 1\n").await;

    let out = run_once(&[
        "run",
        "--policies",
        file.to_str().unwrap(),
        "--once",
        "--min-ttl",
        "1s",
        "--output",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.report("via-prometheus");
    assert_eq!(report["summary"]["replicas"], 1, "{report}");
    assert_eq!(report["summary"]["deleted"], 1, "{report}");
    assert!(!gw.has_group(&[("job", "prom-old")]).await);
    assert!(gw.has_group(&[("job", "prom-fresh")]).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_policy_deletes_nothing_and_reports_what_would_go() {
    let gw = TestGateway::start(GatewayOpts::default());
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "dry.yaml",
        &static_policy("default", "dry", &gw, "  dryRun: true\n"),
    );
    gw.push(&[("job", "would-go")], "x 1\n").await;
    sleep_past(2.0).await;

    let table = run_once(&[
        "run",
        "--policies",
        file.to_str().unwrap(),
        "--once",
        "--min-ttl",
        "1s",
    ]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("== default/dry"), "{}", table.stdout);
    assert!(table.stdout.contains("would-delete"), "{}", table.stdout);
    assert!(table.stdout.contains("(dry run)"), "{}", table.stdout);

    let out = run_once(&[
        "run",
        "--policies",
        file.to_str().unwrap(),
        "--once",
        "--min-ttl",
        "1s",
        "--output",
        "json",
    ]);
    let report = out.report("dry");
    assert_eq!(report["summary"]["would_delete"], 1, "{report}");
    assert_eq!(report["summary"]["deleted"], 0, "{report}");
    assert_eq!(report["actions"][0]["outcome"], "would-delete");
    assert!(
        gw.has_group(&[("job", "would-go")]).await,
        "dry run kept it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_read_from_the_secrets_dir_and_a_missing_one_names_its_field() {
    let gw = TestGateway::start(GatewayOpts::default());
    // The gateway has no bearer auth of its own: nginx in front of it enforces the token, so a
    // token that was only read and never sent would fail the run.
    let front = TestNginx::start(
        "",
        &format!(
            "location / {{\n      if ($http_authorization != \"Bearer s3cret\") {{ return 401; }}\n      \
             proxy_pass http://{};\n    }}",
            gw.address()
        ),
    );
    let url = format!("{}/", front.url);
    let unauthenticated = reqwest::get(format!("{url}api/v1/metrics")).await.unwrap();
    assert_eq!(unauthenticated.status(), 401, "nginx enforces the token");
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(secrets.join("gw-token")).unwrap();
    std::fs::write(secrets.join("gw-token").join("token"), "s3cret\n").unwrap();
    let auth = |secret: &str| {
        format!(
            "  selector: '{{job=\"with-auth\"}}'\n  gatewayAuth:\n    bearerToken:\n      \
             name: {secret}\n      key: token\n"
        )
    };
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    write(
        &policies,
        "a.yaml",
        &static_policy_at("default", "token-found", &url, &auth("gw-token")),
    );
    write(
        &policies,
        "b.yaml",
        &static_policy_at("default", "token-missing", &url, &auth("no-such-secret")),
    );
    gw.push(&[("job", "with-auth")], "x 1\n").await;
    sleep_past(2.0).await;

    let out = run_once(&[
        "run",
        "--policies",
        policies.to_str().unwrap(),
        "--secrets-dir",
        secrets.to_str().unwrap(),
        "--once",
        "--min-ttl",
        "1s",
        "--output",
        "json",
    ]);
    let found = out.report("token-found");
    assert_eq!(found["summary"]["exit_code"], 0, "{found}");
    assert!(!gw.has_group(&[("job", "with-auth")]).await);
    let missing = out.report("token-missing");
    let error = missing["summary"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("spec.gatewayAuth.bearerToken") && error.contains("no-such-secret"),
        "{missing}"
    );
    // A missing Secret is the user's input, as a missing `--gateway-*-file` is for `sweep`.
    assert_eq!(missing["summary"]["exit_code"], 2, "{missing}");
    assert_eq!(out.code, 2, "the worst of the two: {}", out.stderr);
    assert!(!out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"));
}
