//! The Kubernetes side of the end-to-end tests: the real kube-apiserver (with etcd, from
//! `target/test-deps/bin/kube-testserver`, built by `bash scripts/test-deps.sh`), started once per
//! test binary and shared by its tests, or one of a test's own ([`OwnServer`]) for a test that
//! would disturb the others (it restarts the server, or runs a controller over every namespace);
//! a fresh namespace and a kube client per test; the CRD from `crds/`; kubeconfigs
//! (the server's cluster-admin one, or one holding only a ServiceAccount token); and the server's
//! audit log. The controller as a child process is in `controller.rs`.
//!
//! The server runs with `--exit-on-stdin-close` and its stdin held by this process, so it dies with
//! the test binary however that ends. Every other child is a [`Proc`], killed by its PID on drop.
//! Every wait is bounded in time and in rounds. Only 127.0.0.1 is used.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::Value;

use super::process::Proc;

pub use super::controller::{metric_sum, Controller, ControllerOpts, LeaseOpts};

/// Overrides where the test server binary is (for development).
pub const TESTSERVER_ENV: &str = "PGW_JANITOR_TEST_KUBE_TESTSERVER";
/// Where `bash scripts/test-deps.sh` puts it, relative to the repository root.
pub const TESTSERVER_PATH: &str = "target/test-deps/bin/kube-testserver";
/// The CRD the tests install, as committed.
pub const CRD_FILE: &str = "crds/pushgatewayretentions.pgw-janitor.dev.yaml";
pub const CRD_NAME: &str = "pushgatewayretentions.pgw-janitor.dev";

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test server binary, or a panic that says how to build it. Never a skip.
pub fn testserver_binary() -> PathBuf {
    let path = match std::env::var_os(TESTSERVER_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(TESTSERVER_PATH),
    };
    assert!(
        path.is_file(),
        "the Kubernetes test server is missing at {}: build it with `bash scripts/test-deps.sh` \
         (needs Go, or network access to fetch one), or point {TESTSERVER_ENV} at a built \
         kube-testserver",
        path.display()
    );
    path
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

/// The one API server of this test binary.
pub struct TestServer {
    /// Its `--dir`: kubeconfig, url, audit.log, apiserver.log.
    pub dir: PathBuf,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// Its cluster-admin kubeconfig (client certificate, CA embedded).
    pub kubeconfig: PathBuf,
    // Never dropped (a static): its stdin closes when the test process exits, and then it exits.
    _proc: Mutex<Proc>,
    /// The CRD from `crds/`, applied once on this server by its first [`Cluster`].
    crd_installed: tokio::sync::OnceCell<()>,
}

static SERVER: OnceLock<TestServer> = OnceLock::new();

/// The server, started on first use (it takes seconds). Panics with its log if it does not
/// become ready within a bound.
pub fn server() -> &'static TestServer {
    SERVER.get_or_init(start_server)
}

fn start_server() -> TestServer {
    let dir = tempfile::Builder::new()
        .prefix("pgw-test-kube-")
        .tempdir()
        .expect("create temp dir")
        .keep();
    let (proc, url) = spawn_ready(&dir, false);
    TestServer {
        kubeconfig: dir.join("kubeconfig"),
        dir,
        url,
        _proc: Mutex::new(proc),
        crd_installed: tokio::sync::OnceCell::const_new(),
    }
}

