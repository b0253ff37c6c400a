//! The one-node cluster of tests/node.rs and what its test does with it: `kubectl`, `helm`, the
//! gateway's manifests, pushes and reads of a gateway.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::k8s::repo_root;
use crate::common::run_bounded;

/// The namespaces this test makes: the gateway's and the janitor's.
pub const GATEWAYS: &str = "gateways";
pub const JANITOR: &str = "janitor";
pub const RELEASE: &str = "pgwj";

/// A cluster started by `scripts/kube-testcluster.sh start` in a temp dir; stopped on drop. The
/// dir is removed only when stop succeeded: otherwise it is what a `stop` by hand needs.
pub struct Node {
    pub dir: Option<tempfile::TempDir>,
}

impl Node {
    pub fn start() -> Node {
        let dir = tempfile::Builder::new()
            .prefix("pgw-test-node-")
            .tempdir()
            .expect("temp dir");
        let node = Node { dir: Some(dir) };
        let out = node.script("start", Duration::from_secs(600));
        assert!(
            out.status.success(),
            "kube-testcluster.sh start failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        node
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("the cluster's dir").path()
    }

    fn script(&self, cmd: &str, timeout: Duration) -> std::process::Output {
        let mut c = Command::new("bash");
        c.arg(repo_root().join("scripts/kube-testcluster.sh"))
            .arg(cmd)
            .arg(self.path());
        run_bounded(c, timeout)
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.path().join("kubeconfig")
    }

    /// `kubectl ARGS` against the cluster; panics with its output unless it succeeds.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin_file: Option<&Path>) -> String {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig").arg(self.kubeconfig()).args(args);
        if let Some(f) = stdin_file {
            c.arg("-f").arg(f);
        }
        let out = run_bounded(c, Duration::from_secs(180));
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn apply(&self, name: &str, doc: &Value) {
        let path = self.path().join(format!("{name}.json"));
        std::fs::write(&path, doc.to_string()).expect("write manifest");
        self.kubectl_stdin(&["apply"], Some(&path));
    }

    pub fn get(&self, args: &[&str]) -> Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl(&a)).expect("kubectl -o json prints JSON")
    }

    /// The host PID of a container's process, from containerd (`ctr task ls`).
    pub fn task_pid(&self, container_id: &str) -> u32 {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.path().join("containerd/containerd.sock"))
            .args(["-n", "k8s.io", "task", "ls"]);
        let out = run_bounded(c, Duration::from_secs(30));
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some(container_id)).then(|| f.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no task {container_id} in `ctr task ls`:\n{text}"))
    }

    /// The last lines of every component's log and the pods' logs, for a failure message.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        let logs = self.path().join("logs");
        for name in ["kubelet", "proxy", "controller-manager"] {
            let text =
                std::fs::read_to_string(logs.join(format!("{name}.log"))).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(8).collect();
            out += &format!(
                "--- {name}.log (last lines, newest first):\n{}\n",
                tail.join("\n")
            );
        }
        for ns in [GATEWAYS, JANITOR] {
            let mut c = Command::new("kubectl");
            c.arg("--kubeconfig").arg(self.kubeconfig());
            c.args([
                "-n",
                ns,
                "logs",
                "--all-containers",
                "--prefix",
                "--tail=20",
                "-l",
            ]);
            c.arg("app.kubernetes.io/name");
            let o = run_bounded(c, Duration::from_secs(30));
            out += &format!(
                "--- pods of {ns}:\n{}{}\n",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let out = self.script("stop", Duration::from_secs(180));
        if !out.status.success() {
            let kept = self.dir.take().map(|d| d.keep());
            eprintln!(
                "kube-testcluster.sh stop failed ({}): {}\nkept {kept:?} for `bash \
                 scripts/kube-testcluster.sh stop DIR`",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Waits (bounded) until `check` is true; panics naming `what`, with the cluster's logs.
pub fn wait_for(node: &Node, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            panic!("{what}: not within {timeout:?}\n{}", node.diagnostics());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The Pushgateway of target/test-deps/bin (the image `start` made of it) as a Deployment behind a
/// Service, as the prometheus-community chart lays it out; no persistence.
pub fn gateway_manifests(version: &str) -> Value {
    let labels = json!({"app.kubernetes.io/name": "prometheus-pushgateway"});
    json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "pushgateway", "namespace": GATEWAYS},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
           "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
             "name": "pushgateway",
             "image": format!("localhost/kube-testcluster/pushgateway:{version}"),
             "imagePullPolicy": "Never",
             "args": ["--web.listen-address=:9091", "--persistence.file="],
             "ports": [{"name": "http", "containerPort": 9091}],
             "readinessProbe": {"httpGet": {"path": "/-/ready", "port": 9091}, "periodSeconds": 2}
           }]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "pushgateway", "namespace": GATEWAYS, "labels": labels},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 9091, "targetPort": 9091}]}}
    ]})
}

pub async fn push(client: &reqwest::Client, base: &str, job: &str) {
    let resp = client
        .put(format!("{base}metrics/job/{job}"))
        .body("node_test_value 1\n")
        .send()
        .await
        .unwrap_or_else(|e| panic!("push of job {job} to {base}: {e}"));
    assert!(
        resp.status().is_success(),
        "push of job {job} to {base}: {}",
        resp.status()
    );
}

/// The `job` labels of the groups the gateway holds.
pub async fn jobs(client: &reqwest::Client, base: &str) -> Vec<String> {
    let v: Value = client
        .get(format!("{base}api/v1/metrics"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {base}api/v1/metrics: {e}"))
        .json()
        .await
        .expect("the gateway's API answers JSON");
    let mut jobs: Vec<String> = v["data"]
        .as_array()
        .expect("data is an array")
        .iter()
        .filter_map(|g| g["labels"]["job"].as_str().map(String::from))
        .collect();
    jobs.sort();
    jobs
}

/// `helm ARGS` (the real Helm 4 CLI) against the cluster; panics with its output unless it
/// succeeds.
pub fn helm(node: &Node, args: &[&str]) {
    let helm = repo_root().join("target/test-deps/bin/helm");
    assert!(
        helm.is_file(),
        "no {}: `bash scripts/test-deps.sh helm` builds it",
        helm.display()
    );
    let mut c = Command::new(&helm);
    c.args(args)
        .arg("--kubeconfig")
        .arg(node.kubeconfig())
        // Helm keeps its cache and config out of this machine's home.
        .env("HELM_CACHE_HOME", node.path().join("helm/cache"))
        .env("HELM_CONFIG_HOME", node.path().join("helm/config"))
        .env("HELM_DATA_HOME", node.path().join("helm/data"));
    let out = run_bounded(c, Duration::from_secs(180));
    assert!(
        out.status.success(),
        "helm {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `helm install` of the chart from this checkout with `values`, into the janitor's namespace.
pub fn helm_install(node: &Node, values: &Value) {
    let values_file = node.path().join("values.json");
    std::fs::write(&values_file, values.to_string()).expect("write values");
    let chart = repo_root().join("charts/pushgateway-janitor");
    let values_arg = values_file.display().to_string();
    helm(
        node,
        &[
            "install",
            RELEASE,
            chart.to_str().expect("a UTF-8 path"),
            "--namespace",
            JANITOR,
            "--create-namespace",
            "--values",
            &values_arg,
        ],
    );
}
