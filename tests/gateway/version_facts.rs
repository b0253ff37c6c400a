//! The PUSHGATEWAY.md facts that `harness_facts.rs` does not already prove, each re-checked on
//! the gateway under test; `scripts/test.sh` runs this on 1.5.1 and on 1.11.3. Where the versions
//! differ the test says so and asserts each side (see docs/pushgateway.md for the list).

use crate::common;

use std::time::Duration;

use common::binaries::{pushgateway_version, Version};
use common::{gauge_value, key, GatewayOpts, TestGateway};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn every_put_or_post_resets_the_push_time_an_empty_post_too() {
    let gw = TestGateway::start(GatewayOpts::default());
    let group = [("job", "a")];
    gw.push(&group, "x 1\n").await;
    let first = gw.push_time(&group).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let status = gw
        .request("POST", "metrics/job@base64/YQ", Some(""))
        .await
        .0;
    assert_eq!(status, 200);
    let after_empty = gw.push_time(&group).await.unwrap();
    assert!(after_empty > first + 1.0, "{first} -> {after_empty}");
    // The empty POST kept the group's families.
    assert!(gw.group(&group).await.unwrap().get("x").is_some());
}

#[tokio::test]
async fn the_consistency_check_of_one_push_looks_at_every_other_group() {
    // A push is checked against the whole store (1.11.3: `checkWriteRequest` copies every group
    // and gathers them all), so filling a store push by push is quadratic. Shown here without a
    // clock: a push to group `b` is refused for a clash with group `a` only.
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "a")], "# TYPE shared counter\nshared 1\n")
        .await;
    let clash = "# TYPE shared gauge\nshared 1\n";
    let (status, text) = gw
        .request("PUT", &common::group_path(&[("job", "b")]), Some(clash))
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("inconsistent"), "{text}");
    // The refused push leaves `b` as a phantom, as the poisoning push does.
    let phantom = gw.group(&[("job", "b")]).await.expect("phantom b");
    assert_eq!(gauge_value(&phantom, "push_time_seconds"), Some(0.0));

    // Without the check (`--push.disable-consistency-check`) the same push is taken unchecked.
    let unchecked = TestGateway::start(GatewayOpts {
        extra_args: vec!["--push.disable-consistency-check".into()],
        ..Default::default()
    });
    unchecked
        .push(&[("job", "a")], "# TYPE shared counter\nshared 1\n")
        .await;
    let status = unchecked
        .request("PUT", &common::group_path(&[("job", "b")]), Some(clash))
        .await
        .0;
    assert_eq!(status, 202, "queued unchecked");
    unchecked.wait_for_groups(|g| g.len() == 2, WAIT).await;
}

#[tokio::test]
async fn status_and_json_api_shapes_by_version() {
    let gw = TestGateway::start(GatewayOpts::default());
    let (_, text) = gw.get("api/v1/status").await;
    let doc: Value = serde_json::from_str(&text).unwrap();
    let data = &doc["data"];
    assert_eq!(
        data["build_information"]["version"],
        pushgateway_version().to_string()
    );
    assert!(data["start_time"].is_string(), "{data}");
    let flags = data["flags"].as_object().unwrap();
    let v111 = pushgateway_version() >= Version(1, 11, 0);
    // 1.11 adds the UTF-8 flag; both have the admin API and persistence flags as strings.
    assert_eq!(
        flags.contains_key("push.enable-utf8-names"),
        v111,
        "{flags:?}"
    );
    for f in [
        "web.enable-admin-api",
        "persistence.file",
        "web.route-prefix",
    ] {
        assert!(flags[f].is_string(), "{f}: {flags:?}");
    }

    // A group object: `labels`, `last_push_successful`, one key per family, values as strings.
    gw.push(&[("job", "a"), ("instance", "")], "x 1.5\n").await;
    let group = gw.group(&[("job", "a"), ("instance", "")]).await.unwrap();
    assert_eq!(
        group["labels"],
        serde_json::json!({"job": "a", "instance": ""})
    );
    assert_eq!(group["last_push_successful"], true);
    assert_eq!(group["x"]["metrics"][0]["value"], "1.5");
    assert_eq!(group["x"]["type"], "UNTYPED");
    let time = group["push_time_seconds"]["time_stamp"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && time.contains('T'),
        "RFC 3339: {time}"
    );
    assert_eq!(
        gw.groups().await,
        vec![key(&[("job", "a"), ("instance", "")])]
    );
}