/// An API server for one test alone, killed (by its PID) and its directory removed when this
/// drops. The test binary's tests share one server; a test that restarts its server or whose
/// controller watches every namespace (and would sweep the other tests' policies) takes its own.
pub struct OwnServer(&'static TestServer);

impl OwnServer {
    /// Starts one (it takes seconds); panics with its log if it does not become ready in time.
    pub fn start() -> OwnServer {
        // Leaked so that `Cluster` keeps its `&'static` server: a few bytes; the process itself
        // ends in `drop`.
        OwnServer(Box::leak(Box::new(start_server())))
    }

    /// A fresh namespace on this server, as [`Cluster::new`] makes one on the shared server.
    pub async fn cluster(&self, prefix: &str) -> Cluster {
        Cluster::on(self.0, prefix).await
    }
}

impl std::ops::Deref for OwnServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        self.0
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.0.kill();
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

/// Starts the server on `dir` (again, on its etcd data, certificates and port, with `restart`)
/// and waits, bounded, for its `ready URL` line.
fn spawn_ready(dir: &Path, restart: bool) -> (Proc, String) {
    let mut cmd = Command::new(testserver_binary());
    // The server removes its directory once it stopped: the test binary, which holds it in a
    // static, never gets to.
    cmd.arg("--dir")
        .arg(dir)
        .arg("--exit-on-stdin-close")
        .arg("--remove-dir-on-exit");
    if restart {
        cmd.arg("--restart");
    }
    static STARTS: AtomicU32 = AtomicU32::new(0);
    let log = dir.join(format!(
        "testserver-{}.out",
        STARTS.fetch_add(1, Ordering::Relaxed)
    ));
    let mut proc = Proc::spawn_holding_stdin("kube-testserver", cmd, &log);
    let timeout = Duration::from_secs(180);
    let deadline = Instant::now() + timeout;
    for _ in 0..(timeout.as_millis() / 100) {
        let text = proc.log_text();
        if let Some(url) = text
            .lines()
            .find_map(|l| l.strip_prefix("ready "))
            .map(|u| u.trim().to_string())
        {
            return (proc, url);
        }
        if let Some(status) = proc.try_exit() {
            panic!(
                "kube-testserver exited before it was ready ({status}); its output:\n{}\n\
                 apiserver.log tail:\n{}",
                proc.log_tail(40),
                tail(&dir.join("apiserver.log"), 40)
            );
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = proc.log_tail(40);
    proc.kill();
    panic!(
        "kube-testserver printed no `ready URL` line within {timeout:?}; its output:\n{out}\n\
         apiserver.log tail:\n{}",
        tail(&dir.join("apiserver.log"), 40)
    );
}

impl TestServer {
    /// Kills the API server and its etcd (SIGKILL, by PID): every client loses it at once.
    pub fn kill(&self) {
        self._proc.lock().unwrap_or_else(|e| e.into_inner()).kill();
    }

    /// Starts the killed server again on the same etcd data, certificates and port, and waits
    /// until it is ready: to its clients, the API server restarted.
    pub fn start_again(&self) {
        let (proc, url) = spawn_ready(&self.dir, true);
        assert_eq!(url, self.url, "the restarted server is on the same port");
        *self._proc.lock().unwrap_or_else(|e| e.into_inner()) = proc;
    }

    /// Every audit event (Metadata level, one per request stage) logged so far. A line still
    /// being written is skipped.
    pub fn audit_events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default();
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n') && !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l.trim()).ok())
            .collect()
    }

    /// The admin kubeconfig with the server reached at `url` instead (a proxy in front of it);
    /// written next to the server's own.
    pub fn write_kubeconfig_via(&self, name: &str, url: &str) -> PathBuf {
        let admin = std::fs::read_to_string(&self.kubeconfig).expect("read the admin kubeconfig");
        assert!(
            admin.contains(&self.url),
            "the admin kubeconfig names {}",
            self.url
        );
        let path = self.dir.join(format!("kubeconfig-{name}"));
        std::fs::write(&path, admin.replace(&self.url, url)).expect("write kubeconfig");
        path
    }

    /// A kubeconfig holding only `token` for this server (its CA, no client certificate), with
    /// default namespace `namespace`; written next to the server's own.
    pub fn write_token_kubeconfig(&self, name: &str, token: &str, namespace: &str) -> PathBuf {
        let admin = Kubeconfig::read_from(&self.kubeconfig).expect("read the admin kubeconfig");
        let cluster = admin
            .clusters
            .first()
            .and_then(|c| c.cluster.clone())
            .expect("a cluster in the admin kubeconfig");
        let config = serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "test", "cluster": {
                "server": cluster.server,
                "certificate-authority-data": cluster.certificate_authority_data,
            }}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {
                "cluster": "test", "user": name, "namespace": namespace}}],
            "current-context": "test",
        });
        // JSON is YAML, which is what a kubeconfig is read as.
        let path = self.dir.join(format!("kubeconfig-{name}"));
        std::fs::write(&path, config.to_string()).expect("write kubeconfig");
        path
    }
}

