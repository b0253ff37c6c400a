//! `pushgateway-janitor controller` as a child process of a test, pointed at the test server, and
//! what it says: its JSON log, `/readyz`, `/metrics`. Killed by its PID on drop; waits bounded.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::k8s::{server, wait_until};
use super::process::{blocking_get_status, Proc};
use super::{free_port, http_client, janitor};

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
    /// The kubeconfig it runs with; `None`: the server's cluster-admin one.
    pub kubeconfig: Option<PathBuf>,
    /// The whole command line instead of the one built from the fields above (e.g. a rendered
    /// Deployment's `args`); its `--listen=...` is replaced by a free loopback port.
    pub args: Option<Vec<String>>,
    /// More environment variables (e.g. `POD_NAMESPACE`).
    pub env: Vec<(String, String)>,
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
            kubeconfig: None,
            args: None,
            env: Vec::new(),
        }
    }
}

/// `pushgateway-janitor controller` as a child ([`Proc`], killed by its PID on drop), JSON logs
/// at info level in a file of the server's dir.
pub struct Controller {
    pub name: String,
    /// `127.0.0.1:PORT` of its `/readyz`, `/livez`, `/metrics`.
    pub listen: String,
    proc: Proc,
    client: reqwest::Client,
}

impl Controller {
    /// Starts the controller and waits (bounded) until `/livez` answers, so its server is up; it
    /// need not be ready (`/readyz`) yet.
    pub fn start(opts: &ControllerOpts) -> Controller {
        let server = server();
        let kubeconfig = opts.kubeconfig.clone().unwrap_or(server.kubeconfig.clone());
        static STARTED: AtomicU32 = AtomicU32::new(0);
        for _ in 0..5 {
            let listen = format!("127.0.0.1:{}", free_port());
            let n = STARTED.fetch_add(1, Ordering::Relaxed);
            let log = server
                .dir
                .join(format!("controller-{}-{n}.log", opts.pod_name));
            let mut cmd = janitor();
            if let Some(args) = &opts.args {
                cmd.args(args.iter().map(|a| match a.strip_prefix("--listen=") {
                    Some(_) => format!("--listen={listen}"),
                    None => a.clone(),
                }));
            } else {
                cmd.args(["--log-format", "json", "controller", "--min-ttl", "1s"])
                    .arg("--listen")
                    .arg(&listen);
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
                cmd.args(&opts.extra_args);
            }
            cmd.envs(opts.env.iter().map(|(k, v)| (k, v)))
                .env("KUBECONFIG", &kubeconfig)
                .env("POD_NAME", &opts.pod_name)
                // Idle sweeps log at debug; the tests count every sweep, idle or not.
                .env(
                    "PGW_JANITOR_LOG_LEVEL",
                    "info,pushgateway_janitor::controller::reconcile=debug",
                )
                // Never in-cluster, never through a proxy.
                .env_remove("KUBERNETES_SERVICE_HOST")
                .env_remove("KUBERNETES_SERVICE_PORT")
                .env("NO_PROXY", "127.0.0.1,localhost")
                .env("no_proxy", "127.0.0.1,localhost");
            for var in [
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "http_proxy",
                "https_proxy",
                "ALL_PROXY",
                "all_proxy",
            ] {
                cmd.env_remove(var);
            }
            let mut ctl = Controller {
                name: opts.pod_name.clone(),
                listen,
                proc: Proc::spawn("pushgateway-janitor controller", cmd, &log),
                client: http_client(),
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            for _ in 0..600 {
                if let Some(status) = ctl.proc.try_exit() {
                    let tail = ctl.log_tail(40);
                    if tail.contains("in use") {
                        break; // port taken between free_port() and the bind: another port
                    }
                    panic!("controller {} exited early ({status}):\n{tail}", ctl.name);
                }
                if blocking_get_status(&ctl.listen, "/livez") == Some(200) {
                    return ctl;
                }
                if Instant::now() >= deadline {
                    let tail = ctl.log_tail(40);
                    panic!(
                        "controller {} has no /livez at {} after 30s:\n{tail}",
                        ctl.name, ctl.listen
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("controller: no free port after 5 attempts");
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// SIGTERM to this child's PID.
    pub fn terminate(&mut self) {
        self.proc.terminate();
    }

    /// SIGKILL (`kill -9`) to this child's PID, and reap it.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Waits (bounded) for the child to exit; `None` if it is still running after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || {
            let done = self.proc.try_exit().is_some();
            async move { done }
        })
        .await;
        self.proc.try_exit()
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }

    /// Every JSON log line of the controller so far, parsed (non-JSON lines are skipped).
    pub fn log_events(&self) -> Vec<Value> {
        self.proc
            .log_text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Sum of `field` over the log lines whose message is `message` and whose `policy` span
    /// field names `policy` (`namespace/name`).
    pub fn log_sum(&self, message: &str, policy: &str, field: &str) -> i64 {
        self.log_events()
            .iter()
            .filter(|e| e["message"] == message && logged_policy(e) == Some(policy))
            .filter_map(|e| e[field].as_i64())
            .sum()
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

/// The `policy` field of a JSON log line: on the event itself, or on its `span`/`spans`.
fn logged_policy(e: &Value) -> Option<&str> {
    e["policy"]
        .as_str()
        .or_else(|| e["span"]["policy"].as_str())
        .or_else(|| {
            e["spans"]
                .as_array()?
                .iter()
                .find_map(|s| s["policy"].as_str())
        })
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
