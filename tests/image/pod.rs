//! The controller's pod, as the kubelet would start it from the chart's Deployment, with
//! podman: the rendered container's arguments and environment, the ServiceAccount volume written
//! the way the kubelet writes it (files behind a `..data` symlink that is swapped atomically on
//! every update), `KUBERNETES_SERVICE_HOST`/`_PORT` at the test API server on loopback (a
//! `hostNetwork` pod with no kube-proxy), and no kubeconfig anywhere.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::authentication::v1::BoundObjectReference;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use serde_json::{json, Value};

use crate::common::chart::{apply_rbac, controller_container, mint_token, of_kind, render};
use crate::common::container::{chart_pod, Container, RunOpts};
use crate::common::k8s::{wait_until, Cluster};
use crate::common::{free_port, http_client};
use crate::runs::set_mode;

/// Flags the tests add to the chart's own controller arguments, all in this one place.
/// `--min-ttl=1s` stays the chart's (`minTtl` is a value); none is needed today. A controller
/// that refuses gateways on loopback by default needs its allow-list flag here, since every
/// gateway of these tests is on 127.0.0.1.
pub const CONTROLLER_TEST_ARGS: &[&str] = &[];

/// Where the kubelet mounts the ServiceAccount volume, and where kube's in-cluster config reads
/// the token (again at most a minute after it last read it), `ca.crt` and `namespace`.
const SA_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

pub struct Pod {
    pub release: Cluster,
    /// The namespace the controller watches (`watchNamespaces`: a Role there).
    pub team: Cluster,
    pub sa: String,
    /// `127.0.0.1:PORT` of its `/livez`, `/readyz`, `/metrics`.
    pub listen: String,
    pub ctr: Container,
    pub volume: SaVolume,
}

/// The ServiceAccount volume on the host, mounted read-only into the container.
pub struct SaVolume {
    dir: tempfile::TempDir,
    writes: AtomicU32,
    ca: String,
    namespace: String,
}

/// A Secret in the release namespace to bind a token to; deleting it revokes the token.
pub async fn token_anchor(release: &Cluster, name: &str) -> BoundObjectReference {
    let api: Api<Secret> = release.api();
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    let made = api
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("create Secret {name}: {e}"));
    BoundObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Secret".into()),
        name: Some(name.into()),
        uid: made.metadata.uid,
    }
}

impl Pod {
    /// Renders the chart for a release watching a fresh team namespace, applies its RBAC, mints
    /// a token (bound to `bound_to` when given), writes the ServiceAccount volume and starts the
    /// container; returns once `/livez` answers.
    pub async fn start(prefix: &str, bound_to: Option<&str>, extra_args: &[&str]) -> Pod {
        let release = Cluster::new(&format!("{prefix}-rel")).await;
        let team = Cluster::new(&format!("{prefix}-team")).await;
        let name = format!("pgwj-{prefix}");
        let values = json!({"minTtl": "1s", "logFormat": "json", "watchNamespaces": [team.ns]});
        let docs = render(&name, &release.ns, &values);
        apply_rbac(&release.client, &docs).await;
        let sa = of_kind(&docs, "ServiceAccount")[0]["metadata"]["name"]
            .as_str()
            .expect("the ServiceAccount's name")
            .to_string();
        let bound = match bound_to {
            Some(secret) => Some(token_anchor(&release, secret).await),
            None => None,
        };
        let token = mint_token(&release, &sa, bound).await;

        let container = controller_container(&docs);
        let listen = format!("127.0.0.1:{}", free_port());
        let mut args: Vec<String> =
            serde_json::from_value(container["args"].clone()).expect("the container's args");
        for a in &mut args {
            if a.starts_with("--listen=") {
                *a = format!("--listen={listen}");
            }
        }
        args.extend(CONTROLLER_TEST_ARGS.iter().map(|s| s.to_string()));
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let pod_name = format!("{name}-7d9f8-x2x4q");
        let mut env = pod_env(&container["env"], &pod_name, &release.ns);
        let port = release
            .server
            .url
            .rsplit(':')
            .next()
            .expect("a port in the server's URL")
            .to_string();
        env.push(("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into()));
        env.push(("KUBERNETES_SERVICE_PORT".into(), port));

        // Written before the container starts: the janitor reads all three at start-up.
        let volume = SaVolume::new(ca_pem(&release.server.kubeconfig), release.ns.clone());
        volume.write(&token);
        let ctr = Container::start(
            &RunOpts {
                args,
                mounts: vec![(volume.dir.path().to_path_buf(), SA_MOUNT.into())],
                env,
            },
            &release.server.dir,
        );
        let mut pod = Pod {
            release,
            team,
            sa,
            listen,
            ctr,
            volume,
        };
        pod.wait_live().await;
        pod
    }

    async fn wait_live(&mut self) {
        let live = wait_until(Duration::from_secs(60), || async {
            matches!(self.get("/livez").await, Some((200, _)))
        })
        .await;
        let exited = self.ctr.try_exit();
        assert!(
            live,
            "the controller in {} has no /livez at {} (exited: {exited:?}):\n{}",
            self.ctr.name,
            self.listen,
            self.ctr.log_tail(40)
        );
    }

    /// `GET http://listen{path}`: status and body, `None` when nothing answered.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let resp = http_client()
            .get(format!("http://{}{path}", self.listen))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.unwrap_or_default()))
    }

    /// The controller's ServiceAccount as the audit log names it.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.release.ns, self.sa)
    }

    /// SIGTERM through the runtime, as the kubelet stops a pod: the container must end on its
    /// own, with exit code 0, within the chart's terminationGracePeriodSeconds (after which the
    /// kubelet would SIGKILL it), having said why.
    pub fn stop_like_the_kubelet(&mut self) {
        let grace = chart_pod().grace;
        self.ctr.signal("TERM");
        let status = self.ctr.wait_exit(grace);
        assert!(
            status.is_some_and(|s| s.success()),
            "after SIGTERM, within the chart's grace period of {grace:?}: {status:?}\n{}",
            self.ctr.log_tail(40)
        );
        assert!(
            self.ctr.log_text().contains("SIGTERM: shutting down"),
            "{}",
            self.ctr.log_tail(40)
        );
    }
}