/// A kube client from `kubeconfig`, default namespace `namespace`. Needs a Tokio runtime (the
/// client spawns its request buffer on it), so each test makes its own.
pub async fn client_from(kubeconfig: &Path, namespace: &str) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kube config from kubeconfig");
    config.default_namespace = namespace.to_string();
    // Generous: a stuck server fails the test rather than hanging it.
    config.read_timeout = Some(Duration::from_secs(30));
    Client::try_from(config).expect("kube client")
}

/// The CRD from `crds/`, as an object.
pub fn committed_crd() -> CustomResourceDefinition {
    let text = std::fs::read_to_string(repo_root().join(CRD_FILE)).expect("read the CRD");
    serde_saphyr::from_str(&text).expect("the CRD parses")
}

/// The committed CRD with `spec.FIELD` set to `schema` (added, or replacing the committed one):
/// a newer release's CRD, or a looser one that lets an object the controller cannot decode in.
pub fn committed_crd_with_spec_field(
    field: &str,
    schema: JSONSchemaProps,
) -> CustomResourceDefinition {
    let mut crd = committed_crd();
    let spec = crd.spec.versions[0]
        .schema
        .as_mut()
        .and_then(|s| s.open_api_v3_schema.as_mut())
        .and_then(|s| s.properties.as_mut())
        .and_then(|p| p.get_mut("spec"))
        .and_then(|s| s.properties.as_mut())
        .expect("the CRD has a spec schema");
    spec.insert(field.into(), schema);
    crd
}

/// Applies `crd` (server-side, field manager `pgw-janitor-tests`) and waits (bounded) until the
/// server says it is Established.
pub async fn apply_crd(
    client: &Client,
    crd: &CustomResourceDefinition,
) -> CustomResourceDefinition {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().expect("CRD name");
    api.patch(
        &name,
        &PatchParams::apply("pgw-janitor-tests").force(),
        &Patch::Apply(crd),
    )
    .await
    .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
    let is_established = |c: &CustomResourceDefinition| {
        c.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..300 {
        let got = api.get(&name).await.expect("get the CRD");
        if is_established(&got) {
            return got;
        }
        if Instant::now() >= deadline {
            panic!("CRD {name} not Established within 60s: {:#?}", got.status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("CRD {name} not Established after 300 rounds");
}

/// One test's view of the cluster: a fresh namespace on the shared server, the CRD installed,
/// and a cluster-admin client whose default namespace is that one.
pub struct Cluster {
    pub server: &'static TestServer,
    pub ns: String,
    pub client: Client,
}

static NAMESPACES: AtomicU32 = AtomicU32::new(0);

impl Cluster {
    /// A fresh namespace `<prefix>-<n>` (a bare API server never finishes deleting one, so
    /// namespaces are not reused).
    pub async fn new(prefix: &str) -> Cluster {
        Cluster::on(server(), prefix).await
    }

    async fn on(server: &'static TestServer, prefix: &str) -> Cluster {
        let ns = format!("{prefix}-{}", NAMESPACES.fetch_add(1, Ordering::Relaxed));
        let client = client_from(&server.kubeconfig, &ns).await;
        server
            .crd_installed
            .get_or_init(|| async {
                apply_crd(&client, &committed_crd()).await;
            })
            .await;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let mut obj = Namespace::default();
        obj.metadata.name = Some(ns.clone());
        namespaces
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create namespace {ns}: {e}"));
        Cluster { server, ns, client }
    }

    /// A namespaced `Api` in this test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Audit events of requests made by `username` (e.g. `system:serviceaccount:NS:NAME`), one
    /// per request (the `ResponseComplete` stage).
    pub fn audit_of(&self, username: &str) -> Vec<Value> {
        self.server
            .audit_events()
            .into_iter()
            .filter(|e| e["user"]["username"] == username && e["stage"] == "ResponseComplete")
            .collect()
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
