//! Points 1, 6, 7 and 8 of the node suite (tests/node.rs): the chart with its defaults.
//!
//! The controller's pod becomes Ready through its readiness probe with in-cluster config (its
//! ServiceAccount token, the `kubernetes` Service through kube-proxy: the API server's audit log
//! shows the ServiceAccount's requests coming from the pod's address); `helm test` runs the chart's
//! test hook to success; a policy applied with `kubectl apply` deletes a stale group on a
//! Pushgateway pod (reached through its Service's ClusterIP, admitted by the chart's
//! `allowedTargets`) and keeps the fresh one; `kubectl get pgr` shows the policy; the pod's
//! `/metrics` counts the deletion (point 1). `helm uninstall` keeps the CRD and the policy, nothing
//! sweeps while no controller runs, and a new `helm install` picks the policy up (point 7). A
//! controller that stops answering (SIGSTOP) is restarted by the kubelet's liveness probe and
//! sweeps again (point 6).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cluster::*;
use super::gateways::*;

const GATEWAYS: &str = "defaults-gateways";
const JANITOR: &str = "defaults";
const RELEASE: &str = "pgwj";

/// The chart with its defaults, but for a TTL floor a test can wait out and the Service range
/// admitted (the allow-list is empty by default; ClusterIPs are not refused, but a shared cluster
/// would list them, so the test does). The release makes the CRD, which it keeps on uninstall.
fn install(node: &Node) {
    helm_chart(
        node,
        "install",
        RELEASE,
        JANITOR,
        &json!({"minTtl": "1s", "allowedTargets": {"cidrs": [SERVICE_CIDR]}}),
    );
}

