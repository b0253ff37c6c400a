//! The chart's pods on a real node (issue 21): `scripts/kube-testcluster.sh` starts a one-node
//! cluster (kube-apiserver with etcd, controller-manager, scheduler, kube-proxy, a kubelet driving
//! containerd and runc, pods on a CNI bridge with no route off this machine) once for this binary;
//! the chart is installed with the real `helm` CLI (`target/test-deps/bin/helm`, Helm 4) and the
//! image the cluster imported under the name the chart pulls by default.
//!
//! One test runs the scenarios one after the other on that cluster, each in namespaces of its own
//! (deleted when it ends, passed or failed), and fails naming every scenario that failed:
//! - `install` (tests/node/install.rs): the chart's defaults; Ready through the probe with
//!   in-cluster config, a policy sweeps a gateway pod, `/metrics`, `helm test`, `helm uninstall`
//!   keeps the CRD and policies, liveness restarts a stopped controller (points 1, 6, 7, 8).
//! - `cronjob` (tests/node/cronjob.rs): `mode: cronjob`, a Job from the CronJob sweeps two gateway
//!   pods to completion; with a replica down the Job fails after `backoffLimit` with exit code 1;
//!   `helm test` fails on a policy under the floor (points 5, 8).
//! - `ha` (tests/node/ha.rs): two replicas with leader election finding two gateway pods through
//!   a `service` source: one sweeps, a deleted leader hands over, `helm upgrade` to a second tag
//!   rolls them, no group deleted twice (points 2, 3, 4).
//! - `prometheus` (tests/node/prometheus.rs): Prometheus 3 as a pod discovering two gateway pods
//!   with `kubernetes_sd_configs` (endpointslice); a `prometheus` source sweeps them and refuses
//!   a pushed fake `up` (point 2).
//!
//! `PGW_JANITOR_TEST_HELM` names another `helm` binary to run the suite with (a Helm 3, say).
//!
//! Sequential, not concurrent: the `install` scenario's controller watches every namespace, and
//! the node has two cores. Needs root, `bash scripts/test-deps.sh` (containerd, runc, CNI plugins,
//! iptables, conntrack, kube-node, kube-testserver, helm) and `bash scripts/image.sh` (the
//! janitor's image). The cluster is stopped (every pod, mount, bridge, cgroup and iptables chain
//! it made removed) when the test ends, also on a panic.

#[path = "node/cluster.rs"]
mod cluster;
pub mod common;
#[path = "node/cronjob.rs"]
mod cronjob;
#[path = "node/gateways.rs"]
mod gateways;
#[path = "node/ha.rs"]
mod ha;
#[path = "node/install.rs"]
mod install;
#[path = "node/logs.rs"]
mod logs;
#[path = "node/prometheus.rs"]
mod prometheus;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use cluster::Node;

/// Runs `scenario` as a task of its own (a panic fails it, not the others), then deletes its
/// namespaces. Returns whether it passed. `PGW_JANITOR_NODE_SCENARIOS=ha,cronjob` runs only
/// those (for work on one of them); unset, all run.
async fn run<F: Future<Output = ()> + Send + 'static>(
    node: &Arc<Node>,
    name: &str,
    scenario: F,
) -> bool {
    if let Ok(only) = std::env::var("PGW_JANITOR_NODE_SCENARIOS") {
        if !only.split(',').any(|s| s.trim() == name) {
            eprintln!("node scenario {name}: not selected by PGW_JANITOR_NODE_SCENARIOS={only}");
            return true;
        }
    }
    let t0 = Instant::now();
    let passed = tokio::spawn(scenario).await.is_ok();
    let took = t0.elapsed();
    node.drop_namespaces();
    eprintln!(
        "node scenario {name}: {} in {took:.0?} ({:.0?} with deleting its namespaces)",
        if passed { "passed" } else { "FAILED" },
        t0.elapsed()
    );
    passed
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chart_on_a_one_node_cluster() {
    let t0 = Instant::now();
    let node = Arc::new(Node::start());
    eprintln!("node: cluster started in {:.0?}", t0.elapsed());
    let mut failed = Vec::new();
    if !run(&node, "install", install::scenario(node.clone())).await {
        failed.push("install");
    }
    // The scenarios below install the chart with `crds.install: false`: the CRD belongs to the
    // `install` scenario's release, which kept it.
    node.ensure_crd();
    if !run(&node, "cronjob", cronjob::scenario(node.clone())).await {
        failed.push("cronjob");
    }
    if !run(&node, "ha", ha::scenario(node.clone())).await {
        failed.push("ha");
    }
    if !run(&node, "prometheus", prometheus::scenario(node.clone())).await {
        failed.push("prometheus");
    }
    eprintln!("node: all scenarios in {:.0?}", t0.elapsed());
    assert!(
        failed.is_empty(),
        "node scenarios failed: {failed:?} (their panics above)"
    );
}
