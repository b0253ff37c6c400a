//! The one-node cluster of tests/node.rs and what its scenarios do with it: `kubectl`, `helm`,
//! namespaces, the gateways' manifests, pushes and reads of a gateway.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::k8s::repo_root;
use crate::common::run_bounded;

/// The pod range of `scripts/kube-testcluster.sh` (its default) and the Service range of
/// kube-testserver: what the chart's `allowedTargets` admits in these tests.
pub const POD_CIDR: &str = "10.244.0.0/24";
pub const SERVICE_CIDR: &str = "10.0.0.0/24";
/// The bridge's own address in the pod range: this machine, as the pods reach it.
pub const BRIDGE_IP: &str = "10.244.0.1";

/// A cluster started by `scripts/kube-testcluster.sh start` in a temp dir; stopped on drop. The
/// dir is removed only when stop succeeded: otherwise it is what a `stop` by hand needs.
pub struct Node {
    pub dir: Option<tempfile::TempDir>,
    /// The namespaces the running scenario made; deleted when it ends.
    namespaces: Mutex<Vec<String>>,
}

impl Node {
    pub fn start() -> Node {
        let dir = tempfile::Builder::new()
            .prefix("pgw-test-node-")
            .tempdir()
            .expect("temp dir");
        let node = Node {
            dir: Some(dir),
            namespaces: Mutex::new(Vec::new()),
        };
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

    /// Creates namespace `name` for the running scenario; [`Node::drop_namespaces`] deletes it.
    pub fn namespace(&self, name: &str) {
        self.namespaces.lock().unwrap().push(name.to_string());
        self.kubectl(&["create", "namespace", name]);
    }

    /// Deletes the running scenario's namespaces (its releases, pods and policies with them),
    /// waiting until they are gone so the next scenario starts on a quiet node.
    pub fn drop_namespaces(&self) {
        let names = std::mem::take(&mut *self.namespaces.lock().unwrap());
        if names.is_empty() {
            return;
        }
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig").arg(self.kubeconfig());
        c.args([
            "delete",
            "namespace",
            "--ignore-not-found",
            "--timeout=120s",
        ]);
        c.args(&names);
        let out = run_bounded(c, Duration::from_secs(150));
        if !out.status.success() {
            eprintln!(
                "deleting namespaces {names:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The chart's CRD, for scenarios that install the chart with `crds.install: false` (the
    /// first scenario's release installed it and `helm uninstall` keeps it; made from crds/ when
    /// that scenario did not get so far).
    pub fn ensure_crd(&self) {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig").arg(self.kubeconfig());
        c.args(["get", "crd", "pushgatewayretentions.pgw-janitor.dev"]);
        if !run_bounded(c, Duration::from_secs(30)).status.success() {
            let crd = repo_root().join("crds/pushgatewayretentions.pgw-janitor.dev.yaml");
            self.kubectl_stdin(&["create"], Some(&crd));
        }
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/pushgatewayretentions.pgw-janitor.dev",
            "--timeout=60s",
        ]);
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

    /// `ctr -n k8s.io ARGS` against the cluster's containerd; panics unless it succeeds.
    pub fn ctr(&self, args: &[&str]) -> String {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.path().join("containerd/containerd.sock"))
            .args(["-n", "k8s.io"])
            .args(args);
        let out = run_bounded(c, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "ctr {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get ARGS -o json`, or None when kubectl fails (e.g. the object is not there yet).
    pub fn try_get(&self, args: &[&str]) -> Option<Value> {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("get")
            .args(args);
        c.args(["-o", "json"]);
        let out = run_bounded(c, Duration::from_secs(60));
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
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
        for ns in self.namespaces.lock().unwrap().iter() {
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

/// `helm ARGS` (the real Helm 4 CLI) against the cluster; panics with its output unless it
/// succeeds. Returns its stdout.
pub fn helm(node: &Node, args: &[&str]) -> String {
    let out = helm_output(node, args);
    assert!(
        out.status.success(),
        "helm {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm ARGS` against the cluster, whatever its outcome.
pub fn helm_output(node: &Node, args: &[&str]) -> std::process::Output {
    // PGW_JANITOR_TEST_HELM: another helm binary (e.g. a Helm 3), to check the chart with it.
    let helm = std::env::var_os("PGW_JANITOR_TEST_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/test-deps/bin/helm"));
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
    run_bounded(c, Duration::from_secs(240))
}

/// `helm install` (or `upgrade`, the verb) of the chart from this checkout as `release` with
/// `values`, into namespace `ns` (which the scenario made).
pub fn helm_chart(node: &Node, verb: &str, release: &str, ns: &str, values: &Value) -> String {
    let values_file = node.path().join(format!("values-{release}.json"));
    std::fs::write(&values_file, values.to_string()).expect("write values");
    let chart = repo_root().join("charts/pushgateway-janitor");
    let values_arg = values_file.display().to_string();
    helm(
        node,
        &[
            verb,
            release,
            chart.to_str().expect("a UTF-8 path"),
            "--namespace",
            ns,
            "--values",
            &values_arg,
        ],
    )
}

/// The pods in `ns` with label `app.kubernetes.io/name=NAME`, not being deleted.
pub fn pods(node: &Node, ns: &str, name: &str) -> Vec<Value> {
    let list = node.get(&[
        "pods",
        "-n",
        ns,
        "-l",
        &format!("app.kubernetes.io/name={name}"),
    ]);
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect()
}