/// Points 1, 6, 7 and 8: the chart with its defaults (a controller watching every namespace).
pub async fn scenario(node: Arc<Node>) {
    let node = &*node;
    // The gateway: a pod behind a Service. The test reaches the pod at its address on the bridge;
    // the controller reaches it through the Service's ClusterIP (kube-proxy).
    node.namespace(GATEWAYS);
    node.namespace(JANITOR);
    node.apply("gateway", &gateway_manifests(GATEWAYS, 1));
    let gw_pod = || {
        let pods = node.get(&[
            "pods",
            "-n",
            GATEWAYS,
            "-l",
            "app.kubernetes.io/name=prometheus-pushgateway",
        ]);
        pods["items"].as_array().and_then(|a| a.first().cloned())
    };
    wait_for(
        node,
        "the gateway pod Ready",
        Duration::from_secs(120),
        || gw_pod().is_some_and(|p| pod_ready(&p)),
    );
    let pod_ip = gw_pod().unwrap()["status"]["podIP"]
        .as_str()
        .expect("podIP")
        .to_string();
    let svc = node.get(&["service", "pushgateway", "-n", GATEWAYS]);
    let cluster_ip = svc["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string();
    let direct = format!("http://{pod_ip}:9091/");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The chart with its defaults, but for a TTL floor a test can wait out and the Service range
    // admitted (the allow-list is empty by default; ClusterIPs are not refused, but a shared
    // cluster would list them, so the test does).
    install(node);
    let janitor_pod = || {
        let pods = node.get(&[
            "pods",
            "-n",
            JANITOR,
            "-l",
            "app.kubernetes.io/name=pushgateway-janitor",
        ]);
        pods["items"].as_array().and_then(|a| a.first().cloned())
    };
    wait_for(
        node,
        "the controller's pod Ready",
        Duration::from_secs(180),
        || janitor_pod().is_some_and(|p| pod_ready(&p)),
    );
    // Point 8: `helm test` runs the chart's test hook (the janitor's image validating the
    // release's policies under the chart's security context) to success.
    let out = helm(
        node,
        &["test", RELEASE, "--namespace", JANITOR, "--timeout", "120s"],
    );
    let test_pod = format!("{RELEASE}-pushgateway-janitor-test");
    assert!(
        out.contains(&test_pod) && out.contains("Succeeded"),
        "helm test did not report {test_pod} Succeeded:\n{out}"
    );
    let pod = janitor_pod().unwrap();
    let container = &pod["spec"]["containers"][0];
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"], "/readyz",
        "Ready comes from the chart's readiness probe: {container:#}"
    );
    assert_eq!(
        container["image"],
        format!(
            "ghcr.io/pgw-janitor/pushgateway-janitor:{}",
            env!("CARGO_PKG_VERSION")
        ),
        "the image the chart pulls by default, imported by the cluster's start"
    );
    assert_eq!(
        pod["status"]["containerStatuses"][0]["restartCount"], 0,
        "{:#}",
        pod["status"]
    );
    // In-cluster config: the token is projected by the ServiceAccount admission plugin, the API
    // server is reached through the `kubernetes` Service.
    let env_names: Vec<&str> = container["env"]
        .as_array()
        .map(|e| e.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !env_names.contains(&"KUBECONFIG"),
        "no kubeconfig given: {env_names:?}"
    );
    let mounts = container["volumeMounts"].to_string();
    assert!(
        mounts.contains("/var/run/secrets/kubernetes.io/serviceaccount"),
        "the ServiceAccount token is mounted: {mounts}"
    );
    let janitor_ip = pod["status"]["podIP"].as_str().expect("podIP").to_string();
    let sa = pod["spec"]["serviceAccountName"]
        .as_str()
        .expect("serviceAccountName");
    let user = format!("system:serviceaccount:{JANITOR}:{sa}");
    let audit = node.path().join("apiserver/audit.log");
    let from_pod = std::fs::read_to_string(&audit)
        .expect("the API server's audit log")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["user"]["username"] == user.as_str())
        .filter(|e| {
            e["sourceIPs"]
                .as_array()
                .is_some_and(|ips| ips.iter().any(|ip| ip == janitor_ip.as_str()))
        })
        .count();
    assert!(
        from_pod > 0,
        "no request of {user} from the pod's address {janitor_ip} in the audit log"
    );

    // A stale group (older than the TTL when the policy comes) and a fresh one.
    push(&http, &direct, "stale").await;
    tokio::time::sleep(Duration::from_secs(32)).await;
    push(&http, &direct, "fresh").await;
    node.apply(
        "policy",
        &json!({"apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
                "metadata": {"name": "node-sweep", "namespace": JANITOR},
                "spec": {"static": {"urls": [format!("http://{cluster_ip}:9091/")]},
                         "ttl": "30s", "minTtl": "1s", "interval": "5s"}}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = jobs(&http, &direct).await;
        if now == ["fresh"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stale group still there (groups: {now:?}) 20 s after the policy\n{}",
            node.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let pgr = node.kubectl(&["get", "pgr", "-n", JANITOR]);
    assert!(
        pgr.lines().any(|l| l.starts_with("node-sweep ")),
        "kubectl get pgr: {pgr}"
    );
    wait_for(
        node,
        "the policy's status counting the deletion",
        Duration::from_secs(30),
        || {
            let p = node.get(&["pgr", "node-sweep", "-n", JANITOR]);
            p["status"]["totals"]["deleted"] == 1
        },
    );
    assert_eq!(
        jobs(&http, &direct).await,
        ["fresh"],
        "the fresh group stays"
    );

    // The pod's /metrics, as a scrape of the pod's address gets it (the chart's metrics port).
    let metrics = http
        .get(format!("http://{janitor_ip}:8080/metrics"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET /metrics of the controller's pod at {janitor_ip}: {e}"))
        .text()
        .await
        .expect("metrics text");
    let deleted = format!(
        r#"pgw_janitor_groups_deleted_total{{namespace="{JANITOR}",policy="node-sweep",reason="expired"}} 1"#
    );
    assert!(
        metrics.lines().any(|l| l == deleted),
        "no `{deleted}` in the pod's /metrics:\n{metrics}"
    );

    // `helm uninstall` keeps the CRD and the user's policies; while no controller runs nothing
    // sweeps; a new install picks the policy up again.
    helm(
        node,
        &["uninstall", RELEASE, "--namespace", JANITOR, "--wait"],
    );
    wait_for(
        node,
        "the controller's pod gone",
        Duration::from_secs(120),
        || janitor_pod().is_none(),
    );
    node.kubectl(&["get", "crd", "pushgatewayretentions.pgw-janitor.dev"]);
    let sweeps = |node: &Node| {
        let p = node.get(&["pgr", "node-sweep", "-n", JANITOR]);
        p["status"]["totals"]["sweeps"]
            .as_u64()
            .unwrap_or_else(|| panic!("no status.totals.sweeps: {:#}", p["status"]))
    };
    let before = sweeps(node);
    tokio::time::sleep(Duration::from_secs(12)).await; // two intervals and more
    assert_eq!(sweeps(node), before, "a sweep with no controller installed");
    install(node);
    wait_for(
        node,
        "the reinstalled controller's pod Ready",
        Duration::from_secs(180),
        || janitor_pod().is_some_and(|p| pod_ready(&p)),
    );
    wait_for(
        node,
        "a sweep of the kept policy by the new controller",
        Duration::from_secs(60),
        || sweeps(node) > before,
    );
    // Liveness: a controller that stops answering (SIGSTOP of its process, found through
    // containerd by the container's ID) is restarted by the kubelet, and sweeps again after.
    let pod = janitor_pod().expect("the reinstalled controller's pod");
    let container_id = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .and_then(|id| id.strip_prefix("containerd://"))
        .unwrap_or_else(|| panic!("no containerd container ID: {:#}", pod["status"]))
        .to_string();
    let pid = node.task_pid(&container_id);
    crate::common::process::send_signal(pid, "STOP");
    wait_for(
        node,
        "the kubelet restarting the stopped controller",
        Duration::from_secs(180),
        || {
            janitor_pod().is_some_and(|p| {
                p["status"]["containerStatuses"][0]["restartCount"].as_u64() >= Some(1)
            })
        },
    );
    wait_for(
        node,
        "the restarted controller Ready",
        Duration::from_secs(120),
        || janitor_pod().is_some_and(|p| pod_ready(&p)),
    );
    let at_restart = sweeps(node);
    wait_for(
        node,
        "a sweep by the restarted controller",
        Duration::from_secs(60),
        || sweeps(node) > at_restart,
    );
}
