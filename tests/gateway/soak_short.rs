//! The production layout of CONTEXT.md, short (issue #11; the long run is `scripts/soak.sh`): a
//! real nginx round-robins pushes over 3 real gateways, so each push of a group lands on another
//! replica and the others keep older copies. Pushes carry a sequence number (`soak_seq`). The
//! janitor (`run --policies --once`, two policies: superseded copies of the live job, a short TTL
//! for a job nobody pushes any more) sweeps between push rounds and once after the pushers stop.
//!
//! What is deterministic, and asserted, is the state after the last sweep: every group keeps its
//! newest copy with its last value, and no older copy outlives the grace (plus the gateways'
//! `Date` header resolution). Sweeps never run while a push is in flight here: a push that lands
//! between the janitor's read and its DELETE is lost (the gateway has no conditional delete), and
//! how often that happens under load is what `scripts/soak.sh` measures, not a test.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{gauge_value, janitor, run_bounded, GatewayOpts, TestGateway, TestNginx};
use serde_json::Value;

const GROUPS: usize = 20;
const ROUNDS: usize = 8;
/// Between rounds: well over the grace plus the `Date` slack, so copies two rounds old are stale.
const ROUND_GAP: Duration = Duration::from_secs(2);
const GRACE_SECS: f64 = 1.0;
/// Each replica's age is measured on its `Date` header (whole seconds), read at slightly different
/// moments: two copies' ages may be off by up to this against their push times.
const DATE_SLACK_SECS: f64 = 2.0;

fn policies(dir: &std::path::Path, gateways: &[TestGateway]) -> std::path::PathBuf {
    let urls = gateways
        .iter()
        .map(|g| format!("\"{}\"", g.base_url))
        .collect::<Vec<_>>()
        .join(", ");
    let doc = |name: &str, body: &str| {
        format!(
            "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
             name: {name}\n  namespace: soak\nspec:\n  static:\n    urls: [{urls}]\n  minTtl: 1s\n{body}"
        )
    };
    let text = format!(
        "{}---\n{}",
        doc(
            "superseded",
            "  ttl: 1h\n  selector: '{job=\"soak\"}'\n  superseded:\n    enabled: true\n    grace: 1s\n"
        ),
        doc(
            "expired",
            "  ttl: 3s\n  selector: '{job=\"gone\"}'\n  superseded:\n    enabled: false\n"
        ),
    );
    let file = dir.join("soak.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

fn sweep_once(file: &std::path::Path) -> Vec<Value> {
    let mut cmd = janitor();
    cmd.args(["run", "--policies", file.to_str().unwrap(), "--once"])
        .args(["--min-ttl", "1s", "--output", "json"]);
    let out = run_bounded(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reports: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    reports
}

/// Every copy of every `soak` group: instance → [(replica, push time, seq)].
async fn copies(gateways: &[TestGateway]) -> BTreeMap<String, Vec<(usize, f64, f64)>> {
    let mut all: BTreeMap<String, Vec<(usize, f64, f64)>> = BTreeMap::new();
    for (i, gw) in gateways.iter().enumerate() {
        for g in gw.groups_json().await {
            if g["labels"]["job"] != "soak" {
                continue;
            }
            let instance = g["labels"]["instance"].as_str().unwrap().to_string();
            let pushed = gauge_value(&g, "push_time_seconds").unwrap();
            let seq = gauge_value(&g, "soak_seq").expect("every push carries soak_seq");
            all.entry(instance).or_default().push((i, pushed, seq));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_round_robin_every_group_keeps_its_newest_copy_and_no_older_copy_outlives_the_grace()
{
    let _heavy = common::heavy().await;
    let gateways: Vec<TestGateway> = (0..3)
        .map(|_| TestGateway::start(GatewayOpts::default()))
        .collect();
    let servers: String = gateways
        .iter()
        .map(|g| format!("server {};", g.address()))
        .collect();
    let nginx = TestNginx::start(
        &format!("upstream pgw {{ {servers} }}"),
        "location / { proxy_pass http://pgw; }",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = policies(dir.path(), &gateways);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let push = |path: String, body: String| {
        let req = http
            .put(format!("{}/{path}", nginx.url))
            .header("Content-Type", "text/plain; version=0.0.4")
            .body(body);
        async move {
            let resp = req.send().await.expect("push through nginx");
            assert!(resp.status().is_success(), "push {path}: {}", resp.status());
        }
    };
    // A job nobody pushes any more: its copies must go after the 3s TTL, wherever they landed.
    for k in 0..3 {
        push(format!("metrics/job/gone/instance/g{k}"), "x 1\n".into()).await;
    }
    let mut pushes = 3;
    let mut deleted: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..ROUNDS {
        for g in 0..GROUPS {
            let body = format!("# TYPE soak_seq gauge\nsoak_seq {round}\n");
            push(format!("metrics/job/soak/instance/g{g}"), body).await;
            pushes += 1;
        }
        tokio::time::sleep(ROUND_GAP).await;
        if round == ROUNDS / 2 {
            // A sweep between rounds, never during one.
            for r in sweep_once(&file) {
                for a in r["report"]["actions"].as_array().unwrap() {
                    *deleted
                        .entry(a["reason"].as_str().unwrap().into())
                        .or_default() += u64::from(a["outcome"] == "deleted");
                }
            }
        }
    }
    for r in sweep_once(&file) {
        for a in r["report"]["actions"].as_array().unwrap() {
            *deleted
                .entry(a["reason"].as_str().unwrap().into())
                .or_default() += u64::from(a["outcome"] == "deleted");
        }
    }
    println!("pushes: {pushes}; deleted by reason: {deleted:?}");

    let all = copies(&gateways).await;
    assert_eq!(all.len(), GROUPS, "every group is still there: {all:?}");
    let last = (ROUNDS - 1) as f64;
    for (instance, copies) in &all {
        let newest = copies.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        assert_eq!(
            newest.2, last,
            "{instance}: the newest copy has the last value: {copies:?}"
        );
        for c in copies {
            assert!(
                newest.1 - c.1 <= GRACE_SECS + DATE_SLACK_SECS,
                "{instance}: a copy {:.1}s older than the newest outlived the grace: {copies:?}",
                newest.1 - c.1
            );
        }
    }
    for gw in &gateways {
        assert_eq!(gw.count_job("gone").await, 0, "expired everywhere");
    }
    // Round robin really spread the pushes: every replica took some.
    for gw in &gateways {
        assert!(
            gw.count_job("soak").await > 0,
            "{} holds no copy at all",
            gw.base_url
        );
    }
    assert!(deleted.get("superseded").copied().unwrap_or(0) > 0);
    assert_eq!(deleted.get("expired").copied(), Some(3));
}
