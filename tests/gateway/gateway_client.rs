//! The gateway client against a real Pushgateway (1.5.1 and 1.11.3, see `common::binaries`): keys read back exactly, deletes
//! remove exactly one group, status and wipe follow the admin flag, route prefixes, and a poisoned
//! replica healed by deleting its phantom. Both reads: the JSON API's (exact keys), and the light
//! read of `/metrics` (exact but for an instance that may be absent or empty, which its delete
//! covers), falling back to the JSON API where `/metrics` cannot answer. Groups are pushed with paths encoded here, by hand,
//! independently of `group_path`, so a wrong encoding in the client cannot hide behind itself.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::binaries::pushgateway_version;
use common::{GatewayOpts, TestGateway};
use pushgateway_janitor::gateway::Gateway;
use pushgateway_janitor::model::{Labels, Naming, Snapshot, Source};
use pushgateway_janitor::Error;

const TIMEOUT: Duration = Duration::from_secs(10);

type Pgw = TestGateway;

fn start(opts: GatewayOpts) -> Pgw {
    TestGateway::start(opts)
}

fn client(pgw: &Pgw) -> Gateway {
    let base = url::Url::parse(&pgw.base_url).unwrap();
    Gateway::new(base, reqwest::Client::new(), TIMEOUT)
}

/// Reads as a sweep does: the status first, for the replica's naming; the light read.
async fn read(gw: &Gateway, ttl_metric: Option<&str>) -> Snapshot {
    let naming = Naming::of(Some(&gw.status().await.expect("status")));
    gw.read(ttl_metric, naming).await.expect("read")
}

/// The JSON API's read, as `inspect` makes it.
async fn read_json(gw: &Gateway, ttl_metric: Option<&str>) -> Snapshot {
    let naming = Naming::of(Some(&gw.status().await.expect("status")));
    gw.read_json(ttl_metric, naming).await.expect("read")
}

/// What the light read shows of an exact key: an absent or empty instance as "unsure", without
/// the label.
fn as_light(key: &Labels) -> (Labels, bool) {
    match key.get("instance") {
        Some(v) if !v.is_empty() => (key.clone(), false),
        _ => (key.iter().filter(|(n, _)| *n != "instance").collect(), true),
    }
}

/// The light read's keys, each with whether its instance is unsure.
async fn light_keys(gw: &Gateway) -> BTreeSet<(Labels, bool)> {
    let snapshot = read(gw, None).await;
    assert_eq!(snapshot.source, Source::Metrics);
    assert!(snapshot.unkeyed.is_empty(), "{:?}", snapshot.unkeyed);
    snapshot
        .groups
        .into_iter()
        .map(|g| (g.labels, g.instance_unsure))
        .collect()
}

