//! The `prometheus` half of point 2 of the node suite (tests/node.rs): Prometheus 3 as a pod (the
//! binary of target/test-deps/bin, built with Kubernetes discovery) finds two Pushgateway pods
//! with `kubernetes_sd_configs` role `endpointslice`, `honor_labels: true` and the `job` label set
//! to the Service's name, as a ServiceMonitor of the Prometheus Operator does; it lists the
//! EndpointSlices, Services and Pods through a Role of its own. A policy with a `prometheus`
//! source finds both gateway pods through it and sweeps them. A fake `up` series pushed to a
//! gateway, naming a listener of this test (on the bridge's address, inside the chart's
//! `allowedTargets`), is answered by Prometheus as a third instance, yet the janitor refuses it
//! (no scrape target behind it: `pgw_janitor_discovery_refused_total`) and never connects to it.
//! The `service` half is in tests/node/ha.rs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cluster::*;
use super::gateways::*;
use crate::common::Tripwire;

const NS: &str = "prometheus";
const RELEASE: &str = "prom";
const JOB: &str = "pushgateway";

fn prometheus_version() -> String {
    std::fs::read_to_string(
        crate::common::k8s::repo_root().join("target/test-deps/stamps/prometheus"),
    )
    .expect("the prometheus stamp test-deps.sh writes")
    .lines()
    .find_map(|l| l.strip_prefix("version ").map(String::from))
    .expect("a version line in the prometheus stamp")
}

fn prometheus_manifests() -> Value {
    let config = format!(
        "global: {{scrape_interval: 2s, scrape_timeout: 1s}}\n\
         scrape_configs:\n\
         - job_name: serviceMonitor/{NS}/pushgateway/0\n  \
           honor_labels: true\n  \
           kubernetes_sd_configs:\n  \
           - role: endpointslice\n    \
             namespaces: {{names: [{NS}]}}\n  \
           relabel_configs:\n  \
           - {{source_labels: [__meta_kubernetes_service_label_app_kubernetes_io_name], regex: prometheus-pushgateway, action: keep}}\n  \
           - {{source_labels: [__meta_kubernetes_endpointslice_port_name], regex: http, action: keep}}\n  \
           - {{source_labels: [__meta_kubernetes_pod_name], target_label: pod}}\n  \
           - {{source_labels: [__meta_kubernetes_service_name], target_label: job}}\n"
    );
    let labels = json!({"app.kubernetes.io/name": "prometheus"});
    json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "prometheus", "namespace": NS}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "prometheus", "namespace": NS},
         "rules": [
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["services", "pods"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "prometheus", "namespace": NS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "prometheus"},
         "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": NS}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prometheus", "namespace": NS},
         "data": {"prometheus.yml": config}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "prometheus", "namespace": NS},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
           "template": {"metadata": {"labels": labels}, "spec": {
             "serviceAccountName": "prometheus",
             "containers": [{
               "name": "prometheus",
               "image": format!("localhost/kube-testcluster/prometheus:{}", prometheus_version()),
               "imagePullPolicy": "Never",
               "args": ["--config.file=/etc/prometheus/prometheus.yml",
                        "--storage.tsdb.path=/data", "--web.listen-address=:9090"],
               "ports": [{"name": "http", "containerPort": 9090}],
               "readinessProbe": {"httpGet": {"path": "/-/ready", "port": 9090}, "periodSeconds": 2},
               "volumeMounts": [{"name": "config", "mountPath": "/etc/prometheus"},
                                {"name": "data", "mountPath": "/data"}]}],
             "volumes": [{"name": "config", "configMap": {"name": "prometheus"}},
                         {"name": "data", "emptyDir": {}}]}}}}
    ]})
}

/// `up{job="pushgateway"}` in Prometheus: instance → pod label.
async fn up(http: &reqwest::Client, prom: &str) -> Vec<(String, String)> {
    let v: Value = http
        .get(format!("{prom}api/v1/query"))
        .query(&[("query", format!("up{{job=\"{JOB}\"}}"))])
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("query of {prom}: {e}"))
        .json()
        .await
        .expect("Prometheus answers JSON");
    let mut up: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|s| {
            let m = &s["metric"];
            let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            (s("instance"), s("pod"))
        })
        .collect();
    up.sort();
    up
}

