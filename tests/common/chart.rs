//! The Helm chart as the tests use it: rendered by Helm's own Go SDK (`tests/chart/render.py`,
//! in the `.venv` that `scripts/test-deps.sh` makes), its ServiceAccount and RBAC applied to the
//! real API server, and tokens minted for that ServiceAccount with TokenRequest, as the kubelet
//! mints them for a pod.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::Value;

use super::k8s::{repo_root, Cluster};
use super::run_bounded;

/// The Python with Helm's SDK: `PGW_JANITOR_TEST_PYTHON`, or `.venv/bin/python`. Never a skip.
pub fn python() -> PathBuf {
    let path = match std::env::var_os("PGW_JANITOR_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".venv/bin/python"),
    };
    assert!(
        path.is_file(),
        "no Python with Helm's SDK at {}: `python3 -m venv .venv && .venv/bin/pip install -r \
         tests/requirements.txt` (scripts/test.sh does it)",
        path.display()
    );
    path
}

/// The chart rendered by Helm's SDK with `values`, as objects.
pub fn render(release: &str, namespace: &str, values: &Value) -> Vec<Value> {
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("tests/chart/render.py")).args([
        release,
        namespace,
        &values.to_string(),
    ]);
    let out = run_bounded(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "render.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("render.py prints JSON")
}

pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The rendered Deployment's one container.
pub fn controller_container(docs: &[Value]) -> &Value {
    let deployments = of_kind(docs, "Deployment");
    assert_eq!(deployments.len(), 1, "one Deployment in the chart");
    &deployments[0]["spec"]["template"]["spec"]["containers"][0]
}

async fn apply<K>(api: Api<K>, doc: &Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let name = doc["metadata"]["name"].as_str().expect("a name");
    api.patch(name, &PatchParams::apply("rbac-test"), &Patch::Apply(doc))
        .await
        .unwrap_or_else(|e| panic!("apply {} {name}: {e}", doc["kind"]));
}

/// Applies the rendered ServiceAccount and RBAC objects; returns how many of each kind.
pub async fn apply_rbac(admin: &kube::Client, docs: &[Value]) -> Vec<(String, usize)> {
    let mut counts = Vec::new();
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ] {
        let found = of_kind(docs, kind);
        for doc in &found {
            let ns = doc["metadata"]["namespace"].as_str().unwrap_or_default();
            let c = admin.clone();
            match kind {
                "ServiceAccount" => apply(Api::<ServiceAccount>::namespaced(c, ns), doc).await,
                "ClusterRole" => apply(Api::<ClusterRole>::all(c), doc).await,
                "ClusterRoleBinding" => apply(Api::<ClusterRoleBinding>::all(c), doc).await,
                "Role" => apply(Api::<Role>::namespaced(c, ns), doc).await,
                _ => apply(Api::<RoleBinding>::namespaced(c, ns), doc).await,
            }
        }
        counts.push((kind.to_string(), found.len()));
    }
    counts
}

/// A token for ServiceAccount `sa` of the release's namespace (TokenRequest, an hour, the API
/// server's own audience); `bound_to` ties it to an object, as the kubelet ties a pod's token to
/// the pod: the token stops working when that object is deleted.
pub async fn mint_token(
    release: &Cluster,
    sa: &str,
    bound_to: Option<BoundObjectReference>,
) -> String {
    let api: Api<ServiceAccount> = release.api();
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(), // the API server's own
            expiration_seconds: Some(3600),
            bound_object_ref: bound_to,
        },
        ..Default::default()
    };
    api.create_token_request(sa, &PostParams::default(), &request)
        .await
        .expect("TokenRequest")
        .status
        .expect("a token")
        .token
}
