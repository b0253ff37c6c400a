//! Groups of every metric type are read and swept, on the gateway under test (1.5.1 and 1.11.3).
//!
//! Each group is pushed by the real client (`client_golang`'s push, through the test pusher) in
//! both formats. The janitor keeps only each group's key and push times; the samples (buckets,
//! quantiles, a native histogram's spans) are skipped unparsed by the streaming reader.
//!
//! Observed: a native histogram pushed in the protobuf format is kept by 1.11.3, whose JSON API
//! writes its buckets as an array of `[boundary rule, lower, upper, count]`; 1.5.1 accepts the
//! same push, drops the native part and writes `"buckets": {}` (a classic histogram with none).

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::binaries::{pushgateway_version, Version};
use common::pusher::client_push;
use common::{key, sleep_past, GatewayOpts, Key, TestGateway};
use pushgateway_janitor::gateway::Gateway;
use pushgateway_janitor::model::Naming;
use serde_json::Value;

const KINDS: &[&str] = &["counter", "gauge", "summary", "histogram", "untyped"];

#[tokio::test]
async fn every_metric_type_is_read_and_swept() {
    let gw = TestGateway::start(GatewayOpts::default());
    let mut pushed: Vec<Key> = Vec::new();
    for kind in KINDS {
        for format in ["text", "protobuf"] {
            let labels = [("kind", *kind), ("format", format)];
            client_push(&gw, "kinds", &labels, kind, format);
            pushed.push(key(&[("job", "kinds"), labels[0], labels[1]]));
        }
    }
    let native = [("kind", "native-histogram"), ("format", "protobuf")];
    client_push(&gw, "kinds", &native, "native-histogram", "protobuf");
    pushed.push(key(&[("job", "kinds"), native[0], native[1]]));

    // What the JSON API makes of the native histogram differs by version (see above).
    let group = gw
        .group(&[("job", "kinds"), native[0], native[1]])
        .await
        .expect("the native histogram's group");
    let buckets = &group["pusher_native_histogram"]["metrics"][0]["buckets"];
    if pushgateway_version() >= Version(1, 11, 0) {
        let spans = buckets
            .as_array()
            .expect("1.11 writes native buckets as an array");
        assert!(
            !spans.is_empty() && spans[0].as_array().unwrap().len() == 4,
            "{buckets}"
        );
    } else {
        assert_eq!(
            buckets,
            &Value::Object(Default::default()),
            "1.5.1 drops them"
        );
    }

    // Every group is read with its key and a push time, none unkeyed.
    let client = Gateway::new(
        url::Url::parse(&gw.base_url).unwrap(),
        reqwest::Client::new(),
        Duration::from_secs(10),
    );
    let snapshot = client.read(None, Naming::Legacy).await.unwrap();
    assert!(snapshot.unkeyed.is_empty(), "{:?}", snapshot.unkeyed);
    let read: BTreeSet<Key> = snapshot
        .groups
        .iter()
        .map(|g| Key::from(&g.labels))
        .collect();
    assert_eq!(read, pushed.iter().cloned().collect());
    assert!(snapshot.groups.iter().all(|g| g.push_time > 1.6e9));

    // And every one is swept once stale, a fresh group beside them kept.
    sleep_past(2.0).await;
    let fresh = [("job", "fresh"), ("kind", "histogram")];
    client_push(&gw, "fresh", &fresh[1..], "histogram", "protobuf");
    let (code, report, _) = common::sweep_json(&["--gateway", &gw.base_url, "--ttl", "2s"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["summary"]["deleted"], pushed.len(), "{report}");
    gw.wait_for_groups(|g| g == [key(&fresh)], Duration::from_secs(10))
        .await;
}
