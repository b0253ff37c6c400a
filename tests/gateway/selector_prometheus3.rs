//! The janitor's selectors mean what Prometheus 3 means by them, quoted UTF-8 names included.
//!
//! Groups with UTF-8 names are pushed to a real Pushgateway 1.11+ (`--push.enable-utf8-names`), a
//! real Prometheus 3 scrapes it (`honor_labels: true`), and for every selector of a table the
//! groups whose `push_time_seconds` series Prometheus selects are the groups the janitor's
//! `Selector` matches; a selector Prometheus refuses, the janitor refuses too. The one deliberate
//! difference: a quoted name alone (`{"a.b"}`) is a metric name to PromQL, and grouping keys have
//! none, so the janitor refuses it with an explanation.
//!
//! Needs Pushgateway 1.11+ and Prometheus 3 (`PGW_JANITOR_TEST_PUSHGATEWAY`,
//! `PGW_JANITOR_TEST_PROMETHEUS`): `scripts/test.sh` runs it, with `--include-ignored`, in the pass
//! with those binaries, where it fails loudly if they are older.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::binaries::{require_prometheus, require_pushgateway, Version};
use common::pusher::utf8_group_path;
use common::{key, GatewayOpts, Key, TestGateway, TestPrometheus};
use pushgateway_janitor::selector::Selector;
use serde_json::Value;

const GROUPS: &[&[(&str, &str)]] = &[
    &[("job", "j")],
    &[("job", "j"), ("service.name", "api")],
    &[("job", "j"), ("service.name", "api2")],
    &[("job", "j"), ("service.name", "web"), ("région", "eu-west")],
    &[("job", "k"), ("a-b", "1")],
    &[("job", "k"), ("1st", "z")],
    &[("job", "k"), ("emoji 😀", "x y")],
    &[("job", "k"), ("U__x", "v")],
    &[("job", "k"), ("instance", "h:1"), ("service.name", "api")],
];

/// Selectors, each as the user writes it for `--selector`.
const TABLE: &[&str] = &[
    r#"{"service.name"="api"}"#,
    r#"{"service.name"=~"api.*"}"#,
    r#"{"service.name"!="api"}"#,
    r#"{"service.name"!~"api|web"}"#,
    r#"{'région'=~"eu-.*", job="j"}"#,
    r#"{`1st`="z"}"#,
    r#"{"1st"=""}"#,
    r#"{"emoji 😀"!~"x"}"#,
    r#"{"U__x"="v"}"#,
    r#"{job=~"j|k", "a-b"!=""}"#,
    r#"{"service.name"="api", instance=""}"#,
    r#"{"service.name"="api",}"#,
    r#"{"a\u002db"="1"}"#,
    r#"{"job"="k"}"#,
    r#"{"service.name"="api" , "région"!="x"}"#,
    // No group has an empty name: it matches as "", for Prometheus 3 as for the janitor.
    // (`{""=""}` is left out: Prometheus 3.16 fails it at run time, "unexpected all postings".)
    r#"{""="x"}"#,
    // Refused by both.
    r#"{"service.name}"#,
    r#"{"service.name"=api}"#,
    r#"{service.name="api"}"#,
    r#"{"x"=~"("}"#,
    r#"{"a"="\q"}"#,
];

async fn query(prom: &TestPrometheus, expr: &str) -> Result<BTreeSet<Key>, String> {
    let doc: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/query", prom.url))
        .query(&[("query", expr)])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("query Prometheus")
        .json()
        .await
        .expect("Prometheus answers JSON");
    if doc["status"] != "success" {
        return Err(doc["error"].as_str().unwrap_or_default().to_string());
    }
    Ok(doc["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.as_str() != "__name__")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .collect())
}

/// A grouping key as Prometheus stores its series: an empty value is no label at all.
fn as_series(k: &Key) -> Key {
    k.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Pushgateway 1.11+ and Prometheus 3: scripts/test.sh runs it in that pass"]
async fn selectors_select_the_same_groups_as_prometheus_3() {
    require_pushgateway(Version(1, 11, 0));
    require_prometheus(Version(3, 0, 0));
    let gw = TestGateway::start(GatewayOpts {
        utf8_names: true,
        ..Default::default()
    });
    for pairs in GROUPS {
        let status = gw.push_raw_path(&utf8_group_path(pairs), "x 1\n").await;
        assert_eq!(status, 200, "{pairs:?}");
    }
    let keys: Vec<Key> = GROUPS.iter().map(|p| key(p)).collect();
    assert_eq!(
        gw.groups().await.into_iter().collect::<BTreeSet<_>>(),
        keys.iter().cloned().collect()
    );

    let prom = TestPrometheus::start("pushgateway", &[gw.address()]);
    let all: BTreeSet<Key> = keys.iter().map(as_series).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = query(&prom, "push_time_seconds").await;
        if seen.as_ref() == Ok(&all) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped every group: {seen:?}\n{}",
            prom.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    for selector in TABLE {
        let theirs = query(&prom, &format!("push_time_seconds{selector}")).await;
        let ours = selector.parse::<Selector>().map(|s| {
            keys.iter()
                .filter(|k| s.matches(&k.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()))
                .map(as_series)
                .collect::<BTreeSet<_>>()
        });
        match (&theirs, &ours) {
            (Ok(t), Ok(o)) => {
                assert_eq!(t, o, "{selector}: Prometheus 3 and the janitor disagree");
                // The janitor prints it back in a form Prometheus reads the same.
                let shown = ours_printed(selector);
                let again = query(&prom, &format!("push_time_seconds{shown}")).await;
                assert_eq!(again.as_ref(), Ok(t), "{selector} printed as {shown}");
            }
            (Err(_), Err(_)) => {}
            _ => panic!("{selector}: Prometheus 3 says {theirs:?}, the janitor {ours:?}"),
        }
    }

    // The deliberate difference: a quoted name alone is a metric name to PromQL.
    let alone = r#"{"service.name"}"#;
    assert!(
        query(&prom, alone).await.is_ok(),
        "Prometheus 3 reads {alone}"
    );
    let refused = alone.parse::<Selector>().unwrap_err().to_string();
    assert!(refused.contains("metric name"), "{refused}");
}

fn ours_printed(selector: &str) -> String {
    selector.parse::<Selector>().unwrap().to_string()
}
