//! The error backoff on the real server. A policy whose Prometheus is down fails discovery and
//! retries after 1s, 2s, 4s, 4s (`--error-backoff 1s --max-error-backoff 4s`) and never sooner:
//! the status writes of its failures, which come back as watch events, do not retry early. The
//! status says `Degraded=True`/`DiscoveryFailed`, one Warning event says it once, the gateway
//! keeps its groups. With Prometheus back on its port the next retry sweeps, the status says so,
//! and a later failure backs off from the first step again.

use serde_json::json;

use super::setup::*;
use crate::common::k8s::{wait_until, Cluster, Controller};
use crate::common::{key, sleep_past, GatewayOpts, TestGateway, TestPrometheus};
use pushgateway_janitor::crd::PushgatewayRetention;

/// The `(failures in a row, backoff seconds)` of each "backing off" line about `policy`.
fn backoffs(ctl: &Controller, policy: &str) -> Vec<(u64, f64)> {
    ctl.log_events()
        .iter()
        .filter(|e| e["message"] == "backing off" && e["policy"] == policy)
        .map(|e| {
            (
                e["failures"].as_u64().unwrap_or(0),
                e["backoff_seconds"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

fn attempts(ctl: &Controller, policy: &str) -> usize {
    ctl.log_events()
        .iter()
        .filter(|e| e["message"] == "cannot find the replicas")
        .filter(|e| e["span"]["policy"] == policy)
        .count()
}

fn reason(p: &PushgatewayRetention, type_: &str) -> String {
    condition(p, type_)
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_source_backs_off_recovers_and_says_so_in_status() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::new("backoff").await;
    let gw = TestGateway::start(GatewayOpts::default());
    let mut prom = TestPrometheus::start("pushgateway", &[gw.address()]);
    prom.wait_for_up("pushgateway", 1, SOON).await;
    prom.stop(); // its port now refuses connections
    let mut opts = controller_opts("ctl-a", &cluster.ns);
    opts.extra_args
        .extend(["--error-backoff", "1s", "--max-error-backoff", "4s"].map(String::from));
    let ctl = Controller::start(&opts);
    let s = Setup {
        api: cluster.api(),
        cluster,
        gw,
        ctl,
    };
    let policy = format!("{}/flaky", s.cluster.ns);
    s.gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create(
        "flaky",
        spec_for(
            &s.gw,
            json!({"static": null, "prometheus": {"url": prom.url, "job": "pushgateway"}}),
        ),
    )
    .await;

    let failing = wait_until(SOON, || async { backoffs(&s.ctl, &policy).len() >= 4 }).await;
    assert!(failing, "fewer than 4 retries\n{}", s.ctl.log_tail(30));
    let p = s.get("flaky").await;
    assert!(condition_is(&p, "Degraded", "True"), "{:#?}", p.status);
    assert_eq!(reason(&p, "Degraded"), "DiscoveryFailed");
    assert!(condition_is(&p, "Ready", "False"), "{:#?}", p.status);
    let warnings: Vec<_> = s
        .events_about("flaky")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("DiscoveryFailed"))
        .collect();
    assert_eq!(warnings.len(), 1, "one event per change: {warnings:#?}");
    assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    assert!(s.gw.groups().await.contains(&key(STALE_1)));

    prom.start_again();
    s.wait_gone(&[STALE_1]).await;
    let p = s
        .wait_status("flaky", "Ready=True, Degraded=False", |p| {
            condition_is(p, "Ready", "True") && condition_is(p, "Degraded", "False")
        })
        .await;
    assert_eq!(reason(&p, "Degraded"), "AllReplicasHandled");
    assert!(p.status.as_ref().unwrap().last_sweep.is_some());

    // Every attempt was a retry at its time: doubling from 1s to the 4s cap, one attempt per
    // failure (none in between), each counted in the metrics (by its category: a refused
    // connection, then perhaps a Prometheus that has no `up` yet).
    let seen = backoffs(&s.ctl, &policy);
    let want: Vec<(u64, f64)> = (1..=seen.len() as u64)
        .map(|n| (n, 2f64.powi(n as i32 - 1).min(4.0)))
        .collect();
    assert_eq!(seen, want, "{}", s.ctl.log_tail(30));
    assert_eq!(attempts(&s.ctl, &policy), seen.len());
    let errors = s
        .ctl
        .metric_sum("pgw_janitor_reconcile_errors_total", &[])
        .await;
    assert_eq!(errors, seen.len() as f64);

    // A success resets the backoff: the next failure waits the first step again.
    prom.stop();
    let again = wait_until(SOON, || async {
        backoffs(&s.ctl, &policy).len() > seen.len()
    })
    .await;
    assert!(again, "{}", s.ctl.log_tail(30));
    assert_eq!(backoffs(&s.ctl, &policy)[seen.len()], (1, 1.0));
}
