//! The gateways of the node suite: Pushgateway pods behind a Service, pushes and reads.

use std::time::Duration;

use serde_json::{json, Value};

use super::cluster::{pod_ready, pods, wait_for, Node};
use crate::common::k8s::repo_root;

/// The version of the Pushgateway in target/test-deps/bin (the image `start` made of it).
pub fn pushgateway_version() -> String {
    std::fs::read_to_string(repo_root().join("target/test-deps/stamps/pushgateway"))
        .expect("the pushgateway stamp test-deps.sh writes")
        .lines()
        .find_map(|l| l.strip_prefix("version ").map(String::from))
        .expect("a version line in the pushgateway stamp")
}

/// `replicas` Pushgateways of target/test-deps/bin (the image `start` made of it) as a Deployment
/// behind the Service `pushgateway` (port `http`) in `ns`, as the prometheus-community chart lays
/// them out; no persistence.
pub fn gateway_manifests(ns: &str, replicas: u32) -> Value {
    let version = pushgateway_version();
    let labels = json!({"app.kubernetes.io/name": "prometheus-pushgateway"});
    json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "pushgateway", "namespace": ns},
         "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
           "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
             "name": "pushgateway",
             "image": format!("localhost/kube-testcluster/pushgateway:{version}"),
             "imagePullPolicy": "Never",
             "args": ["--web.listen-address=:9091", "--persistence.file="],
             "ports": [{"name": "http", "containerPort": 9091}],
             "readinessProbe": {"httpGet": {"path": "/-/ready", "port": 9091}, "periodSeconds": 2}
           }]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "pushgateway", "namespace": ns, "labels": labels},
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

/// Waits until `n` gateway pods of `ns` are Ready; returns their base URLs (`http://IP:9091/`),
/// sorted.
pub fn ready_gateways(node: &Node, ns: &str, n: usize) -> Vec<String> {
    let ready = || {
        let p = pods(node, ns, "prometheus-pushgateway");
        (p.len() == n && p.iter().all(pod_ready)).then_some(p)
    };
    wait_for(
        node,
        &format!("{n} gateway pods Ready in {ns}"),
        Duration::from_secs(120),
        || ready().is_some(),
    );
    let mut urls: Vec<String> = ready()
        .expect("the gateway pods")
        .iter()
        .map(|p| {
            format!(
                "http://{}:9091/",
                p["status"]["podIP"].as_str().expect("podIP")
            )
        })
        .collect();
    urls.sort();
    urls
}
