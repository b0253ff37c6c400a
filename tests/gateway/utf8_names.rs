//! UTF-8 label names, on the gateway under test (`PGW_JANITOR_TEST_PUSHGATEWAY`).
//!
//! On 1.11+ with `--push.enable-utf8-names`: a corpus of names a legacy replica cannot hold (dots,
//! dashes, non-ASCII letters, a leading digit, a space, a `/`, a name that itself starts with
//! `U__`) with awkward values, pushed as real clients push them, swept with a TTL: exactly the
//! old groups go. On 1.5.1 the same tests assert what 1.5.1 does instead (no such flag, such
//! names refused with 400, `U__` names literal), so neither pass can pass by doing nothing.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::binaries::{gateway_has_utf8_names, pushgateway_bin};
use common::pusher::{client_push, utf8_group_path};
use common::run::run_bounded;
use common::{janitor, key, sleep_past, GatewayOpts, Key, TestGateway};
use pushgateway_janitor::gateway::Gateway;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

fn utf8_gateway() -> TestGateway {
    TestGateway::start(GatewayOpts {
        utf8_names: true,
        ..Default::default()
    })
}

/// `sweep --gateway URL --ttl 2s ...` with a JSON report; bounded.
fn sweep(gw: &TestGateway, extra: &[&str]) -> (i32, Value, String) {
    let mut cmd = janitor();
    cmd.args(["sweep", "--gateway", &gw.base_url, "--ttl", "2s"])
        .args(["--min-ttl", "1s", "--confirm-timeout", "10s"])
        .args(extra);
    let out = run_bounded(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout));
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn set(keys: &[Key]) -> BTreeSet<Key> {
    keys.iter().cloned().collect()
}

/// Names only a UTF-8 replica holds, each with an awkward value, and how each is pushed: by the
/// real client (names go raw into its path, values base64 when needed) or, for names a client
/// cannot write into a path, escaped by the harness.
const CLIENT_CORPUS: &[(&str, &str)] = &[
    ("service.name", "api/v1"),
    ("http.status-code", "200"),
    ("Zürich", "Grüezi ✓ 日本"),
    ("1st", ""),
    ("emoji 😀", "a b%2F"),
];
const ESCAPED_CORPUS: &[(&str, &str)] = &[
    ("a/b", "x/y"),
    ("U__a_2e_b", "=="), // decodes to `a.b` unless escaped again
    ("k8s.pod.name", "web-0"),
];

/// The value a `client_golang` push leaves on the gateway: a value without `/` goes into the path
/// through `url.QueryEscape`, which writes a space as `+`, and the gateway keeps the `+`
/// (observed on 1.5.1 and 1.11.3). Only `/` or an empty value makes it use `@base64`.
fn as_client_stores(value: &str) -> String {
    if value.is_empty() || value.contains('/') {
        value.to_string()
    } else {
        value.replace(' ', "+")
    }
}

#[tokio::test]
async fn the_replica_status_tells_whether_names_are_utf8() {
    let plain = TestGateway::start(GatewayOpts::default());
    let client = |gw: &TestGateway| {
        Gateway::new(
            url::Url::parse(&gw.base_url).unwrap(),
            reqwest::Client::new(),
            WAIT,
        )
    };
    assert!(!client(&plain).status().await.unwrap().utf8_names);
    let flags = plain.status_flags().await;
    if !gateway_has_utf8_names() {
        // 1.5.1: the flag does not exist, and the binary refuses to start with it.
        assert_eq!(flags.get("push.enable-utf8-names"), None, "{flags:?}");
        let mut cmd = std::process::Command::new(pushgateway_bin());
        cmd.args([
            "--push.enable-utf8-names",
            "--web.listen-address=127.0.0.1:0",
            "--persistence.file=",
        ]);
        let out = run_bounded(cmd, WAIT);
        assert!(!out.status.success(), "1.5.1 accepted the 1.11 flag");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unknown long flag"), "{stderr}");
        return;
    }
    assert_eq!(flags["push.enable-utf8-names"], "false");
    let utf8 = utf8_gateway();
    assert_eq!(utf8.status_flags().await["push.enable-utf8-names"], "true");
    assert!(client(&utf8).status().await.unwrap().utf8_names);
}

#[tokio::test]
async fn a_utf8_name_is_refused_without_the_flag_and_a_u_name_is_literal() {
    let gw = TestGateway::start(GatewayOpts::default());
    // A client writes names raw into its path: without the flag the gateway refuses them.
    let raw = "metrics/job/j/service.name@base64/YXBp";
    assert_eq!(gw.push_raw_path(raw, "x 1\n").await, 400);
    // An escaped name is a legal legacy name there, and is kept literally, not decoded.
    let escaped = [("job", "j"), ("U__service_2e_name", "api")];
    gw.push(&escaped, "x 1\n").await;
    assert_eq!(gw.groups().await, vec![key(&escaped)]);

    // The janitor deletes it by that literal name: escaping it again would miss it.
    sleep_past(2.0).await;
    let (code, report, stderr) = sweep(&gw, &["--output", "json"]);
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["summary"]["deleted"], 1, "{report}");
    gw.wait_for_groups(|g| g.is_empty(), WAIT).await;
}

