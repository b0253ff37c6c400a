//! Points 3, 4 and the `service` half of 2 of the node suite (tests/node.rs): two controller
//! replicas with leader election, finding two Pushgateway pods through a `service` source (the
//! Service's EndpointSlices, made by the real controller).
//!
//! While a pusher keeps pushing groups (one new group every 700 ms, alternating replicas, each
//! stale 4 s later): exactly one pod deletes (every `group delete` line of the delete log comes
//! from the Lease's holder), the PodDisruptionBudget exists; `kubectl delete pod` of the leader
//! hands the Lease to another pod (the standby or its replacement) within the lease duration, which
//! then deletes; `helm upgrade` to a second image tag (the same image tagged again in containerd)
//! rolls both pods, and a pod of the new tag takes over. After it, every pushed group was deleted exactly once: one delete line
//! per group across all the pods, none twice, none missing, on both gateway replicas.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cluster::*;
use super::gateways::*;
use super::logs::PodLogs;

const NS: &str = "ha";
const RELEASE: &str = "ha";
const FULLNAME: &str = "ha-pushgateway-janitor";
const LEASE_SECONDS: u64 = 15;

fn job_of(group: &str) -> String {
    group
        .split("job=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no job label in group {group}"))
        .to_string()
}

/// The Lease's holder, once the Lease exists.
fn holder(node: &Node) -> Option<String> {
    node.try_get(&["lease", FULLNAME, "-n", NS])
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(String::from))
        .filter(|h| !h.is_empty())
}

fn janitor_pods(node: &Node) -> Vec<Value> {
    pods(node, NS, "pushgateway-janitor")
}

fn name(pod: &Value) -> String {
    pod["metadata"]["name"].as_str().expect("name").to_string()
}

/// Pushes a new group every 700 ms, on one replica each, until finished or dropped. A thread of
/// its own: the scenario's task blocks its worker in its waits.
struct Pusher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<Vec<String>, String>>>,
}

