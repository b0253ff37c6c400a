//! What a sweep deletes and what it keeps: expired groups with awkward label values, a dry run,
//! the selector, a pusher's own TTL, `--only-if-all-stale`, and a wipe with and without the admin
//! API.

use super::{outcomes, run};
use crate::common::{sleep_past, GatewayOpts, TestGateway};

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
