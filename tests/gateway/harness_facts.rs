//! Proves the harness, and the gateway facts the janitor relies on, against the real programs
//! (Debian `prometheus-pushgateway` 1.5.1, `prometheus` 2.42).
//!
//! Observed on 1.5.1 for a poisoned replica (`{job="a"}` pushed, then a refused push to
//! `{job="a",instance=""}`):
//! - the phantom `{job="a",instance=""}` group has `push_time_seconds` 0,
//!   `last_push_successful` false, and `push_failure_time_seconds` = the time of the refused push
//!   (non-zero, on the gateway's clock); it carries no pushed family, only those two gauges;
//! - the real `{job="a"}` group keeps its `push_time_seconds` unchanged, `last_push_successful`
//!   true and `push_failure_time_seconds` 0: the failure is recorded on the phantom only.
//!
//! So a phantom's age can be counted from its `push_failure_time_seconds`.

use crate::common;

use std::time::Duration;

use common::{gauge_value, key, GatewayOpts, TestGateway, TestPrometheus};

const WAIT: Duration = Duration::from_secs(10);

/// Writes are processed in order, so once a marker push is visible every earlier write (a DELETE
/// that may have been a no-op) has been applied.
async fn settle(gw: &TestGateway) {
    gw.push(&[("job", "zz-marker")], "marker 1\n").await;
    gw.wait_for_groups(|g| g.contains(&key(&[("job", "zz-marker")])), WAIT)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_start_at_once_on_distinct_ports_each_with_its_own_flags_and_store() {
    let opts = [
        GatewayOpts {
            admin_api: true,
            ..Default::default()
        },
        GatewayOpts::default(),
        GatewayOpts {
            route_prefix: Some("/pg".into()),
            ..Default::default()
        },
    ];
    let gws: Vec<TestGateway> = std::thread::scope(|s| {
        let handles: Vec<_> = opts
            .iter()
            .map(|o| s.spawn(|| TestGateway::start(o.clone())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut ports: Vec<u16> = gws.iter().map(|g| g.port).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3, "distinct ports");
    assert!(gws[2].base_url.ends_with("/pg/"), "{}", gws[2].base_url);

    let flags: Vec<_> = futures::future::join_all(gws.iter().map(|g| g.status_flags())).await;
    assert_eq!(flags[0]["web.enable-admin-api"], "true");
    assert_eq!(flags[1]["web.enable-admin-api"], "false");
    assert_eq!(flags[2]["web.enable-admin-api"], "false");
    assert_eq!(flags[2]["web.route-prefix"], "/pg");
    for f in &flags {
        assert_eq!(f["persistence.file"], "", "no shared persistence file");
    }

    // The admin API exists only where enabled.
    assert_eq!(
        gws[0].request("PUT", "api/v1/admin/wipe", None).await.0,
        202
    );
    assert_ne!(
        gws[1].request("PUT", "api/v1/admin/wipe", None).await.0,
        202
    );

    // Each replica has its own store.
    gws[1].push(&[("job", "only-on-1")], "x 1\n").await;
    gws[2].push(&[("job", "only-on-2")], "x 1\n").await;
    assert_eq!(gws[1].groups().await, vec![key(&[("job", "only-on-1")])]);
    assert_eq!(gws[2].groups().await, vec![key(&[("job", "only-on-2")])]);
    assert!(gws[0].groups().await.is_empty());
}

#[tokio::test]
async fn awkward_label_values_round_trip_exactly_through_base64_paths() {
    let gw = TestGateway::start(GatewayOpts::default());
    let pairs = [
        ("job", "nightly/backup job"),
        ("path", "/var/lib x"),
        ("pct", "100%"),
        ("plus", "a+b"),
        ("eq", "k=v=="),
        ("at", "user@host"),
        ("hash", "#frag"),
        ("q", "?x=1&y"),
        ("utf", "Zürich ✓ 日本"),
        ("empty", ""),
    ];
    gw.push(&pairs, "backup_bytes 42\n").await;

    assert_eq!(gw.groups().await, vec![key(&pairs)]);
    let pushed = gw.push_time(&pairs).await.expect("push_time_seconds");
    assert!(
        pushed > 1.6e9,
        "push time on the gateway's Unix clock: {pushed}"
    );

    // Deleting by the same encoding removes exactly that group.
    assert_eq!(gw.delete(&pairs).await, 202);
    gw.wait_for_groups(|g| g.is_empty(), WAIT).await;
}

#[tokio::test]
async fn job_alone_and_job_with_empty_instance_are_distinct_groups() {
    let gw = TestGateway::start(GatewayOpts::default());
    let with_instance = [("job", "a"), ("instance", "")];
    gw.push(&with_instance, "x 1\n").await;
    assert_eq!(gw.groups().await, vec![key(&with_instance)]);
    assert!(!gw.has_group(&[("job", "a")]).await);

    // A cleaner that drops the empty instance gets 202 and deletes nothing.
    assert_eq!(gw.delete(&[("job", "a")]).await, 202);
    settle(&gw).await;
    assert!(
        gw.has_group(&with_instance).await,
        "wrong key deleted nothing"
    );

    // The exact key removes it.
    assert_eq!(gw.delete(&with_instance).await, 202);
    gw.wait_for_groups(|g| !g.contains(&key(&with_instance)), WAIT)
        .await;
}

#[tokio::test]
async fn refused_push_leaves_a_phantom_and_the_real_group_keeps_its_push_time() {
    let gw = TestGateway::start(GatewayOpts::default());
    let real = [("job", "a")];
    let phantom = [("job", "a"), ("instance", "")];
    gw.push(&real, "x 1\n").await;
    let real_before = gw.push_time(&real).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    assert_eq!(gw.push_expect_status(&phantom, "x 1\n").await, 400);

    let real_group = gw.group(&real).await.expect("real group still there");
    assert_eq!(
        gauge_value(&real_group, "push_time_seconds"),
        Some(real_before)
    );
    assert_eq!(
        gauge_value(&real_group, "push_failure_time_seconds"),
        Some(0.0)
    );
    assert_eq!(real_group["last_push_successful"], true);

    let ghost = gw.group(&phantom).await.expect("phantom group");
    assert_eq!(gauge_value(&ghost, "push_time_seconds"), Some(0.0));
    assert_eq!(ghost["last_push_successful"], false);
    let failed_at = gauge_value(&ghost, "push_failure_time_seconds").unwrap();
    assert!(
        failed_at > real_before + 0.5,
        "failure time {failed_at} is the refused push's time, after {real_before}"
    );
    assert!(
        ghost.get("x").is_none(),
        "the phantom carries no pushed family"
    );
}

#[tokio::test]
async fn poisoned_replica_fails_metrics_but_not_the_json_api_and_deleting_the_phantom_heals_it() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.poison("a").await; // asserts GET metrics = 500

    let (status, _) = gw.get("api/v1/metrics").await;
    assert_eq!(status, 200);
    let mut groups = gw.groups().await;
    groups.sort();
    let mut expected = vec![key(&[("job", "a")]), key(&[("job", "a"), ("instance", "")])];
    expected.sort();
    assert_eq!(groups, expected, "both keys coexist");

    assert_eq!(
        gw.delete_raw_path("metrics/job@base64/YQ/instance@base64/=")
            .await,
        202
    );
    gw.wait_for_groups(|g| g == [key(&[("job", "a")])], WAIT)
        .await;
    let (status, text) = gw.get("metrics").await;
    assert_eq!(status, 200, "healed: {text}");
    assert!(
        text.contains("poison_probe"),
        "the real group is still exported"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_lists_every_replica_in_up_with_stopped_and_poisoned_ones_at_zero() {
    let healthy = TestGateway::start(GatewayOpts::default());
    let poisoned = TestGateway::start(GatewayOpts {
        admin_api: true,
        ..Default::default()
    });
    let mut stopped = TestGateway::start(GatewayOpts::default());
    healthy.push(&[("job", "nightly")], "x 1\n").await;
    poisoned.poison("a").await;
    stopped.stop();

    let targets = [healthy.address(), poisoned.address(), stopped.address()];
    let prom = TestPrometheus::start("pushgateway", &targets);
    let up = prom
        .wait_for_up("pushgateway", 3, Duration::from_secs(30))
        .await;
    assert_eq!(up.len(), 3, "{up:?}");

    let up = prom
        .wait_for_up_matching(
            "pushgateway",
            |up| {
                up.get(&healthy.address()) == Some(&1.0)
                    && up.get(&poisoned.address()) == Some(&0.0)
                    && up.get(&stopped.address()) == Some(&0.0)
            },
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(up.len(), 3, "exactly the three targets: {up:?}");
}

/// The fault server answers as documented and stops promptly on drop, even mid-hang.
#[tokio::test]
async fn fault_server_produces_each_fault_and_stops_on_drop() {
    use common::{Fault, FaultServer};
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let url = |s: &FaultServer| format!("{}api/v1/metrics", s.base_url);

    let garbage = FaultServer::start(Fault::Garbage);
    let resp = client.get(url(&garbage)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("date"));
    let body = resp.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).is_err(),
        "{body}"
    );
    assert_eq!(garbage.requests(), vec!["GET /api/v1/metrics HTTP/1.1"]);

    let truncated = FaultServer::start(Fault::Truncated);
    let resp = client.get(url(&truncated)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.bytes().await.is_err(),
        "body shorter than Content-Length"
    );

    let mid = FaultServer::start(Fault::HangMidBody);
    let resp = client.get(url(&mid)).send().await.unwrap();
    assert!(resp.bytes().await.unwrap_err().is_timeout());

    let before = FaultServer::start(Fault::HangBeforeHeaders);
    let err = client.get(url(&before)).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");

    // Both hanging servers still hold a connection open; drop must not wait out the hang.
    let (done, dropped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop((garbage, truncated, mid, before));
        let _ = done.send(());
    });
    dropped
        .recv_timeout(Duration::from_secs(30))
        .expect("dropping the fault servers does not wait out their hang");
}
