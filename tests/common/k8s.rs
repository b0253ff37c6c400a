//! The Kubernetes side of the end-to-end tests: the API stand-in (`tests/k8s_emulator.py`, kmock's
//! `KubernetesEmulator` plus our additions, see `tests/KMOCK.md`), a kube client to it, a
//! kubeconfig for the controller binary, the controller as a child process, and the emulator's
//! request log.
//!
//! Every child is killed by its own handle (its PID) on drop; a graceful stop sends `SIGTERM` to
//! that PID only. Every wait is bounded in time and in iterations. Only 127.0.0.1 is used.

use std::fs::File;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::process::blocking_get_status;
use super::{free_port, http_client, janitor};

/// The Python that runs the emulator: `$PGW_JANITOR_TEST_PYTHON`, else `.venv/bin/python` in the
/// repository root (where `.ci/run` creates the venv with kmock).
pub fn emulator_python() -> PathBuf {
    match std::env::var_os("PGW_JANITOR_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

fn emulator_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/k8s_emulator.py")
}

/// Polls `check` until it returns true, at most `timeout` and a bounded number of rounds (every
/// 200 ms). Returns whether it held; the caller asserts with its own message.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let step = Duration::from_millis(200);
    let deadline = Instant::now() + timeout;
    let max_rounds = (timeout.as_millis() / step.as_millis()) as u64 + 2;
    for _ in 0..max_rounds {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(step).await;
    }
    false
}

/// One line of the emulator's `--request-log`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub content_type: String,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub subresource: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<Value>,
}

