//! Every query of the Grafana dashboard (`deploy/grafana/pgw-janitor-dashboard.json`) against a
//! real Prometheus that scrapes a real janitor (`run --policies`) sweeping two real gateways, and
//! the gateways themselves (`honor_labels: true`, as the dashboard expects). Each query must
//! answer series carrying every label its legend names, with a value for it.
//!
//! The policies make every panel have something to show: `expire` deletes groups as they age,
//! `dry` is a dry run, `guarded` plans more deletions than its `maxDeletions` and trips its guard.
//! The same setup evaluates every alert's expression of `deploy/prometheus/pgw-janitor-rules.yaml`
//! on these real series: the guard alert finds `guarded` and only it, the others find nothing.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::Proc;
use common::{free_port, janitor, GatewayOpts, TestGateway, TestPrometheus};
use serde_json::Value;

const DASHBOARD: &str = "deploy/grafana/pgw-janitor-dashboard.json";
const RULES: &str = "deploy/prometheus/pgw-janitor-rules.yaml";
const NAMESPACE: &str = "dash";
/// How Grafana writes a multi-value variable with every policy selected, inside `=~"..."`.
const POLICIES: &str = "expire|dry|guarded";
/// What Grafana puts for `$__rate_interval` with a 1s scrape interval, rounded up for safety.
const RATE_INTERVAL: &str = "30s";
const WAIT: Duration = Duration::from_secs(120);

fn policy(name: &str, gateways: &[&TestGateway], selector: &str, extra: &str) -> String {
    let urls = gateways
        .iter()
        .map(|g| format!("\"{}\"", g.base_url))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
         name: {name}\n  namespace: {NAMESPACE}\nspec:\n  static:\n    urls: [{urls}]\n  \
         selector: '{selector}'\n  ttl: 2s\n  minTtl: 1s\n  interval: 2s\n{extra}"
    )
}

/// The panels' queries: (panel title, expression as Grafana sends it, legend labels).
fn queries() -> Vec<(String, String, Vec<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD);
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let legend = regex::Regex::new(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}").unwrap();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap().to_string();
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$namespace", NAMESPACE)
                .replace("$policy", POLICIES)
                .replace("$__rate_interval", RATE_INTERVAL);
            assert!(!expr.contains('$'), "{title}: a variable left in {expr}");
            let labels = legend
                .captures_iter(t["legendFormat"].as_str().unwrap_or_default())
                .map(|c| c[1].to_string())
                .collect();
            out.push((title.clone(), expr, labels));
        }
    }
    out
}

/// An instant query's result series, as label maps (with the value under `__value__`).
async fn query(
    http: &reqwest::Client,
    prom: &TestPrometheus,
    expr: &str,
) -> Vec<BTreeMap<String, String>> {
    let resp = http
        .get(format!("{}/api/v1/query", prom.url))
        .query(&[("query", expr)])
        .send()
        .await
        .expect("query Prometheus");
    let doc: Value = resp.json().await.expect("Prometheus answers JSON");
    assert_eq!(doc["status"], "success", "{expr}: {doc}");
    doc["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut m: BTreeMap<String, String> = s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            m.insert("__value__".into(), s["value"][1].as_str().unwrap().into());
            m
        })
        .collect()
}

