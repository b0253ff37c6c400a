//! The `sweep` command end to end against real Pushgateway replicas (Debian's
//! `prometheus-pushgateway`) and a real Prometheus, started on loopback ports by the harness.
//!
//! Ages: the gateway stamps `push_time_seconds` with its own clock and nothing can backdate it, so
//! these tests use TTLs of a few seconds (with `--min-ttl 1s`) and sleep past them.

mod common;

use common::{sleep_past, GatewayOpts, TestGateway, TestNginx, TestPrometheus};
use serde_json::Value;

fn run(args: &[&str]) -> (i32, Value, String) {
    common::sweep_json(args)
}

fn outcomes(report: &Value) -> Vec<(String, String, String)> {
    report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"].to_string(),
                a["reason"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const AWKWARD: &[&str] = &[
    "/var/lib/x",
    "with space",
    "100%",
    "a+b",
    "k=v",
    "user@host",
    "#frag",
    "what?",
    "grüße/日本",
    "",
    "//",
    "=",
];

#[tokio::test]
async fn expired_groups_with_awkward_label_values_are_deleted_and_fresh_ones_stay() {
    let gw = TestGateway::start(GatewayOpts::default());
    for (i, value) in AWKWARD.iter().enumerate() {
        gw.push(
            &[("job", "batch"), ("path", value), ("n", &i.to_string())],
            "rows 1\n",
        )
        .await;
    }
    gw.push(&[("job", "batch")], "rows 1\n").await;
    gw.push(&[("job", "batch-b"), ("instance", "")], "other 1\n")
        .await;
    sleep_past(3.0).await;
    gw.push(&[("job", "fresh"), ("path", "/still here")], "rows 1\n")
        .await;

    let (code, report, stderr) = run(&["--gateway", &gw.base_url, "--ttl", "3s"]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    let groups = gw.groups().await;
    assert_eq!(groups.len(), 1, "only the fresh group remains: {groups:?}");
    assert_eq!(groups[0].get("job").map(String::as_str), Some("fresh"));
    assert_eq!(report["summary"]["deleted"], AWKWARD.len() + 2);
    assert!(outcomes(&report)
        .iter()
        .all(|(_, reason, outcome)| reason == "expired" && outcome == "deleted"));
}

#[tokio::test]
async fn dry_run_reports_what_would_go_and_deletes_nothing() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old"), ("instance", "a")], "x 1\n").await;
    sleep_past(2.0).await;
    gw.push(&[("job", "new")], "x 1\n").await;
    let (code, report, _) = run(&["--gateway", &gw.base_url, "--ttl", "2s", "--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        outcomes(&report),
        vec![(
            r#"{"instance":"a","job":"old"}"#.to_string(),
            "expired".to_string(),
            "would-delete".to_string()
        )]
    );
    assert_eq!(gw.groups().await.len(), 2, "dry run deleted nothing");
}

#[tokio::test]
async fn a_stale_copy_behind_a_load_balancer_is_superseded_and_the_fresh_copy_stays() {
    let r0 = TestGateway::start(GatewayOpts::default());
    let r1 = TestGateway::start(GatewayOpts::default());
    let key = [("job", "nightly"), ("instance", "etl")];
    r0.push(&key, "rows 1\n").await;
    sleep_past(3.0).await;
    r1.push(&key, "rows 2\n").await;
    let (code, report, stderr) = run(&[
        "--gateway",
        &r0.base_url,
        "--gateway",
        &r1.base_url,
        "--ttl",
        "1h",
        "--superseded-grace",
        "1s",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !r0.has_group(&key).await,
        "the older copy on replica 0 is gone"
    );
    assert!(
        r1.has_group(&key).await,
        "the newest copy on replica 1 stays"
    );
    let actions = &report["actions"];
    assert_eq!(actions.as_array().unwrap().len(), 1);
    assert_eq!(actions[0]["reason"], "superseded");
    assert_eq!(actions[0]["gateway"], r0.base_url.as_str());

    // With superseded detection off, nothing younger than the TTL goes.
    r0.push(&key, "rows 1\n").await;
    sleep_past(2.0).await;
    r1.push(&key, "rows 2\n").await;
    let (code, report, _) = run(&[
        "--gateway",
        &r0.base_url,
        "--gateway",
        &r1.base_url,
        "--ttl",
        "1h",
        "--no-superseded",
    ]);
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["planned"], 0);
    assert!(r0.has_group(&key).await && r1.has_group(&key).await);
}

#[tokio::test]
async fn a_poisoned_replica_is_healed_and_its_real_group_stays() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.poison("a").await;
    let (code, report, stderr) = run(&["--gateway", &gw.base_url, "--ttl", "1h"]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    let actions = outcomes(&report);
    assert_eq!(
        actions,
        vec![(
            r#"{"instance":"","job":"a"}"#.to_string(),
            "poison".to_string(),
            "deleted".to_string()
        )]
    );
    assert!(gw.has_group(&[("job", "a")]).await, "the real group stays");
    assert_eq!(gw.get("metrics").await.0, 200, "/metrics answers again");
}

#[tokio::test]
async fn a_replica_that_is_down_is_reported_and_the_others_are_still_swept() {
    let up = TestGateway::start(GatewayOpts::default());
    let mut down = TestGateway::start(GatewayOpts::default());
    up.push(&[("job", "old")], "x 1\n").await;
    down.stop();
    sleep_past(2.0).await;
    let (code, report, _) = run(&[
        "--gateway",
        &up.base_url,
        "--gateway",
        &down.base_url,
        "--ttl",
        "2s",
    ]);
    assert_eq!(code, 1, "a failed replica makes exit code 1");
    assert!(up.groups().await.is_empty(), "the live replica was swept");
    let failed: Vec<&Value> = report["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["url"], down.base_url.as_str());
    assert!(
        failed[0]["groups"].is_null(),
        "an unreachable replica is never counted as empty"
    );
    assert!(failed[0]["error"]
        .as_str()
        .unwrap()
        .contains(&down.address()));
}

#[tokio::test]
async fn replicas_found_through_prometheus_include_down_and_poisoned_ones() {
    let healthy = TestGateway::start(GatewayOpts::default());
    let poisoned = TestGateway::start(GatewayOpts::default());
    let mut down = TestGateway::start(GatewayOpts::default());
    down.stop();
    poisoned.poison("p").await;
    healthy.push(&[("job", "old")], "x 1\n").await;
    let prom = TestPrometheus::start(
        "pushgateway",
        &[healthy.address(), poisoned.address(), down.address()],
    );
    prom.wait_for_up("pushgateway", 3, std::time::Duration::from_secs(30))
        .await;
    sleep_past(2.0).await;
    let (code, report, stderr) = run(&[
        "--prometheus",
        &prom.url,
        "--job",
        "pushgateway",
        "--ttl",
        "2s",
    ]);
    assert_eq!(code, 1, "the down replica fails the run: {stderr}");
    assert_eq!(report["summary"]["replicas"], 3);
    assert_eq!(report["summary"]["replicas_failed"], 1);
    assert!(healthy.groups().await.is_empty());
    assert_eq!(
        poisoned.get("metrics").await.0,
        200,
        "the poisoned replica was healed"
    );
}

#[tokio::test]
async fn prometheus_down_is_a_failed_run_that_touches_nothing() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let (code, report, _) = run(&["--prometheus", &dead, "--job", "pushgateway", "--ttl", "1s"]);
    assert_eq!(code, 1);
    assert!(report["summary"]["error"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1"));
    assert_eq!(gw.groups().await.len(), 1);
}

#[tokio::test]
async fn wipe_uses_the_admin_api_where_it_is_on_and_deletes_group_by_group_where_it_is_off() {
    let admin = TestGateway::start(GatewayOpts {
        admin_api: true,
        ..Default::default()
    });
    let plain = TestGateway::start(GatewayOpts::default());
    for gw in [&admin, &plain] {
        gw.push(&[("job", "a")], "x 1\n").await;
        gw.push(&[("job", "b"), ("path", "/x")], "x 1\n").await;
    }
    let (code, report, stderr) = run(&[
        "--gateway",
        &admin.base_url,
        "--gateway",
        &plain.base_url,
        "--action",
        "wipe",
    ]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert!(admin.groups().await.is_empty());
    assert!(plain.groups().await.is_empty());
    let replicas = report["replicas"].as_array().unwrap();
    let by_url = |u: &str| replicas.iter().find(|r| r["url"] == u).unwrap();
    assert_eq!(by_url(&admin.base_url)["admin_wipe"], true);
    assert_eq!(by_url(&plain.base_url)["admin_wipe"], false);
    assert_eq!(report["summary"]["deleted"], 4);
}

#[tokio::test]
async fn wipe_with_a_selector_never_touches_groups_outside_it_even_with_the_admin_api() {
    let admin = TestGateway::start(GatewayOpts {
        admin_api: true,
        ..Default::default()
    });
    admin.push(&[("job", "nightly-a")], "x 1\n").await;
    admin.push(&[("job", "keep")], "x 1\n").await;
    let (code, report, _) = run(&[
        "--gateway",
        &admin.base_url,
        "--action",
        "wipe",
        "--selector",
        r#"{job=~"nightly-.*"}"#,
    ]);
    assert_eq!(code, 0);
    assert_eq!(report["replicas"][0]["admin_wipe"], false);
    assert!(admin.has_group(&[("job", "keep")]).await);
    assert!(!admin.has_group(&[("job", "nightly-a")]).await);
}

#[tokio::test]
async fn only_if_all_stale_spares_a_replica_with_a_fresh_group() {
    let stale = TestGateway::start(GatewayOpts::default());
    let mixed = TestGateway::start(GatewayOpts::default());
    stale.push(&[("job", "a")], "x 1\n").await;
    mixed.push(&[("job", "a")], "x 1\n").await;
    sleep_past(2.0).await;
    mixed.push(&[("job", "b")], "x 1\n").await;
    let (code, _, stderr) = run(&[
        "--gateway",
        &stale.base_url,
        "--gateway",
        &mixed.base_url,
        "--action",
        "wipe",
        "--only-if-all-stale",
        "--ttl",
        "2s",
        "--no-superseded",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stale.groups().await.is_empty());
    assert_eq!(
        mixed.groups().await.len(),
        2,
        "a replica with fresh data is not wiped"
    );
}

#[tokio::test]
async fn the_selector_limits_what_is_deleted() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "nightly-etl")], "x 1\n").await;
    gw.push(&[("job", "nightly-x"), ("env", "dev")], "x 1\n")
        .await;
    gw.push(&[("job", "hourly")], "x 1\n").await;
    sleep_past(2.0).await;
    let (code, _, _) = run(&[
        "--gateway",
        &gw.base_url,
        "--ttl",
        "2s",
        "--selector",
        r#"{job=~"nightly-.*", env!="dev"}"#,
    ]);
    assert_eq!(code, 0);
    assert!(!gw.has_group(&[("job", "nightly-etl")]).await);
    assert!(gw.has_group(&[("job", "nightly-x"), ("env", "dev")]).await);
    assert!(gw.has_group(&[("job", "hourly")]).await);
}

#[tokio::test]
async fn a_pusher_declared_ttl_is_honoured_within_bounds() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(
        &[("job", "short")],
        "# TYPE janitor_ttl_seconds gauge\njanitor_ttl_seconds 1\nx 1\n",
    )
    .await;
    gw.push(
        &[("job", "long")],
        "# TYPE janitor_ttl_seconds gauge\njanitor_ttl_seconds 86400\nx 1\n",
    )
    .await;
    gw.push(&[("job", "default")], "x 1\n").await;
    sleep_past(2.5).await;
    let (code, report, stderr) = run(&[
        "--gateway",
        &gw.base_url,
        "--ttl",
        "1h",
        "--ttl-from-metric",
        "janitor_ttl_seconds",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["summary"]["deleted"], 1);
    assert!(!gw.has_group(&[("job", "short")]).await);
    assert!(gw.has_group(&[("job", "long")]).await);
    assert!(gw.has_group(&[("job", "default")]).await);
}

#[tokio::test]
async fn guards_abort_before_the_first_delete_and_say_by_how_much() {
    let gw = TestGateway::start(GatewayOpts::default());
    for i in 0..5 {
        gw.push(&[("job", "j"), ("instance", &i.to_string())], "x 1\n")
            .await;
    }
    sleep_past(2.0).await;
    let (code, report, _) = run(&[
        "--gateway",
        &gw.base_url,
        "--ttl",
        "2s",
        "--max-deletions",
        "3",
    ]);
    assert_eq!(code, 3);
    let message = report["summary"]["guard"]["message"].as_str().unwrap();
    assert!(
        message.contains('5') && message.contains('3') && message.contains("2 over"),
        "{message}"
    );
    assert!(outcomes(&report).iter().all(|(_, _, o)| o == "aborted"));
    assert_eq!(gw.groups().await.len(), 5, "nothing deleted");

    let (code, report, _) = run(&[
        "--gateway",
        &gw.base_url,
        "--ttl",
        "2s",
        "--max-deletions-percent",
        "50",
    ]);
    assert_eq!(code, 3);
    assert_eq!(report["summary"]["guard"]["limit"], "max-deletions-percent");
    assert_eq!(gw.groups().await.len(), 5, "nothing deleted");
}

#[tokio::test]
async fn the_json_report_has_a_stable_shape() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let (code, report, _) = run(&["--gateway", &gw.base_url, "--ttl", "2s"]);
    assert_eq!(code, 0);
    for key in [
        "started_at",
        "duration_seconds",
        "dry_run",
        "action",
        "replicas",
        "actions",
        "summary",
    ] {
        assert!(report.get(key).is_some(), "report has {key}");
    }
    let replica = &report["replicas"][0];
    for key in [
        "url",
        "state",
        "error",
        "groups",
        "version",
        "admin_api",
        "max_delete_window_seconds",
    ] {
        assert!(replica.get(key).is_some(), "replica has {key}: {replica}");
    }
    assert_eq!(replica["state"], "ok");
    assert_eq!(replica["groups"], 1);
    let action = &report["actions"][0];
    for key in ["gateway", "labels", "reason", "age_seconds", "outcome"] {
        assert!(action.get(key).is_some(), "action has {key}");
    }
    assert!(action["age_seconds"].as_f64().unwrap() >= 2.0);
    assert_eq!(report["summary"]["exit_code"], 0);
}

#[tokio::test]
async fn instances_become_urls_under_the_route_prefix() {
    let gw = TestGateway::start(GatewayOpts {
        route_prefix: Some("/pgw".into()),
        ..Default::default()
    });
    gw.push(&[("job", "old")], "x 1\n").await;
    let prom = TestPrometheus::start("pushgateway", &[gw.address()]);
    // Prometheus scrapes the prefixed gateway at the wrong path and marks it down; that is
    // fine: discovery takes every target whatever its up value.
    prom.wait_for_up("pushgateway", 1, std::time::Duration::from_secs(30))
        .await;
    sleep_past(2.0).await;
    let (code, report, stderr) = run(&[
        "--prometheus",
        &prom.url,
        "--job",
        "pushgateway",
        "--gateway-path-prefix",
        "/pgw",
        "--ttl",
        "2s",
    ]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(report["replicas"][0]["url"], gw.base_url.as_str());
    assert!(gw.groups().await.is_empty());
}

/// The requests nginx proxied to the replica, in order: `METHOD PATH` without the query.
fn proxied(front: &TestNginx) -> Vec<String> {
    front
        .access_log()
        .lines()
        .filter_map(|l| l.split('"').nth(1))
        .filter_map(|req| {
            let mut parts = req.split(' ');
            let method = parts.next()?;
            let path = parts.next()?.split('?').next()?;
            Some(format!("{method} {path}"))
        })
        .collect()
}

#[tokio::test]
async fn an_old_plan_is_remade_from_a_fresh_read_before_deleting() {
    let gw = TestGateway::start(GatewayOpts::default());
    // nginx in front of the replica records every request the janitor sends, in order.
    let front = TestNginx::start(
        "",
        &format!("location / {{ proxy_pass http://{}; }}", gw.address()),
    );
    let base = format!("{}/", front.url);
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let reads_before_delete = |requests: &[String]| {
        let first_delete = requests
            .iter()
            .position(|r| r.starts_with("DELETE "))
            .unwrap_or_else(|| panic!("no DELETE sent: {requests:?}"));
        requests[..first_delete]
            .iter()
            .filter(|r| *r == "GET /api/v1/metrics")
            .count()
    };

    // A fresh plan is acted on as it is: one read, then the DELETE.
    let (code, report, stderr) = run(&["--gateway", &base, "--ttl", "2s"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["replicas"][0]["replanned"], false);
    let requests = proxied(&front);
    assert_eq!(reads_before_delete(&requests), 1, "{requests:?}");

    // --replan-after 0s: every plan counts as old, so the replica is read again and the plan
    // re-made before the first DELETE.
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let seen = requests.len();
    let (code, report, stderr) = run(&["--gateway", &base, "--ttl", "2s", "--replan-after", "0s"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["replicas"][0]["replanned"], true);
    assert_eq!(report["summary"]["deleted"], 1);
    let requests = proxied(&front)[seen..].to_vec();
    assert_eq!(reads_before_delete(&requests), 2, "{requests:?}");
    assert!(
        report["replicas"][0]["max_delete_window_seconds"].is_number(),
        "{report:#}"
    );
    assert!(gw.groups().await.is_empty());
}

#[tokio::test]
async fn zero_replicas_found_is_an_error_not_a_clean_run() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    let prom = TestPrometheus::start("pushgateway", &[gw.address()]);
    prom.wait_for_up("pushgateway", 1, std::time::Duration::from_secs(30))
        .await;
    let (code, report, _) = run(&[
        "--prometheus",
        &prom.url,
        "--job",
        "no-such-job",
        "--ttl",
        "1s",
    ]);
    assert_eq!(code, 1, "{report:#}");
    let error = report["summary"]["error"].as_str().unwrap();
    assert!(error.contains("no-such-job"), "{error}");
    assert!(gw.has_group(&[("job", "old")]).await);
}
