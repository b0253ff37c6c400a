//! A leader cut off from the API server (a stalled proxy between them: its renewals hang) stops
//! deleting before its Lease expires, in the middle of a sweep, and the other replica takes over
//! and deletes the rest: no group is deleted by both, and the cut-off one stopped before the
//! other began.

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::{json, Value};

use super::setup::*;
use super::stall_proxy::StallProxy;
use crate::common::k8s::{wait_until, Cluster, Controller, LeaseOpts};
use crate::common::{sleep_past, GatewayOpts, TestGateway};

const LEASE_SECS: u64 = 4;
const GROUPS: usize = 40;

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases.get_opt(name).await.ok()??.spec?.holder_identity
}

fn at(e: &Value) -> Timestamp {
    e["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a log line without a timestamp: {e}"))
}

/// The first log line of `ctl` with `message`.
fn first(ctl: &Controller, message: &str) -> Option<Value> {
    ctl.log_events()
        .into_iter()
        .find(|e| e["message"] == message)
}

/// The groups (`instance` label) `ctl` sent a DELETE for, from its delete log.
fn deleted_by(ctl: &Controller) -> BTreeSet<String> {
    ctl.log_events()
        .iter()
        .filter(|e| e["message"] == "group delete")
        .map(|e| e["group"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_cut_off_from_the_api_stops_mid_sweep_before_its_lease_expires() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::new("lease-cut").await;
    let api = cluster.api();
    let leases: Api<Lease> = cluster.api();
    let gw = TestGateway::start(GatewayOpts::default());
    gw.fill("stale", GROUPS, 8).await;
    let lease = LeaseOpts {
        name: "pgw-janitor-cut".into(),
        namespace: cluster.ns.clone(),
        duration: format!("{LEASE_SECS}s"),
    };
    let proxy = StallProxy::start(&cluster.server.url);
    let start = |pod: &str, kubeconfig| {
        let mut opts = controller_opts(pod, &cluster.ns);
        opts.leader_election = Some(lease.clone());
        opts.kubeconfig = kubeconfig;
        // Slow deletes: the sweep is still running when the link goes.
        opts.extra_args
            .extend(["--delete-rate", "4", "--delete-concurrency", "1"].map(String::from));
        Controller::start(&opts)
    };
    let a = start(
        "ctl-a",
        Some(cluster.server.write_kubeconfig_via("ctl-a", &proxy.url)),
    );
    let a_leads = wait_until(SOON, || async {
        holder(&leases, &lease.name).await.as_deref() == Some("ctl-a")
    })
    .await;
    assert!(a_leads, "ctl-a never took the Lease\n{}", a.log_tail(30));
    let b = start("ctl-b", None);

    sleep_past(TTL_SECS).await;
    api.create(
        &Default::default(),
        &policy("cut", spec_for(&gw, json!({}))),
    )
    .await
    .expect("create");
    let deleting = wait_until(SOON, || async { gw.count_job("stale").await <= GROUPS - 3 }).await;
    assert!(deleting, "ctl-a is not deleting\n{}", a.log_tail(30));
    proxy.stall();

    let bound = SOON + std::time::Duration::from_secs(LEASE_SECS * 3);
    let took_over = wait_until(bound, || async {
        holder(&leases, &lease.name).await.as_deref() == Some("ctl-b")
    })
    .await;
    assert!(took_over, "no takeover\nctl-b:\n{}", b.log_tail(30));
    let all_gone = wait_until(SOON, || async { gw.count_job("stale").await == 0 }).await;
    assert!(
        all_gone,
        "{} groups left\nctl-b:\n{}",
        gw.count_job("stale").await,
        b.log_tail(30)
    );
    // ctl-a's sweep ended (its report is logged even though its status cannot be written).
    let a_swept = wait_until(SOON, || async { first(&a, "swept").is_some() }).await;
    assert!(a_swept, "ctl-a's sweep never ended\n{}", a.log_tail(30));

    // ctl-a stopped on its own clock, before its Lease expired and before ctl-b led.
    let stopped = first(&a, "lease not renewed in time: stop acting")
        .unwrap_or_else(|| panic!("ctl-a never stopped acting\n{}", a.log_tail(30)));
    let expires: Timestamp = stopped["expires"].as_str().unwrap().parse().unwrap();
    assert!(at(&stopped) < expires, "stopped after expiry: {stopped}");
    let b_leads = first(&b, "leading")
        .unwrap_or_else(|| panic!("ctl-b never said it leads\n{}", b.log_tail(30)));
    assert!(at(&stopped) < at(&b_leads), "{stopped}\n{b_leads}");

    // ctl-b logs its deletes once they are confirmed, after the gateway already shows them
    // gone: wait for its sweep's end before counting them.
    let b_swept = wait_until(SOON, || async { first(&b, "swept").is_some() }).await;
    assert!(b_swept, "ctl-b's sweep never ended\n{}", b.log_tail(30));

    // The sweep in flight stopped: the rest was reported as not attempted, and never sent.
    let swept = first(&a, "swept").unwrap();
    let by_a = deleted_by(&a);
    let by_b = deleted_by(&b);
    assert!(!by_a.is_empty() && !by_b.is_empty(), "{by_a:?} {by_b:?}");
    assert_eq!(
        swept["deletes_sent"].as_u64(),
        Some(by_a.len() as u64),
        "{swept}"
    );
    assert_eq!(
        swept["failed"].as_u64(),
        Some(1),
        "ctl-a's replica failed: {swept}"
    );
    assert!(
        by_a.is_disjoint(&by_b),
        "deleted by both: {:?}",
        by_a.intersection(&by_b).collect::<Vec<_>>()
    );
    assert_eq!(by_a.len() + by_b.len(), GROUPS, "{by_a:?}\n{by_b:?}");
    // ctl-a sent nothing after it stopped: every DELETE it logged was confirmed before ctl-b's
    // first, since ctl-b's read found those groups already gone.
    let b_first_delete = b
        .log_events()
        .into_iter()
        .find(|e| e["message"] == "group delete")
        .unwrap();
    for e in a
        .log_events()
        .iter()
        .filter(|e| e["message"] == "group delete")
    {
        assert_eq!(e["outcome"], "deleted", "{e}");
        assert!(at(e) < at(&b_first_delete), "{e}\n{b_first_delete}");
    }

    // The link back: ctl-a's manager finds the Lease taken and says so; it acts no more.
    proxy.resume();
    let follows = wait_until(SOON, || async {
        a.log_events()
            .iter()
            .any(|e| e["message"] == "lease manager: leadership changed" && e["held"] == false)
    })
    .await;
    assert!(
        follows,
        "ctl-a never saw the Lease taken\n{}",
        a.log_tail(30)
    );
    assert_eq!(holder(&leases, &lease.name).await.as_deref(), Some("ctl-b"));
}