/// What is wrong with one query's answer: nothing when it has series, each with every legend
/// label set to a non-empty value.
fn problem(series: &[BTreeMap<String, String>], labels: &[String]) -> Option<String> {
    if series.is_empty() {
        return Some("no series".into());
    }
    for s in series {
        for l in labels {
            if s.get(l).is_none_or(|v| v.is_empty()) {
                return Some(format!("a series without {l}: {s:?}"));
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_answers_with_its_legend_labels_and_only_the_guard_alert_fires() {
    let gw1 = TestGateway::start(GatewayOpts::default());
    let gw2 = TestGateway::start(GatewayOpts::default());
    for (gw, n) in [(&gw1, "1"), (&gw2, "2")] {
        for job in ["old-", "keep-", "guarded-a-", "guarded-b-"] {
            gw.push(
                &[("job", &format!("{job}{n}")), ("instance", "host")],
                "x 1\n",
            )
            .await;
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let both = [&gw1, &gw2];
    for (file, text) in [
        (
            "expire.yaml",
            policy("expire", &both, r#"{job=~"old-.*"}"#, ""),
        ),
        (
            "dry.yaml",
            policy("dry", &both, r#"{job=~"keep-.*"}"#, "  dryRun: true\n"),
        ),
        (
            "guarded.yaml",
            policy(
                "guarded",
                &both,
                r#"{job=~"guarded-.*"}"#,
                "  maxDeletions:\n    count: 1\n",
            ),
        ),
    ] {
        std::fs::write(policies.join(file), text).unwrap();
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd: Command = janitor();
    cmd.args(["run", "--policies", policies.to_str().unwrap()])
        .args(["--listen", &listen, "--min-ttl", "1s"]);
    let mut run = Proc::spawn("pushgateway-janitor run", cmd, &dir.path().join("run.log"));
    if run
        .wait_ready(&listen, "/readyz", Duration::from_secs(30), false)
        .is_err()
    {
        panic!("the janitor's port was taken: {}", run.log_tail(20));
    }

    let scrape = format!(
        "  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      \
         - targets: [\"{}\", \"{}\"]\n    relabel_configs:\n      \
         - source_labels: [__address__]\n        target_label: pushgateway_replica\n  \
         - job_name: pgw-janitor\n    static_configs:\n      - targets: [\"{listen}\"]\n",
        gw1.address(),
        gw2.address()
    );
    let prom = TestPrometheus::start_with_scrape_configs(&scrape, None);
    let http = common::http_client();
    let queries = queries();
    assert!(queries.len() >= 10, "{} queries", queries.len());

    // Bounded: until every query answers as its legend needs, or WAIT has passed.
    let deadline = Instant::now() + WAIT;
    let mut answers = Vec::new();
    loop {
        answers.clear();
        for (title, expr, labels) in &queries {
            let series = query(&http, &prom, expr).await;
            answers.push((title, expr, problem(&series, labels), series));
        }
        let expired_gone = !gw1
            .has_group(&[("job", "old-1"), ("instance", "host")])
            .await
            && !gw2
                .has_group(&[("job", "old-2"), ("instance", "host")])
                .await;
        if expired_gone && answers.iter().all(|a| a.2.is_none()) {
            break;
        }
        if Instant::now() >= deadline {
            let bad: Vec<String> = answers
                .iter()
                .filter_map(|(t, e, p, _)| p.as_ref().map(|p| format!("{t}: {e}: {p}")))
                .collect();
            panic!(
                "after {WAIT:?}: expired groups gone: {expired_gone}; failing queries:\n{}\n\
                 janitor:\n{}\nprometheus:\n{}",
                bad.join("\n"),
                run.log_tail(20),
                prom.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // What the panels show is what happened.
    let by_title = |title: &str| -> Vec<BTreeMap<String, String>> {
        answers
            .iter()
            .filter(|a| a.0 == title)
            .flat_map(|a| a.3.clone())
            .collect()
    };
    let has = |title: &str, want: &[(&str, &str)]| {
        let series = by_title(title);
        assert!(
            series.iter().any(|s| want
                .iter()
                .all(|(k, v)| s.get(*k).map(String::as_str) == Some(*v))),
            "{title}: no series with {want:?}: {series:?}"
        );
    };
    has(
        "Deletions by reason and outcome",
        &[
            ("policy", "expire"),
            ("reason", "expired"),
            ("outcome", "deleted"),
        ],
    );
    has(
        "Deletions by reason and outcome",
        &[("policy", "guarded"), ("outcome", "aborted")],
    );
    has(
        "Dry runs: groups that would be deleted",
        &[("policy", "dry"), ("reason", "expired")],
    );
    has(
        "Sweeps by result",
        &[("policy", "expire"), ("result", "ok")],
    );
    has(
        "Sweeps by result",
        &[("policy", "guarded"), ("result", "guard_tripped")],
    );
    has("Guard trips", &[("policy", "guarded")]);
    has(
        "Replicas by state",
        &[("policy", "expire"), ("state", "ok"), ("__value__", "2")],
    );
    has(
        "Consecutive unreadable sweeps",
        &[("policy", "expire"), ("__value__", "0")],
    );
    // Three groups stay on each replica: keep-N and the two guarded ones.
    for gw in [&gw1, &gw2] {
        has(
            "Groups per gateway replica",
            &[("pushgateway_replica", &gw.address()), ("__value__", "3")],
        );
        has(
            "Oldest group per gateway replica",
            &[("pushgateway_replica", &gw.address())],
        );
    }
    // `guarded` too: its first sweep came before its groups were past the TTL.
    for p in ["expire", "dry", "guarded"] {
        has(
            "Time since last success",
            &[("namespace", NAMESPACE), ("policy", p)],
        );
    }

    // The alerts on the same real series.
    let rules: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(RULES)).unwrap(),
    )
    .unwrap();
    let mut evaluated = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let Some(name) = rule["alert"].as_str() else {
                continue;
            };
            let found = query(&http, &prom, rule["expr"].as_str().unwrap()).await;
            let policies: Vec<&str> = found
                .iter()
                .map(|s| s.get("policy").map_or("", String::as_str))
                .collect();
            if name == "PushgatewayJanitorGuardTripped" {
                assert_eq!(policies, ["guarded"], "{name}: {found:?}");
            } else {
                assert!(
                    found.is_empty(),
                    "{name} fires on a healthy setup: {found:?}"
                );
            }
            evaluated += 1;
        }
    }
    assert!(evaluated >= 8, "{evaluated} alerts evaluated");
}
