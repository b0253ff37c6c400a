//! `inspect` against real replicas: copies of one key on several replicas, a replica down, a
//! poisoned replica, with and without policies. Every test checks that nothing was deleted.

use crate::common;

use std::time::Duration;

use common::{
    janitor, run_bounded, sleep_past, GatewayOpts, TestGateway, TestPrometheus, Tripwire,
};
use serde_json::Value;

fn inspect(gateways: &[&TestGateway], args: &[&str]) -> (i32, String, String) {
    let mut cmd = janitor();
    cmd.arg("inspect");
    for gw in gateways {
        cmd.args(["--gateway", &gw.base_url]);
    }
    cmd.args(args);
    let out = run_bounded(cmd, Duration::from_secs(60));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

fn key<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == key)
        .unwrap_or_else(|| panic!("no key {key} in {report:#}"))
}

fn same_url(a: &Value, b: &str) -> bool {
    a.as_str().unwrap().trim_end_matches('/') == b.trim_end_matches('/')
}

/// Every group on a gateway with its push time: what must not change.
async fn state(gw: &TestGateway) -> Vec<(common::Key, Option<f64>)> {
    let mut out = Vec::new();
    for k in gw.groups().await {
        let pairs: Vec<(&str, &str)> = std::iter::once(("job", k["job"].as_str()))
            .chain(
                k.iter()
                    .filter(|(n, _)| n.as_str() != "job")
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            )
            .collect();
        out.push((k.clone(), gw.push_time(&pairs).await));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_down_and_poisoned_replicas_and_what_a_policy_would_do_with_nothing_deleted() {
    let old = TestGateway::start(GatewayOpts::default());
    let new = TestGateway::start(GatewayOpts::default());
    let poisoned = TestGateway::start(GatewayOpts::default());
    let mut down = TestGateway::start(GatewayOpts::default());
    down.stop();

    // One key pushed to two replicas at different times: the older copy is superseded.
    old.push(
        &[("job", "batch"), ("instance", "a")],
        "x 1\ny{k=\"1\"} 1\ny{k=\"2\"} 2\n",
    )
    .await;
    old.push(&[("job", "only-old")], "x 1\n").await;
    sleep_past(2.0).await;
    new.push(&[("job", "batch"), ("instance", "a")], "x 2\n")
        .await;
    poisoned.poison("p").await;

    let before = [state(&old).await, state(&new).await, state(&poisoned).await];
    let policy = [
        "--ttl",
        "1h",
        "--min-ttl",
        "1s",
        "--superseded-grace",
        "1s",
        "--selector",
        r#"{job!="only-old"}"#,
        "--output",
        "json",
    ];
    let (code, out, err) = inspect(&[&old, &new, &poisoned], &policy);
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    assert_eq!(report["policies"], serde_json::json!(["flags"]));
    assert_eq!(
        report["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "ok")
            .count(),
        3,
        "{report:#}"
    );

    // The copied key: two copies, newest first, each with its series and verdict.
    let batch = key(&report, r#"{instance="a", job="batch"}"#);
    assert_eq!(batch["replicas"], 2, "{batch:#}");
    let copies = batch["copies"].as_array().unwrap();
    assert!(same_url(&copies[0]["replica"], &new.base_url), "{batch:#}");
    assert!(same_url(&copies[1]["replica"], &old.base_url), "{batch:#}");
    let (young, aged) = (
        copies[0]["age_seconds"].as_f64().unwrap(),
        copies[1]["age_seconds"].as_f64().unwrap(),
    );
    assert!(young < aged && aged >= 2.0, "{batch:#}");
    assert_eq!(copies[0]["series"], 1);
    assert_eq!(copies[1]["series"], 3);
    assert_eq!(copies[0]["policies"][0]["would"], "keep", "{batch:#}");
    assert_eq!(copies[1]["policies"][0]["would"], "delete", "{batch:#}");
    assert_eq!(
        copies[1]["policies"][0]["reason"], "superseded",
        "{batch:#}"
    );

    // Outside the selector: shown, never touched.
    let only_old = key(&report, r#"{job="only-old"}"#);
    assert_eq!(
        only_old["copies"][0]["policies"][0]["would"],
        "not-selected"
    );

    // The poisoned replica: the phantom's failed push shows, and it would go as poison.
    let phantom = key(&report, r#"{instance="", job="p"}"#);
    let copy = &phantom["copies"][0];
    assert!(same_url(&copy["replica"], &poisoned.base_url));
    assert_eq!(copy["last_push_successful"], false, "{phantom:#}");
    assert_eq!(copy["push_time"], 0.0, "{phantom:#}");
    assert_eq!(copy["policies"][0]["reason"], "poison", "{phantom:#}");

    // Newest first by default: the freshest keys before the two-second-old one.
    let order: Vec<&str> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(order.last(), Some(&r#"{job="only-old"}"#), "{order:?}");
    assert_eq!(report["summary"]["keys"], 4, "{order:?}");
    assert_eq!(report["summary"]["would_delete"], 2, "{report:#}");

    // With a replica down: it is failed, with groups null (never empty), exit 1 like sweep; and
    // superseded is not decided while a replica is unread, as in a sweep.
    let (code, out, err) = inspect(&[&old, &new, &poisoned, &down], &policy);
    assert_eq!(code, 1, "{err}");
    let report = json(&out);
    let replicas = report["replicas"].as_array().unwrap();
    let down_view = replicas
        .iter()
        .find(|r| same_url(&r["url"], &down.base_url))
        .unwrap();
    assert_eq!(down_view["state"], "failed", "{down_view}");
    assert!(down_view["groups"].is_null(), "{down_view}");
    assert!(
        down_view["error"].as_str().unwrap().contains("refused"),
        "{down_view}"
    );
    assert_eq!(
        replicas.iter().filter(|r| r["state"] == "ok").count(),
        3,
        "{report:#}"
    );
    let batch = key(&report, r#"{instance="a", job="batch"}"#);
    assert_eq!(
        batch["copies"][1]["policies"][0]["would"], "keep",
        "{batch:#}"
    );
    assert!(
        !report["notes"].as_array().unwrap().is_empty(),
        "{report:#}"
    );

    // Read-only: every group still there, with the same push time.
    let after = [state(&old).await, state(&new).await, state(&poisoned).await];
    assert_eq!(before, after);
    assert_eq!(before[2].len(), 2, "the phantom is still there");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_policies_sort_limit_and_the_table() {
    let a = TestGateway::start(GatewayOpts::default());
    let b = TestGateway::start(GatewayOpts::default());
    a.push(&[("job", "zeta")], "x 1\n").await;
    b.push(&[("job", "zeta")], "x 1\n").await;
    a.push(&[("job", "alpha")], "x 1\n").await;
    let before = [state(&a).await, state(&b).await];

    let (code, out, err) = inspect(&[&a, &b], &["--output", "json", "--sort", "key"]);
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    assert_eq!(report["policies"], serde_json::json!([]));
    let keys: Vec<&str> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [r#"{job="alpha"}"#, r#"{job="zeta"}"#]);
    assert!(report["keys"][1]["copies"][0]["policies"]
        .as_array()
        .unwrap()
        .is_empty());

    let (_, out, _) = inspect(
        &[&a, &b],
        &["--output", "json", "--sort", "replicas", "--limit", "1"],
    );
    let report = json(&out);
    assert_eq!(report["keys"].as_array().unwrap().len(), 1);
    assert_eq!(report["keys"][0]["key"], r#"{job="zeta"}"#);
    assert_eq!(
        (
            report["summary"]["keys"].as_u64(),
            report["summary"]["shown"].as_u64()
        ),
        (Some(2), Some(1))
    );

    let (code, table, err) = inspect(&[&a, &b], &[]);
    assert_eq!(code, 0, "{err}");
    let zeta = table
        .lines()
        .position(|l| l.starts_with(r#"{job="zeta"}"#))
        .unwrap_or_else(|| panic!("{table}"));
    // The second copy sits right under the first, without repeating the key.
    let next = table.lines().nth(zeta + 1).unwrap();
    assert!(
        next.starts_with(' ') && (next.contains(&a.base_url) || next.contains(&b.base_url)),
        "{table}"
    );
    assert!(table.contains("nothing was deleted"), "{table}");

    assert_eq!(before, [state(&a).await, state(&b).await]);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_policy_files_each_policy_has_its_verdict() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "nightly")], "x 1\n").await;
    gw.push(&[("job", "ci")], "x 1\n").await;
    sleep_past(2.0).await;
    let before = state(&gw).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = |name: &str, ttl: &str, selector: &str| {
        format!(
            "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
             name: {name}\n  namespace: team\nspec:\n  static:\n    urls: [\"http://elsewhere.invalid:9091\"]\n  \
             ttl: {ttl}\n  minTtl: 1s\n  selector: '{selector}'\n"
        )
    };
    std::fs::write(
        dir.path().join("p.yaml"),
        format!(
            "{}---\n{}",
            policy("short", "2s", r#"{job="nightly"}"#),
            // A service source needs a cluster to sweep, not to say what it would do.
            policy("long", "1h", "").replace(
                "static:\n    urls: [\"http://elsewhere.invalid:9091\"]",
                "service:\n    name: pgw"
            )
        ),
    )
    .unwrap();
    let written = std::fs::read_to_string(dir.path().join("p.yaml")).unwrap();
    assert!(written.contains("service:\n    name: pgw"), "{written}");
    let (code, out, err) = inspect(
        &[&gw],
        &[
            "--policies",
            dir.path().to_str().unwrap(),
            "--min-ttl",
            "1s",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    assert_eq!(
        report["policies"],
        serde_json::json!(["team/short", "team/long"])
    );
    let verdicts = |k: &str| -> Vec<(String, String)> {
        key(&report, k)["copies"][0]["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["policy"].as_str().unwrap().into(),
                    v["would"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let pair = |p: &str, w: &str| (p.to_string(), w.to_string());
    assert_eq!(
        verdicts(r#"{job="nightly"}"#),
        [pair("team/short", "delete"), pair("team/long", "keep")]
    );
    assert_eq!(
        verdicts(r#"{job="ci"}"#),
        [
            pair("team/short", "not-selected"),
            pair("team/long", "keep")
        ]
    );
    assert_eq!(before, state(&gw).await);

    // A broken policy file is refused before anything is read.
    std::fs::write(dir.path().join("p.yaml"), policy("bad", "7x", "")).unwrap();
    let (code, _, err) = inspect(&[&gw], &["--policies", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("team/bad"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_from_prometheus_targets_as_sweep_finds_them_and_a_pushed_up_is_refused() {
    let a = TestGateway::start(GatewayOpts::default());
    let b = TestGateway::start(GatewayOpts::default());
    let fake = Tripwire::start();
    a.push(&[("job", "batch")], "x 1\n").await;
    b.push(&[("job", "batch")], "x 1\n").await;
    // Anyone who can push can add an up series naming any host.
    let status = a
        .push_raw_path(
            &format!("metrics/job/pushgateway/instance/{}", fake.address()),
            "up 1\n",
        )
        .await;
    assert!(
        status == 200 || status == 202,
        "fake push answered {status}"
    );
    let prom = TestPrometheus::start("pushgateway", &[a.address(), b.address()]);
    prom.wait_for_up_matching("pushgateway", |up| up.len() == 3, Duration::from_secs(30))
        .await;
    let before = [state(&a).await, state(&b).await];

    let (code, out, err) = inspect(
        &[],
        &[
            "--prometheus",
            &prom.url,
            "--job",
            "pushgateway",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    let mut urls: Vec<String> = report["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["url"].as_str().unwrap().trim_end_matches('/').to_string())
        .collect();
    urls.sort();
    let mut want = vec![
        a.base_url.trim_end_matches('/').to_string(),
        b.base_url.trim_end_matches('/').to_string(),
    ];
    want.sort();
    assert_eq!(urls, want, "{report:#}");
    assert_eq!(
        report["refused"][0]["instance"],
        fake.address(),
        "{report:#}"
    );
    assert_eq!(fake.connections(), 0, "the fake address was contacted");
    assert_eq!(
        key(&report, r#"{job="batch"}"#)["replicas"],
        2,
        "{report:#}"
    );
    assert_eq!(before, [state(&a).await, state(&b).await]);
}