#[tokio::test]
async fn only_the_expired_utf8_groups_are_swept() {
    if !gateway_has_utf8_names() {
        // 1.5.1 cannot hold any of these names: a client's push of each is refused.
        let gw = TestGateway::start(GatewayOpts::default());
        for (name, _) in CLIENT_CORPUS.iter().chain(ESCAPED_CORPUS) {
            if name.starts_with("U__") {
                continue; // a legal legacy name there, taken literally (test above)
            }
            let raw = format!("metrics/job/old/{name}@base64/dg");
            assert_eq!(gw.push_raw_path(&raw, "x 1\n").await, 400, "{name:?}");
        }
        assert!(gw.groups().await.is_empty());
        return;
    }
    let gw = utf8_gateway();
    let push_corpus = |job: &'static str| {
        let gw = &gw;
        async move {
            let mut keys = Vec::new();
            for (name, value) in CLIENT_CORPUS {
                client_push(gw, job, &[(name, value)], "gauge", "text");
                keys.push(key(&[("job", job), (name, &as_client_stores(value))]));
            }
            for (name, value) in ESCAPED_CORPUS {
                let pairs = [("job", job), (name, value)];
                let status = gw.push_raw_path(&utf8_group_path(&pairs), "x 1\n").await;
                assert_eq!(status, 200, "{pairs:?}");
                keys.push(key(&pairs));
            }
            // Several UTF-8 names in one key, and a legacy one beside them.
            let pairs = [
                ("job", job),
                ("service.name", "multi"),
                ("région", "eu-west"),
            ];
            client_push(gw, job, &pairs[1..], "counter", "protobuf");
            keys.push(key(&pairs));
            keys
        }
    };
    let old = push_corpus("old").await;
    assert_eq!(
        set(&gw.groups().await),
        set(&old),
        "the JSON API has the raw names"
    );
    sleep_past(2.0).await;
    let fresh = push_corpus("fresh").await;

    let (code, report, stderr) = sweep(
        &gw,
        &[
            "--output",
            "json",
            "--log-format",
            "json",
            "--log-level",
            "error,pushgateway_janitor::engine=debug",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["replicas"][0]["unkeyed_groups"], 0, "{report}");
    // Every read (the plan's, the confirmation's) came from `/metrics`, names quoted.
    let reads: Vec<String> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["message"] == "replica read")
        .map(|e| e["read"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !reads.is_empty() && reads.iter().all(|r| r == "metrics"),
        "{reads:?}\n{stderr}"
    );
    let outcomes: BTreeSet<String> = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outcomes,
        BTreeSet::from(["deleted".to_string()]),
        "{report}"
    );
    assert_eq!(report["summary"]["deleted"], old.len(), "{report}");
    let left = gw.wait_for_groups(|g| set(g) == set(&fresh), WAIT).await;
    assert_eq!(set(&left), set(&fresh));
}

#[tokio::test]
async fn a_quoted_selector_picks_utf8_groups_and_the_table_prints_them_as_prometheus_3() {
    if !gateway_has_utf8_names() {
        // 1.5.1: the selector parses, and matches nothing a 1.5.1 replica can hold.
        let gw = TestGateway::start(GatewayOpts::default());
        gw.push(&[("job", "api")], "x 1\n").await;
        sleep_past(2.0).await;
        let (code, report, stderr) = sweep(
            &gw,
            &[
                "--selector",
                r#"{"service.name"="api"}"#,
                "--output",
                "json",
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(report["summary"]["planned"], 0, "{report}");
        assert_eq!(gw.groups().await, vec![key(&[("job", "api")])]);
        return;
    }
    let gw = utf8_gateway();
    let api = [("job", "j"), ("service.name", "api")];
    let web = [("job", "j"), ("service.name", "web")];
    for pairs in [&api, &web] {
        client_push(&gw, "j", &pairs[1..], "gauge", "text");
    }
    sleep_past(2.0).await;
    let (code, table, stderr) = sweep(&gw, &["--selector", r#"{"service.name"="api"}"#]);
    assert_eq!(code, 0, "{stderr}");
    let table = table.as_str().unwrap_or_default().to_string();
    assert!(
        table.contains(r#"{job="j", "service.name"="api"}"#),
        "{table}"
    );
    assert!(!table.contains("web"), "{table}");
    gw.wait_for_groups(|g| g == [key(&web)], WAIT).await;

    // A malformed quoted name is refused before anything is touched.
    let (code, _, stderr) = sweep(&gw, &["--selector", r#"{"service.name}"#]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("selector"), "{stderr}");
    assert!(stderr.contains("unterminated string"), "{stderr}");
    assert_eq!(gw.groups().await, vec![key(&web)]);
}
