//! One engine under every policy: policies due together share one read of each replica, and a
//! group two policies select is deleted once. Counted by the gateways themselves
//! (`pushgateway_http_requests_total`), not by the janitor.

use super::*;

/// How many requests the gateway served for `handler` (`api/v1/status`, `delete`), by its own
/// count. Its `/metrics` (what sweeps read groups from) is not counted there, "excluding
/// scrapes"; every read of a replica starts with one `api/v1/status`, which is.
async fn served(gw: &TestGateway, handler: &str) -> u64 {
    let (status, text) = gw.get("metrics").await;
    assert_eq!(status, 200, "{}: /metrics answered {status}", gw.base_url);
    let label = format!("handler=\"{handler}\"");
    text.lines()
        .filter(|l| l.starts_with("pushgateway_http_requests_total{") && l.contains(&label))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("not a sample line: {l}")) as u64
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_policies_over_three_replicas_read_each_replica_once_per_cycle() {
    let gws: Vec<TestGateway> = (0..3)
        .map(|_| TestGateway::start(GatewayOpts::default()))
        .collect();
    for (i, gw) in gws.iter().enumerate() {
        gw.push(&[("job", &format!("batch-{i}"))], "x 1\n").await;
    }
    let urls: Vec<String> = gws.iter().map(|g| format!("\"{}\"", g.base_url)).collect();
    let dir = tempfile::tempdir().unwrap();
    for p in 0..10 {
        let doc = format!(
            "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
             name: p-{p}\n  namespace: team\nspec:\n  static:\n    urls: [{}]\n  \
             selector: '{{job=\"batch-{}\"}}'\n  ttl: 1h\n",
            urls.join(", "),
            p % 3
        );
        write(dir.path(), &format!("p-{p}.yaml"), &doc);
    }
    let mut before = Vec::new();
    for gw in &gws {
        before.push(served(gw, "api/v1/status").await);
    }

    let out = once_json(dir.path(), &[]);

    assert_eq!(out.code, 0, "{}", out.stderr);
    let reports = out.json();
    assert_eq!(reports.len(), 10, "{}", out.stdout);
    for r in &reports {
        let replicas = r["report"]["replicas"].as_array().unwrap();
        assert_eq!(replicas.len(), 3, "{r}");
        assert!(replicas.iter().all(|x| x["state"] == "ok"), "{r}");
        assert_eq!(r["report"]["summary"]["groups_seen"], 3, "{r}");
    }
    for (gw, before) in gws.iter().zip(before) {
        assert_eq!(
            served(gw, "api/v1/status").await - before,
            1,
            "{}: ten policies due together read it once",
            gw.base_url
        );
        assert_eq!(
            served(gw, "api/v1/metrics").await,
            0,
            "{}: read from /metrics, never the JSON API",
            gw.base_url
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_two_policies_select_is_deleted_once_and_both_report_it_gone() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "shared")], "x 1\n").await;
    gw.push(&[("job", "only-b")], "x 1\n").await;
    sleep_past(2.0).await;
    gw.push(&[("job", "fresh")], "x 1\n").await;
    let dir = tempfile::tempdir().unwrap();
    let a = static_policy("team", "a", &gw, "  selector: '{job=\"shared\"}'\n");
    let b = static_policy(
        "team",
        "b",
        &gw,
        "  selector: '{job=~\"shared|only-b|fresh\"}'\n",
    );
    write(dir.path(), "a.yaml", &a);
    write(dir.path(), "b.yaml", &b);
    let deletes_before = served(&gw, "delete").await;

    let out = once_json(dir.path(), &[]);

    assert_eq!(out.code, 0, "{}", out.stderr);
    let deleted = |name: &str| -> Vec<String> {
        let report = out.report(name);
        report["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                assert_eq!(a["outcome"], "deleted", "{name}: {a}");
                a["labels"]["job"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(deleted("a"), ["shared"]);
    let mut b_deleted = deleted("b");
    b_deleted.sort();
    assert_eq!(b_deleted, ["only-b", "shared"]);
    assert_eq!(
        served(&gw, "delete").await - deletes_before,
        2,
        "one DELETE per distinct group: shared once, only-b once"
    );
    let left = gw.groups().await;
    assert_eq!(left, vec![common::key(&[("job", "fresh")])]);
}