pub async fn scenario(node: Arc<Node>) {
    let node = &*node;
    node.namespace(NS);
    node.apply("prom-gateways", &gateway_manifests(NS, 2));
    node.apply("prometheus", &prometheus_manifests());
    let urls = ready_gateways(node, NS, 2);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The tripwire: a listener on the bridge's address, which the pods reach, counting connections.
    let tripwire = Tripwire::start_on(BRIDGE_IP);
    let fake = tripwire.address();
    let resp = http
        .put(format!("{}metrics/job/{JOB}/instance/{fake}", urls[0]))
        .body("up 1\n")
        .send()
        .await
        .expect("push of the fake up");
    assert!(resp.status().is_success(), "fake push: {}", resp.status());

    // Prometheus: Ready, both gateway pods discovered by the endpointslice role, and the fake
    // answered as a third instance of the job.
    let prom_pod = || pods(node, NS, "prometheus").into_iter().next();
    wait_for(
        node,
        "the Prometheus pod Ready",
        Duration::from_secs(120),
        || prom_pod().is_some_and(|p| pod_ready(&p)),
    );
    let prom = format!(
        "http://{}:9090/",
        prom_pod().unwrap()["status"]["podIP"]
            .as_str()
            .expect("podIP")
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let seen = up(&http, &prom).await;
        if seen.len() == 3 {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "up{{job={JOB:?}}} in Prometheus: {seen:?}\n{}",
            node.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let gateway_pods: Vec<String> = pods(node, NS, "prometheus-pushgateway")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    for (instance, pod) in &seen {
        assert!(
            *instance == fake || gateway_pods.contains(pod),
            "up series {instance} pod {pod:?}: neither a gateway pod nor the fake ({seen:?})"
        );
    }

    // A stale group on each replica and a fresh one, then the policy.
    for u in &urls {
        push(&http, u, "stale").await;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    push(&http, &urls[1], "fresh").await;
    helm_chart(
        node,
        "install",
        RELEASE,
        NS,
        &json!({
            "watchNamespaces": [NS], "crds": {"install": false}, "minTtl": "1s",
            "allowedTargets": {"cidrs": [POD_CIDR]},
        }),
    );
    node.apply(
        "prom-policy",
        &json!({"apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
                "metadata": {"name": "via-prometheus", "namespace": NS},
                "spec": {"prometheus": {"url": prom, "job": JOB}, "selector": "{job=\"stale\"}",
                         "ttl": "5s", "minTtl": "1s", "interval": "3s"}}),
    );
    let janitor = || pods(node, NS, "pushgateway-janitor").into_iter().next();
    wait_for(
        node,
        "the controller's pod Ready",
        Duration::from_secs(180),
        || janitor().is_some_and(|p| pod_ready(&p)),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (jobs(&http, &urls[0]).await, jobs(&http, &urls[1]).await);
        if !a.contains(&"stale".to_string()) && b == ["fresh"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "groups on the replicas: {a:?} {b:?}\n{}",
            node.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let janitor_ip = janitor().unwrap()["status"]["podIP"]
        .as_str()
        .expect("podIP")
        .to_string();
    let metrics = http
        .get(format!("http://{janitor_ip}:8080/metrics"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("the controller's /metrics")
        .text()
        .await
        .unwrap();
    let refused = format!(
        r#"pgw_janitor_discovery_refused_total{{namespace="{NS}",policy="via-prometheus"}} "#
    );
    let count: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&refused))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {refused} in the controller's /metrics:\n{metrics}"));
    assert!(count >= 1, "the fake up was not refused: {count}");
    assert_eq!(
        tripwire.connections(),
        0,
        "the janitor connected to the fake instance {fake}"
    );
}