/// URL-safe base64 written out here, padding kept (the gateway strips it), so pushes do not go
/// through the encoder under test.
fn b64(value: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if value.is_empty() {
        return "=".into();
    }
    let mut out = String::new();
    for chunk in value.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn push_path(key: &[(&str, &str)]) -> String {
    key.iter()
        .map(|(name, value)| format!("/{name}@base64/{}", b64(value)))
        .collect::<String>()
}

async fn push(pgw: &Pgw, path: &str) -> u16 {
    push_body(pgw, path, "some_metric 1\n").await
}

async fn push_body(pgw: &Pgw, path: &str, body: &'static str) -> u16 {
    pgw.push_raw_path(&format!("metrics{path}"), body).await
}

fn labels(key: &[(&str, &str)]) -> Labels {
    key.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The exact keys, from the JSON API.
async fn keys(gw: &Gateway) -> BTreeSet<Labels> {
    let snapshot = read_json(gw, None).await;
    assert!(snapshot.unkeyed.is_empty(), "{:?}", snapshot.unkeyed);
    snapshot.groups.into_iter().map(|g| g.labels).collect()
}

/// Deletes are only queued: poll until the read matches. Bounded: 50 tries, 100 ms apart.
async fn until_keys(gw: &Gateway, expected: &BTreeSet<Labels>) {
    let mut seen = BTreeSet::new();
    for _ in 0..50 {
        seen = keys(gw).await;
        if &seen == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("groups never became {expected:?}; last read {seen:?}");
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

const KEYS: &[&[(&str, &str)]] = &[
    &[("job", "plain")],
    &[("job", "plain"), ("instance", "host:9100")],
    &[("job", "empty-instance"), ("instance", "")],
    &[("job", "a/b"), ("path", "/var/x/")],
    &[("job", "spaces and %2F"), ("v", "50% + 1 = 2")],
    &[("job", "mail@host#frag?q=1"), ("zone", "")],
    &[("job", "ünïcødé ✓"), ("instance", "東京"), ("x", "=")],
    &[("job", "ÿÿ??>"), ("a", ""), ("b", "")],
];

#[tokio::test]
async fn read_returns_exactly_the_pushed_keys_and_delete_removes_exactly_one() {
    let pgw = start(GatewayOpts::default());
    let gw = client(&pgw);
    for key in KEYS {
        assert_eq!(push(&pgw, &push_path(key)).await, 200, "push {key:?}");
    }
    let mut expected: BTreeSet<Labels> = KEYS.iter().map(|k| labels(k)).collect();
    assert_eq!(keys(&gw).await, expected);
    let light: BTreeSet<(Labels, bool)> = expected.iter().map(as_light).collect();
    assert_eq!(light_keys(&gw).await, light);

    let snapshot = read(&gw, None).await;
    // The Date header has a one-second resolution; the bound is loose on purpose.
    assert!(
        (snapshot.clock - now()).abs() < 30.0,
        "clock {}",
        snapshot.clock
    );
    for group in &snapshot.groups {
        assert!(group.last_push_successful && group.push_failure_time == 0.0);
        assert!((group.push_time - snapshot.clock).abs() < 30.0, "{group:?}");
    }

    // Each group deleted by the key the light read gave, as a sweep does: the key itself, then,
    // when its instance was unsure and the group stays, its twin with `instance=""`. Exactly it
    // goes (`{job="plain"}` goes, `{job="plain",instance="host:9100"}` stays).
    for key in KEYS {
        let key = labels(key);
        let (light, unsure) = as_light(&key);
        gw.delete(&light, Naming::Legacy).await.expect("delete");
        if key.get("instance") == Some("") {
            // `{job="empty-instance"}` does not exist: that DELETE was a no-op.
            until_keys(&gw, &expected).await;
            assert!(unsure);
            gw.delete_empty_instance(&light, Naming::Legacy)
                .await
                .expect("delete the twin");
        }
        expected.remove(&key);
        until_keys(&gw, &expected).await;
    }
    // A missing group is a silent no-op on the gateway, and Ok here.
    gw.delete(&labels(&[("job", "never-pushed")]), Naming::Legacy)
        .await
        .unwrap();
    gw.delete(&labels(KEYS[0]), Naming::Legacy).await.unwrap();
}

#[tokio::test]
async fn status_reports_the_admin_api_and_wipe_follows_it() {
    let admin = start(GatewayOpts {
        admin_api: true,
        ..Default::default()
    });
    let plain = start(GatewayOpts::default());

    let status = client(&admin).status().await.unwrap();
    assert!(status.admin_api);
    // Debian's build reports `1.5.1`; 1.11.3 built with the release ldflags `1.11.3`.
    assert_eq!(
        status.version.as_deref(),
        Some(pushgateway_version().to_string().as_str())
    );
    assert!(!status.utf8_names, "off unless --push.enable-utf8-names");
    assert!(status.start_time.is_some());
    assert_eq!(status.persistence_file, None);
    assert_eq!(status.route_prefix, None);
    assert!(!client(&plain).status().await.unwrap().admin_api);

    for pgw in [&admin, &plain] {
        for key in KEYS.iter().take(3) {
            assert_eq!(push(pgw, &push_path(key)).await, 200);
        }
    }
    client(&admin).wipe().await.unwrap();
    until_keys(&client(&admin), &BTreeSet::new()).await;

    let err = client(&plain).wipe().await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 404, .. }), "{err}");
    assert!(err.to_string().contains("--web.enable-admin-api"), "{err}");
    assert_eq!(keys(&client(&plain)).await.len(), 3, "nothing wiped");
}

#[tokio::test]
async fn a_route_prefix_in_the_base_url_is_kept() {
    let pgw = start(GatewayOpts {
        route_prefix: Some("/pgw".into()),
        ..Default::default()
    });
    let key = &[("job", "prefixed"), ("instance", "")];
    assert_eq!(push(&pgw, &push_path(key)).await, 200);
    for base in [
        pgw.base_url.clone(),
        pgw.base_url.trim_end_matches('/').to_string(),
    ] {
        let gw = Gateway::new(
            url::Url::parse(&base).unwrap(),
            reqwest::Client::new(),
            TIMEOUT,
        );
        assert!(gw.healthy().await.unwrap());
        assert_eq!(
            gw.status().await.unwrap().route_prefix.as_deref(),
            Some("/pgw")
        );
        assert_eq!(keys(&gw).await, BTreeSet::from([labels(key)]));
        assert_eq!(
            light_keys(&gw).await,
            BTreeSet::from([as_light(&labels(key))])
        );
    }
    let gw = client(&pgw);
    gw.delete(&labels(key), Naming::Legacy).await.unwrap();
    until_keys(&gw, &BTreeSet::new()).await;
}

#[tokio::test]
async fn deleting_the_phantom_heals_a_poisoned_replica() {
    let pgw = start(GatewayOpts::default());
    let gw = client(&pgw);
    let metrics = || async {
        let url = format!("{}metrics", pgw.base_url);
        reqwest::get(url).await.unwrap().status().as_u16()
    };
    assert_eq!(push(&pgw, &push_path(&[("job", "a")])).await, 200);
    let phantom = &[("job", "a"), ("instance", "")];
    assert_eq!(
        push(&pgw, &push_path(phantom)).await,
        400,
        "the poisoning push fails"
    );

    // `/metrics` answers 500: the read falls back to the JSON API, which keys both twins.
    let snapshot = read(&gw, None).await;
    assert_eq!(snapshot.source, Source::Json);
    let find = |key: &Labels| snapshot.groups.iter().find(|g| &g.labels == key).cloned();
    let real = find(&labels(&[("job", "a")])).expect("the real group");
    let ghost = find(&labels(phantom)).expect("the phantom group");
    assert_eq!(snapshot.groups.len(), 2);
    assert!(real.push_time > 0.0 && real.last_push_successful);
    assert!(ghost.is_phantom());
    // Observed on 1.5.1: the failed push stamps the phantom's failure time and clears its flag.
    eprintln!(
        "phantom: push_time={} push_failure_time={} last_push_successful={}",
        ghost.push_time, ghost.push_failure_time, ghost.last_push_successful
    );
    assert!(
        (ghost.push_failure_time - snapshot.clock).abs() < 30.0,
        "{ghost:?}"
    );
    assert!(!ghost.last_push_successful);
    assert_eq!(ghost.reference_time(), Some(ghost.push_failure_time));
    assert_eq!(metrics().await, 500, "the whole replica's exposition fails");

    gw.delete(&ghost.labels, snapshot.naming).await.unwrap();
    until_keys(&gw, &BTreeSet::from([real.labels.clone()])).await;
    assert_eq!(metrics().await, 200, "healed");
    assert_eq!(
        light_keys(&gw).await,
        BTreeSet::from([(labels(&[("job", "a")]), true)])
    );
}

#[tokio::test]
async fn colliding_family_names_and_a_declared_ttl() {
    let pgw = start(GatewayOpts::default());
    let gw = client(&pgw);
    assert_eq!(push_body(&pgw, "/job/hidden", "labels 5\n").await, 200);
    let flag_family = "last_push_successful 5\n";
    assert_eq!(push_body(&pgw, "/job/flag", flag_family).await, 200);
    let declared = "# TYPE janitor_ttl_seconds gauge\njanitor_ttl_seconds 3600\n";
    assert_eq!(push_body(&pgw, "/job/ok", declared).await, 200);

    // The JSON API loses the key under a family named `labels`; `/metrics` shows it on the push
    // time as any other.
    let light = read(&gw, Some("janitor_ttl_seconds")).await;
    assert_eq!(light.source, Source::Metrics);
    assert!(light.unkeyed.is_empty(), "{:?}", light.unkeyed);
    let ttls: BTreeSet<_> = light
        .groups
        .iter()
        .map(|g| (&g.labels["job"], g.declared_ttl.map(|t| t as u64)))
        .collect();
    let expected = BTreeSet::from([("flag", None), ("hidden", None), ("ok", Some(3600))]);
    assert_eq!(ttls, expected, "a pushed TTL gauge is read from /metrics");
    assert!(light.groups.iter().all(|g| g.last_push_successful));

    let snapshot = read_json(&gw, Some("janitor_ttl_seconds")).await;
    assert_eq!(snapshot.unkeyed.len(), 1, "{:?}", snapshot.unkeyed);
    let keys: BTreeSet<_> = snapshot.groups.iter().map(|g| g.labels.clone()).collect();
    let expected = BTreeSet::from([labels(&[("job", "flag")]), labels(&[("job", "ok")])]);
    assert_eq!(keys, expected);
    // The flag hidden by a family is derived from the push times, as the gateway does.
    assert!(snapshot.groups.iter().all(|g| g.last_push_successful));
    // Groups come in the gateway's map order: compare by key.
    let ttls: BTreeSet<_> = snapshot
        .groups
        .iter()
        .map(|g| (&g.labels["job"], g.declared_ttl.map(|t| t as u64)))
        .collect();
    let expected = BTreeSet::from([("flag", None), ("ok", Some(3600))]);
    assert_eq!(ttls, expected, "a pushed TTL gauge is read");
}
