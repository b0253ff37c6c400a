//! Point 5 (and the failing half of point 8) of the node suite (tests/node.rs): `mode: cronjob`.
//!
//! The chart in cronjob mode with the sweep's flags naming two gateway pods: a Job made from the
//! CronJob (`kubectl create job --from=cronjob/...`, as the CronJob controller makes them) runs a
//! sweep to completion, exit code 0, the stale group gone from both replicas and the fresh one
//! kept. With one replica down (its pod gone, its address unanswered) the sweep still handles the
//! other replica, exits 1 ("a remote failed", README: exit codes), the Job retries and ends
//! Failed (`BackoffLimitExceeded`) after `backoffLimit` + 1 pods, each with exit code 1. Then a
//! `helm upgrade` adds a policy under the chart's `minTtl` and `helm test` fails, its pod's log
//! naming the policy.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::cluster::*;
use super::gateways::*;

const NS: &str = "cronjob";
const RELEASE: &str = "cron";
const CRONJOB: &str = "cron-pushgateway-janitor";
const BACKOFF_LIMIT: u64 = 1;

/// Waits until Job `name` has condition `Complete` or `Failed`; returns it and the Job.
fn job_end(node: &Node, name: &str) -> (String, Value) {
    let mut end = None;
    wait_for(
        node,
        &format!("Job {name} to end"),
        Duration::from_secs(240),
        || {
            let job = node.get(&["job", name, "-n", NS]);
            let done = job["status"]["conditions"].as_array().and_then(|cs| {
                cs.iter()
                    .find(|c| {
                        (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
                    })
                    .cloned()
            });
            end = done.map(|c| (c["type"].as_str().unwrap_or_default().to_string(), job));
            end.is_some()
        },
    );
    let (kind, job) = end.expect("the Job's end");
    (kind, job)
}

/// The exit codes of Job `name`'s pods' sweep containers.
fn exit_codes(node: &Node, name: &str) -> Vec<i64> {
    let list = node.get(&["pods", "-n", NS, "-l", &format!("job-name={name}")]);
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| {
            p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
                .as_i64()
                .unwrap_or_else(|| panic!("pod of Job {name} not terminated: {:#}", p["status"]))
        })
        .collect()
}

pub async fn scenario(node: Arc<Node>) {
    let node = &*node;
    node.namespace(NS);
    node.apply("cron-gateways", &gateway_manifests(NS, 2));
    let urls = ready_gateways(node, NS, 2);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let args: Vec<String> = urls
        .iter()
        .map(|u| format!("--gateway={u}"))
        .chain(["--ttl=10s".into(), "--min-ttl=1s".into()])
        .collect();
    let values = json!({
        "mode": "cronjob", "crds": {"install": false},
        "cronjob": {"args": args, "backoffLimit": BACKOFF_LIMIT}
    });
    helm_chart(node, "install", RELEASE, NS, &values);
    let cron = node.get(&["cronjob", CRONJOB, "-n", NS]);
    assert_eq!(
        cron["spec"]["jobTemplate"]["spec"]["backoffLimit"], BACKOFF_LIMIT,
        "{:#}",
        cron["spec"]
    );

    // A sweep to completion: the stale group (on both replicas, as a load-balanced push leaves a
    // group's copies) goes, the fresh one stays.
    for u in &urls {
        push(&http, u, "stale").await;
    }
    tokio::time::sleep(Duration::from_secs(12)).await;
    for u in &urls {
        push(&http, u, "fresh").await;
    }
    node.kubectl(&[
        "create",
        "job",
        "sweep-ok",
        "-n",
        NS,
        &format!("--from=cronjob/{CRONJOB}"),
    ]);
    let (end, job) = job_end(node, "sweep-ok");
    assert_eq!(
        end,
        "Complete",
        "the sweep's Job: {:#}\n{}",
        job["status"],
        node.diagnostics()
    );
    assert_eq!(exit_codes(node, "sweep-ok"), [0], "the sweep's exit code");
    for u in &urls {
        assert_eq!(
            jobs(&http, u).await,
            ["fresh"],
            "groups on {u} after the sweep"
        );
    }

    // One replica down: its pod gone (the Deployment scaled to one), its address unanswered.
    node.kubectl(&[
        "scale",
        "deployment",
        "pushgateway",
        "-n",
        NS,
        "--replicas=1",
    ]);
    wait_for(
        node,
        "one gateway pod left",
        Duration::from_secs(120),
        || {
            let list = node.get(&[
                "pods",
                "-n",
                NS,
                "-l",
                "app.kubernetes.io/name=prometheus-pushgateway",
            ]);
            list["items"].as_array().is_some_and(|a| a.len() == 1)
        },
    );
    let alive = ready_gateways(node, NS, 1).remove(0);
    assert!(
        urls.contains(&alive),
        "the pod left is one of the two: {alive} {urls:?}"
    );
    push(&http, &alive, "stale-too").await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    node.kubectl(&[
        "create",
        "job",
        "sweep-down",
        "-n",
        NS,
        &format!("--from=cronjob/{CRONJOB}"),
    ]);
    let (end, job) = job_end(node, "sweep-down");
    assert_eq!(
        end, "Failed",
        "the Job with a replica down: {:#}",
        job["status"]
    );
    let failed = job["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Failed"))
        .expect("the Failed condition");
    assert_eq!(failed["reason"], "BackoffLimitExceeded", "{failed:#}");
    assert_eq!(
        job["status"]["failed"],
        BACKOFF_LIMIT + 1,
        "{:#}",
        job["status"]
    );
    // README, exit codes: 1 = a remote failed (some replica; the others were still handled).
    let codes = exit_codes(node, "sweep-down");
    assert_eq!(
        codes,
        vec![1; BACKOFF_LIMIT as usize + 1],
        "exit codes of the Job's pods"
    );
    // (Every group there is older than the TTL by the time a retry runs: all of them go.)
    let left = jobs(&http, &alive).await;
    assert!(
        left.is_empty(),
        "the replica that answered was not swept: {left:?}"
    );

    // `helm test` fails on a policy the controller would refuse: a TTL under the chart's minTtl.
    let policy = json!({"name": "too-short",
        "spec": {"static": {"urls": [alive]}, "ttl": "30s", "minTtl": "1s", "suspend": true}});
    let mut upgraded = values.clone();
    upgraded["policies"] = json!([policy]);
    upgraded["minTtl"] = json!("1m");
    helm_chart(node, "upgrade", RELEASE, NS, &upgraded);
    let out = helm_output(
        node,
        &["test", RELEASE, "--namespace", NS, "--timeout", "120s"],
    );
    assert!(
        !out.status.success(),
        "helm test passed with a policy under the floor:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let log = node.kubectl(&["logs", "-n", NS, &format!("pod/{CRONJOB}-test")]);
    assert!(
        log.contains("too-short") && log.contains("floor of 1m"),
        "the test pod's log names the policy and the floor:\n{log}"
    );
}
