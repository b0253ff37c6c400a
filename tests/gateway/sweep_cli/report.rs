//! Before and after the deletes: the guards that stop a sweep before its first DELETE, the JSON
//! report's shape, and a plan that is re-made from a fresh read when it is old.

use super::{outcomes, run};
use crate::common::{sleep_past, GatewayOpts, TestGateway, TestNginx};

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
        "delete_seconds",
    ] {
        assert!(replica.get(key).is_some(), "replica has {key}: {replica}");
    }
    assert_eq!(replica["state"], "ok");
    assert_eq!(replica["groups"], 1);
    assert!(
        replica["delete_seconds"].as_f64().is_some_and(|s| s > 0.0),
        "{replica}"
    );
    let action = &report["actions"][0];
    for key in ["gateway", "labels", "reason", "age_seconds", "outcome"] {
        assert!(action.get(key).is_some(), "action has {key}");
    }
    assert!(action["age_seconds"].as_f64().unwrap() >= 2.0);
    assert_eq!(report["summary"]["exit_code"], 0);
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
            // Sweeps read `/metrics` (the JSON API only where it cannot answer exactly).
            .filter(|r| *r == "GET /metrics")
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
async fn a_replica_that_is_no_pushgateway_is_named_so_not_printed_as_a_page() {
    let gw = TestGateway::start(GatewayOpts::default());
    // A real web server on the wrong port: nginx answers its own HTML 404 page to everything.
    let other = TestNginx::start("", "location / { return 404; }");
    let wrong = format!("{}/", other.url);
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let (code, report, stderr) = run(&[
        "--gateway",
        &gw.base_url,
        "--gateway",
        &wrong,
        "--ttl",
        "2s",
    ]);
    assert_eq!(code, 1, "a failed replica makes exit code 1: {stderr}");
    assert!(gw.groups().await.is_empty(), "the real replica was swept");
    let failed: Vec<&serde_json::Value> = report["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    let error = failed[0]["error"].as_str().unwrap();
    // Whichever of its API paths the janitor asked last (the status, or the JSON read after
    // `/metrics` failed), the words say what the server is not.
    assert!(
        error.contains("HTTP 404: not a Pushgateway (no /api/v1/"),
        "{error}"
    );
    assert!(error.ends_with("; it answered: an HTML page"), "{error}");
    assert!(
        !error.contains('<') && !stderr.contains("<html"),
        "{error}\n{stderr}"
    );
}