impl LoggedRequest {
    /// A successful write (`PATCH`/`PUT`) to the `status` subresource of a `PushgatewayRetention`
    /// named `name` (any namespace).
    pub fn is_status_write_of(&self, name: &str) -> bool {
        (self.method == "PATCH" || self.method == "PUT")
            && self.subresource.as_deref() == Some("status")
            && self.path.contains("/pushgatewayretentions/")
            && self
                .path
                .trim_end_matches("/status")
                .ends_with(&format!("/{name}"))
            && self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// A successful `events.k8s.io/v1` event write (`POST`, or the `PATCH` a Recorder sends for a
    /// repeat) whose body has this `reason`.
    pub fn is_event_with_reason(&self, reason: &str) -> bool {
        self.path.starts_with("/apis/events.k8s.io/v1/")
            && (self.method == "POST" || self.method == "PATCH")
            && self.status.is_some_and(|s| (200..300).contains(&s))
            && self
                .body
                .as_ref()
                .and_then(|b| b.get("reason"))
                .and_then(Value::as_str)
                == Some(reason)
    }
}

/// The API stand-in: `tests/k8s_emulator.py` on a free loopback port. Dropping it kills the child
/// by its handle and removes its temp dir (port file, request log, kubeconfig, its stderr).
pub struct Emulator {
    pub port: u16,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    child: Option<Child>,
    // Kept open for the life of the emulator: closing its stdin stops it.
    stdin: Option<ChildStdin>,
    request_log: PathBuf,
    stderr_log: PathBuf,
    // Dropped last (field order), after the child is gone.
    dir: tempfile::TempDir,
}

impl Emulator {
    /// Starts the emulator and waits (bounded) for its port file.
    pub fn start() -> Emulator {
        let dir = tempfile::Builder::new()
            .prefix("pgw-test-k8s-")
            .tempdir()
            .expect("create temp dir");
        let port_file = dir.path().join("port");
        let request_log = dir.path().join("req.jsonl");
        let stderr_log = dir.path().join("emulator.log");
        let python = emulator_python();
        let out = File::create(&stderr_log).expect("create emulator log");
        let err = out.try_clone().expect("clone log handle");
        let mut child = Command::new(&python)
            .arg(emulator_script())
            .arg("--port-file")
            .arg(&port_file)
            .arg("--request-log")
            .arg(&request_log)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run the emulator's Python {python:?} ({e}); set \
                     PGW_JANITOR_TEST_PYTHON to a Python with kmock, or create .venv (.ci/run)"
                )
            });
        let stdin = child.stdin.take();
        let mut emu = Emulator {
            port: 0,
            url: String::new(),
            child: Some(child),
            stdin,
            request_log,
            stderr_log,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        for _ in 0..1500 {
            // Written by rename, so complete when it exists.
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                if let Ok(port) = text.trim().parse::<u16>() {
                    emu.port = port;
                    emu.url = format!("http://127.0.0.1:{port}");
                    return emu;
                }
            }
            if let Some(Ok(Some(status))) = emu.child.as_mut().map(Child::try_wait) {
                emu.child = None;
                panic!(
                    "the emulator exited early ({status}); its log:\n{}",
                    emu.log_tail(40)
                );
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let tail = emu.log_tail(40);
        emu.kill();
        panic!("the emulator wrote no port file within 30s; its log:\n{tail}");
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the emulator now (by its handle) and reaps it. Idempotent.
    pub fn kill(&mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.stderr_log, n)
    }

    /// A kube client for the test itself, default namespace `namespace`.
    /// Needs a Tokio runtime (the client spawns its request buffer).
    pub fn client(&self, namespace: &str) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().expect("emulator URL"));
        config.default_namespace = namespace.to_string();
        // Generous: a stuck emulator fails the test rather than hanging it.
        config.read_timeout = Some(Duration::from_secs(30));
        kube::Client::try_from(config).expect("kube client for the emulator")
    }

    /// Writes a kubeconfig for this emulator (plain HTTP, an empty user, default namespace
    /// `namespace`) into the temp dir and returns its path, for `KUBECONFIG=`.
    pub fn write_kubeconfig(&self, namespace: &str) -> PathBuf {
        let path = self.dir.path().join(format!("kubeconfig-{namespace}"));
        let text = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: emulator\n  cluster:\n    server: {url}\n\
             users:\n- name: tester\n  user: {{}}\n\
             contexts:\n- name: emulator\n  context:\n    cluster: emulator\n    user: tester\n    \
             namespace: {namespace}\n\
             current-context: emulator\n",
            url = self.url
        );
        let mut f = File::create(&path).expect("create kubeconfig");
        f.write_all(text.as_bytes()).expect("write kubeconfig");
        path
    }

    /// Every request the emulator has logged so far, in order. A line still being written (the
    /// last one, without its newline) is skipped.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        let text = std::fs::read_to_string(&self.request_log).unwrap_or_default();
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n') && !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l.trim())
                    .unwrap_or_else(|e| panic!("request log line {l:?}: {e}"))
            })
            .collect()
    }

    /// How many requests are logged now; a later `requests_since(mark)` sees only newer ones.
    pub fn mark(&self) -> usize {
        self.requests().len()
    }

    pub fn requests_since(&self, mark: usize) -> Vec<LoggedRequest> {
        self.requests().into_iter().skip(mark).collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How to start a controller.
#[derive(Debug, Clone)]
pub struct ControllerOpts {
    /// `POD_NAME`, also the log file's name; distinct per instance.
    pub pod_name: String,
    /// `--namespace`; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// `--leader-election --lease-name NAME --lease-namespace NS --lease-duration D`.
    pub leader_election: Option<LeaseOpts>,
    /// Appended as is (e.g. `--confirm-timeout 10s`, `--shutdown-timeout 5s`).
    pub extra_args: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LeaseOpts {
    pub name: String,
    pub namespace: String,
    pub duration: String,
}

impl ControllerOpts {
    pub fn new(pod_name: &str, namespace: Option<&str>) -> ControllerOpts {
        ControllerOpts {
            pod_name: pod_name.to_string(),
            namespace: namespace.map(str::to_string),
            leader_election: None,
            extra_args: Vec::new(),
        }
    }
}

/// `pushgateway-janitor controller` as a child, pointed at an [`Emulator`] through `KUBECONFIG`.
/// Dropping it kills the child by its handle.
pub struct Controller {
    pub name: String,
    /// `127.0.0.1:PORT` of its `/readyz`, `/livez`, `/metrics`.
    pub listen: String,
    child: Option<Child>,
    exit: Option<ExitStatus>,
    log: PathBuf,
    client: reqwest::Client,
}

impl Controller {
    /// Starts the controller and waits (bounded) until `/livez` answers, so its server is up; it
    /// need not be ready (`/readyz`) yet. Logs go to a file in the emulator's temp dir.
    pub fn start(emu: &Emulator, opts: &ControllerOpts) -> Controller {
        let kubeconfig = emu.write_kubeconfig(opts.namespace.as_deref().unwrap_or("default"));
        for attempt in 0..5 {
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            let log = emu
                .dir()
                .join(format!("controller-{}-{attempt}.log", opts.pod_name));
            let out = File::create(&log).expect("create controller log");
            let err = out.try_clone().expect("clone log handle");
            let mut cmd = janitor();
            cmd.arg("controller")
                .arg("--listen")
                .arg(&listen)
                .arg("--min-ttl")
                .arg("1s");
            if let Some(ns) = &opts.namespace {
                cmd.arg("--namespace").arg(ns);
            }
            if let Some(lease) = &opts.leader_election {
                cmd.arg("--leader-election")
                    .arg("--lease-name")
                    .arg(&lease.name)
                    .arg("--lease-namespace")
                    .arg(&lease.namespace)
                    .arg("--lease-duration")
                    .arg(&lease.duration);
            }
            cmd.args(&opts.extra_args)
                .env("KUBECONFIG", &kubeconfig)
                .env("POD_NAME", &opts.pod_name)
                // Never in-cluster, never through a proxy.
                .env_remove("KUBERNETES_SERVICE_HOST")
                .env_remove("KUBERNETES_SERVICE_PORT")
                .env("NO_PROXY", "127.0.0.1,localhost")
                .env("no_proxy", "127.0.0.1,localhost")
                .env_remove("HTTP_PROXY")
                .env_remove("HTTPS_PROXY")
                .env_remove("http_proxy")
                .env_remove("https_proxy")
                .env_remove("ALL_PROXY")
                .env_remove("all_proxy")
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err));
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot spawn the controller: {e}"));
            let mut ctl = Controller {
                name: opts.pod_name.clone(),
                listen,
                child: Some(child),
                exit: None,
                log,
                client: http_client(),
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut up = false;
            for _ in 0..600 {
                if let Some(status) = ctl.try_exit() {
                    let tail = ctl.log_tail(40);
                    if tail.contains("in use") && attempt < 4 {
                        break; // port taken between free_port() and the bind: another port
                    }
                    panic!(
                        "controller {} exited early ({status}); log tail:\n{tail}",
                        ctl.name
                    );
                }
                if blocking_get_status(&ctl.listen, "/livez") == Some(200) {
                    up = true;
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if up {
                return ctl;
            }
            if ctl.exit.is_none() {
                let tail = ctl.log_tail(40);
                ctl.kill();
                panic!(
                    "controller {} has no /livez at {} after 30s; log tail:\n{tail}",
                    ctl.name, ctl.listen
                );
            }
        }
        panic!("controller: no free port after 5 attempts");
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status once it has exited (reaps it), else `None`.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.exit = Some(status);
                    self.child = None;
                }
            }
        }
        self.exit
    }

    /// Sends `SIGTERM` to this child's PID (`kill -TERM <pid>`), the graceful stop.
    pub fn terminate(&mut self) {
        if self.try_exit().is_some() {
            return;
        }
        if let Some(pid) = self.pid() {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .expect("run kill -TERM");
            assert!(status.success(), "kill -TERM {pid} failed: {status}");
        }
    }

    /// Waits (bounded) for the child to exit; `None` if it is still running after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || {
            let done = self.try_exit().is_some();
            async move { done }
        })
        .await;
        self.exit
    }

    /// Kills the child now (SIGKILL by its handle) and reaps it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.exit.get_or_insert(status);
            }
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }

    /// `GET http://listen{path}`: status and body, or `None` when nothing answered.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let resp = self
            .client
            .get(format!("http://{}{path}", self.listen))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.unwrap_or_default()))
    }

    /// The status of `/readyz`, `None` when nothing answered.
    pub async fn readyz(&self) -> Option<u16> {
        self.get("/readyz").await.map(|(s, _)| s)
    }

    /// `/metrics` text ("" when nothing answered).
    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// Sum of the samples of `family` (e.g. `pgw_janitor_sweeps_total`) whose labels contain
    /// every `label="value"` pair of `labels`; 0 when none.
    pub async fn metric_sum(&self, family: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(&self.metrics().await, family, labels)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sums the samples of `family` in Prometheus/OpenMetrics text that carry every given label pair.
pub fn metric_sum(text: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(family) else {
            continue;
        };
        let (label_part, value_part) = if let Some(inner) = rest.strip_prefix('{') {
            match inner.split_once('}') {
                Some((l, v)) => (l, v),
                None => continue,
            }
        } else if rest.starts_with(' ') {
            ("", rest)
        } else {
            continue; // another family with this prefix
        };
        let label_part = format!(",{label_part}");
        if labels
            .iter()
            .all(|(k, v)| label_part.contains(&format!(",{k}=\"{v}\"")))
        {
            if let Some(v) = value_part
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
            {
                sum += v;
            }
        }
    }
    sum
}