impl Pusher {
    fn start(urls: Vec<String>) -> Pusher {
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut pushed = Vec::new();
                // Bounded: the scenario stops it long before.
                for i in 0..2000 {
                    if halt.load(Ordering::Relaxed) {
                        break;
                    }
                    let (job, url) = (format!("g{i}"), &urls[i % urls.len()]);
                    let sent = http
                        .put(format!("{url}metrics/job/{job}"))
                        .body("node_test_value 1\n")
                        .send()
                        .await
                        .and_then(|r| r.error_for_status());
                    if let Err(e) = sent {
                        return Err(format!("push of {job} to {url}: {e}"));
                    }
                    pushed.push(job);
                    tokio::time::sleep(Duration::from_millis(700)).await;
                }
                Ok(pushed)
            })
        });
        Pusher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it; the jobs it pushed.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().expect("the pusher's thread");
        t.join()
            .expect("the pusher's thread")
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub async fn scenario(node: Arc<Node>) {
    let node = &*node;
    node.namespace(NS);
    let logs = PodLogs::start(node, NS);
    node.apply("ha-gateways", &gateway_manifests(NS, 2));
    let urls = ready_gateways(node, NS, 2);
    let version = env!("CARGO_PKG_VERSION");
    let mut values = json!({
        "replicaCount": 2, "watchNamespaces": [NS], "crds": {"install": false}, "minTtl": "1s",
        "leaderElection": {"leaseDuration": format!("{LEASE_SECONDS}s")},
        "allowedTargets": {"cidrs": [POD_CIDR]},
    });
    helm_chart(node, "install", RELEASE, NS, &values);
    node.apply(
        "ha-policy",
        &json!({"apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
                "metadata": {"name": "ha-sweep", "namespace": NS},
                "spec": {"service": {"name": "pushgateway", "port": "http"},
                         "ttl": "4s", "minTtl": "1s", "interval": "2s"}}),
    );

    let pusher = Pusher::start(urls.clone());
    let deleted_by = |pod: &str| logs.deletes(pod).len();

    // Two replicas Ready, one Lease holder, and only it deletes.
    wait_for(
        node,
        "two controller pods Ready",
        Duration::from_secs(180),
        || {
            let p = janitor_pods(node);
            p.len() == 2 && p.iter().all(pod_ready)
        },
    );
    let first: Vec<String> = janitor_pods(node).iter().map(name).collect();
    wait_for(node, "a Lease holder", Duration::from_secs(60), || {
        holder(node).is_some_and(|h| first.contains(&h))
    });
    let leader = holder(node).unwrap();
    let other = first.iter().find(|p| **p != leader).unwrap().clone();
    wait_for(
        node,
        "three deletes by the leader",
        Duration::from_secs(90),
        || deleted_by(&leader) >= 3,
    );
    assert_eq!(
        holder(node).as_deref(),
        Some(leader.as_str()),
        "the Lease moved"
    );
    assert_eq!(
        deleted_by(&other),
        0,
        "the pod that is not the leader deleted"
    );
    let pdb = node.get(&["pdb", FULLNAME, "-n", NS]);
    assert_eq!(pdb["spec"]["maxUnavailable"], 1, "{pdb:#}");
    assert_eq!(pdb["status"]["expectedPods"], 2, "{:#}", pdb["status"]);

    // The leader's pod deleted: another pod takes the Lease within its duration, and deletes.
    // (The leader gives the Lease up on SIGTERM; the standby or the Deployment's replacement pod,
    // whichever asks first, takes it.)
    let t0 = Instant::now();
    node.kubectl(&["delete", "pod", &leader, "-n", NS, "--wait=false"]);
    wait_for(
        node,
        "another pod holding the Lease within the lease duration",
        Duration::from_secs(LEASE_SECONDS + 5),
        || holder(node).is_some_and(|h| h != leader),
    );
    eprintln!(
        "ha: Lease handed over {:.1?} after the leader's pod was deleted",
        t0.elapsed()
    );
    let second = holder(node).expect("the new holder");
    let before = deleted_by(&second);
    wait_for(
        node,
        "deletes by the new leader",
        Duration::from_secs(60),
        || deleted_by(&second) >= before + 2,
    );

    // helm upgrade to a second tag of the same image: both pods replaced, a new one leads.
    let repo = "ghcr.io/pgw-janitor/pushgateway-janitor";
    let tag = format!("{version}-rollout");
    node.ctr(&[
        "images",
        "tag",
        "--force",
        &format!("{repo}:{version}"),
        &format!("{repo}:{tag}"),
    ]);
    values["image"] = json!({"tag": tag});
    helm_chart(node, "upgrade", RELEASE, NS, &values);
    node.kubectl(&[
        "rollout",
        "status",
        &format!("deployment/{FULLNAME}"),
        "-n",
        NS,
        "--timeout=170s",
    ]);
    let rolled = janitor_pods(node);
    assert!(
        rolled.len() == 2
            && rolled
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == format!("{repo}:{tag}")),
        "after the rollout: {:?}",
        rolled
            .iter()
            .map(|p| (name(p), p["spec"]["containers"][0]["image"].clone()))
            .collect::<Vec<_>>()
    );
    let rolled: Vec<String> = rolled.iter().map(name).collect();
    wait_for(
        node,
        "a pod of the new tag leading and deleting",
        Duration::from_secs(90),
        || holder(node).is_some_and(|h| rolled.contains(&h) && deleted_by(&h) >= 2),
    );

    // The pusher stops; every group goes; the delete log has exactly one line per group.
    let pushed = pusher.finish();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut left = Vec::new();
        for u in &urls {
            left.extend(jobs(&http, u).await);
        }
        if left.is_empty() && logs.deletes("").len() >= pushed.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "60 s after the last push: groups left {left:?}, {} delete lines for {} groups\n{}",
            logs.deletes("").len(),
            pushed.len(),
            node.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all = logs.finish();
    let mut per_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut per_pod: BTreeMap<String, usize> = BTreeMap::new();
    for d in &all {
        assert_eq!(
            d.outcome, "deleted",
            "group {} on {}: {}",
            d.group, d.replica, d.outcome
        );
        per_group
            .entry(job_of(&d.group))
            .or_default()
            .push(d.pod.clone());
        *per_pod.entry(d.pod.clone()).or_default() += 1;
    }
    let twice: Vec<_> = per_group
        .iter()
        .filter(|(_, pods)| pods.len() > 1)
        .collect();
    assert!(twice.is_empty(), "groups deleted more than once: {twice:?}");
    let mut want = pushed.clone();
    want.sort();
    let got: Vec<String> = per_group.keys().cloned().collect();
    assert_eq!(got, want, "the delete log's groups are the pushed ones");
    assert_eq!(per_pod.values().sum::<usize>(), pushed.len(), "{per_pod:?}");
    let replicas: std::collections::BTreeSet<&str> =
        all.iter().map(|d| d.replica.as_str()).collect();
    assert_eq!(
        replicas.len(),
        2,
        "the service source found both gateway pods: {replicas:?}"
    );
    eprintln!(
        "ha: {} groups deleted once each; per pod: {per_pod:?}",
        pushed.len()
    );
}
