//! Point 6: leader election on a Lease of the real server. Two controller processes: exactly
//! one sweeps; after `kill -9` of the leader the other takes over once the Lease expires; no
//! group is deleted by both, counted from the DELETEs each process reports in its log.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;

use super::setup::*;
use crate::common::k8s::{wait_until, Cluster, Controller, LeaseOpts};
use crate::common::{sleep_past, GatewayOpts, TestGateway};

const LEASE_SECS: u64 = 4;

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases.get_opt(name).await.ok()??.spec?.holder_identity
}

#[tokio::test(flavor = "multi_thread")]
async fn one_instance_sweeps_and_the_other_takes_over_after_kill_9() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::new("leader").await;
    let api = cluster.api();
    let leases: Api<Lease> = cluster.api();
    let gw = TestGateway::start(GatewayOpts::default());
    let lease = LeaseOpts {
        name: "pgw-janitor-e2e".into(),
        namespace: cluster.ns.clone(),
        duration: format!("{LEASE_SECS}s"),
    };
    let mut ctls: Vec<Controller> = ["ctl-a", "ctl-b"]
        .iter()
        .map(|pod| {
            let mut opts = controller_opts(pod, &cluster.ns);
            opts.leader_election = Some(lease.clone());
            Controller::start(&opts)
        })
        .collect();
    let policy_key = format!("{}/ha", cluster.ns);
    let sent = |c: &Controller| c.log_sum("swept", &policy_key, "deletes_sent");
    let swept = |c: &Controller| {
        c.log_events()
            .iter()
            .filter(|e| e["message"] == "swept" || e["message"] == "swept: nothing to do")
            .count()
    };

    for job in ["one-1", "one-2", "one-3"] {
        gw.push(&[("job", job)], "x 1\n").await;
    }
    sleep_past(TTL_SECS).await;
    api.create(&Default::default(), &policy("ha", spec_for(&gw, json!({}))))
        .await
        .expect("create");
    let all_first: Vec<&[(&str, &str)]> = vec![
        &[("job", "one-1")],
        &[("job", "one-2")],
        &[("job", "one-3")],
    ];
    wait_gone(&gw, &all_first, &ctls[0]).await;
    // Several sweeps in all, so a second sweeper would have shown itself.
    let several = wait_until(SOON, || async { swept(&ctls[0]) + swept(&ctls[1]) >= 3 }).await;
    assert!(
        several,
        "fewer than 3 sweeps\nctl-a:\n{}\nctl-b:\n{}",
        ctls[0].log_tail(20),
        ctls[1].log_tail(20)
    );
    let sweeps = [swept(&ctls[0]), swept(&ctls[1])];
    assert!(
        (sweeps[0] == 0) != (sweeps[1] == 0),
        "exactly one instance should sweep, sweeps: {sweeps:?}"
    );
    let leader = if sweeps[0] > 0 { 0 } else { 1 };
    let follower = 1 - leader;
    assert_eq!(
        holder(&leases, &lease.name).await.as_deref(),
        Some(ctls[leader].name.as_str())
    );
    assert_eq!(
        sent(&ctls[leader]),
        3,
        "the leader's DELETEs\n{}",
        ctls[leader].log_tail(20)
    );
    assert_eq!(sent(&ctls[follower]), 0, "the follower's DELETEs");

    // kill -9: no release, so the other waits for the Lease to expire, then sweeps.
    ctls[leader].kill();
    let killed = Instant::now();
    for job in ["two-1", "two-2"] {
        gw.push(&[("job", job)], "x 1\n").await;
    }
    let bound = Duration::from_secs(LEASE_SECS * 3) + SOON;
    let took_over = wait_until(bound, || async {
        holder(&leases, &lease.name).await.as_deref() == Some(ctls[follower].name.as_str())
    })
    .await;
    assert!(
        took_over,
        "no takeover within {bound:?}\n{}",
        ctls[follower].log_tail(30)
    );
    println!(
        "takeover {:?} after kill -9 (lease duration {LEASE_SECS}s)",
        killed.elapsed()
    );
    sleep_past(TTL_SECS).await;
    let all_second: Vec<&[(&str, &str)]> = vec![&[("job", "two-1")], &[("job", "two-2")]];
    wait_gone(&gw, &all_second, &ctls[follower]).await;
    let logged = wait_until(SOON, || async { sent(&ctls[follower]) >= 2 }).await;
    assert!(logged, "{}", ctls[follower].log_tail(20));
    // Each group went by exactly one DELETE, from one process.
    assert_eq!(
        (sent(&ctls[leader]), sent(&ctls[follower])),
        (3, 2),
        "DELETEs per process (leader, follower)"
    );
    assert!(gw.groups().await.is_empty(), "{:?}", gw.groups().await);
}