impl SaVolume {
    fn new(ca: String, namespace: String) -> SaVolume {
        let dir = tempfile::Builder::new()
            .prefix("pgw-test-sa-")
            .tempdir()
            .expect("temp dir");
        // The container's user (65532, no capabilities) must be able to read it.
        set_mode(dir.path(), 0o755);
        SaVolume {
            dir,
            writes: AtomicU32::new(0),
            ca,
            namespace,
        }
    }

    /// The directory on the host.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `token`, `ca.crt` and `namespace` as the kubelet's atomic writer does: into a new
    /// timestamped directory, then `..data` swapped to it by one rename; the names the janitor
    /// opens are symlinks through `..data`, so it never reads a half-written file.
    pub fn write(&self, token: &str) {
        let root = self.dir.path();
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        let data = format!("..2026_12_06_00_00_00.{n:09}");
        let dir = root.join(&data);
        std::fs::create_dir(&dir).expect("create the volume's data dir");
        set_mode(&dir, 0o755);
        for (file, content) in [
            ("token", token),
            ("ca.crt", self.ca.as_str()),
            ("namespace", self.namespace.as_str()),
        ] {
            std::fs::write(dir.join(file), content).expect("write a volume file");
            set_mode(&dir.join(file), 0o644);
        }
        let tmp = root.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&data, &tmp).expect("symlink ..data_tmp");
        std::fs::rename(&tmp, root.join("..data")).expect("swap ..data");
        for file in ["token", "ca.crt", "namespace"] {
            let link = root.join(file);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("..data/{file}"), &link)
                    .expect("symlink a volume file");
            }
        }
        if n > 0 {
            let old = root.join(format!("..2026_12_06_00_00_00.{:09}", n - 1));
            std::fs::remove_dir_all(old).expect("remove the old data dir");
        }
    }
}

/// The rendered container's `env`, with the downward API's fields filled in as the kubelet does.
fn pod_env(env: &Value, pod_name: &str, namespace: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for var in env.as_array().into_iter().flatten() {
        let name = var["name"].as_str().expect("an env name").to_string();
        let value = match (
            &var["value"],
            var["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        ) {
            (Value::String(v), _) => v.clone(),
            (_, Some("metadata.name")) => pod_name.to_string(),
            (_, Some("metadata.namespace")) => namespace.to_string(),
            _ => panic!("env {var} of the chart's Deployment: the image tests do not fill it in"),
        };
        out.push((name, value));
    }
    out
}

/// The cluster CA (PEM) from the admin kubeconfig: the `ca.crt` of every ServiceAccount volume.
fn ca_pem(kubeconfig: &Path) -> String {
    let kc = Kubeconfig::read_from(kubeconfig).expect("read the admin kubeconfig");
    let data = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .expect("certificate-authority-data in the admin kubeconfig");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .expect("base64 CA");
    String::from_utf8(pem).expect("a PEM CA")
}

/// The `jti` of a service account token (a JWT): the audit log names the credential by it.
pub fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["jti"].as_str().expect("a jti claim").to_string()
}
