//! The gateway client against a real Pushgateway (Debian's 1.5.1): keys read back exactly, deletes
//! remove exactly one group, status and wipe follow the admin flag, route prefixes, and a poisoned
//! replica healed by deleting its phantom. Groups are pushed with paths encoded here, by hand,
//! independently of `group_path`, so a wrong encoding in the client cannot hide behind itself.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushgateway_janitor::gateway::Gateway;
use pushgateway_janitor::model::Labels;
use pushgateway_janitor::Error;

/// Found on PATH (Debian's package); `PUSHGATEWAY_BIN` points at another build.
fn binary() -> String {
    std::env::var("PUSHGATEWAY_BIN").unwrap_or_else(|_| "prometheus-pushgateway".into())
}
const TIMEOUT: Duration = Duration::from_secs(10);

/// A real gateway on a free loopback port, killed by its PID when dropped.
struct Pgw {
    child: Child,
    root: String,
}

impl Pgw {
    async fn start(extra: &[&str]) -> Pgw {
        // A port freed by another test between bind and spawn makes the child exit: retry.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let child = Command::new(binary())
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Debian defaults this to a shared file: test replicas must not share state.
                .arg("--persistence.file=")
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus-pushgateway");
            let prefix = extra
                .iter()
                .find_map(|a| a.strip_prefix("--web.route-prefix="))
                .unwrap_or("");
            let mut pgw = Pgw {
                child,
                root: format!("http://127.0.0.1:{port}{prefix}/"),
            };
            if pgw.wait_ready().await {
                return pgw;
            }
        }
        panic!("pushgateway did not become ready");
    }

    /// Bounded: 100 tries, 100 ms apart. `false` when the child died (port taken).
    async fn wait_ready(&mut self) -> bool {
        let ready = format!("{}-/ready", self.root);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        for _ in 0..100 {
            if self.child.try_wait().expect("child status").is_some() {
                return false;
            }
            if let Ok(r) = http.get(&ready).send().await {
                if r.status() == 200 {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    fn gateway(&self) -> Gateway {
        let base = url::Url::parse(&self.root).unwrap();
        Gateway::new(base, reqwest::Client::new(), TIMEOUT)
    }
}

impl Drop for Pgw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let url = format!("{}metrics{path}", pgw.root);
    let response = reqwest::Client::new()
        .put(url)
        .body(body)
        .send()
        .await
        .expect("push");
    response.status().as_u16()
}

fn labels(key: &[(&str, &str)]) -> Labels {
    key.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn keys(gw: &Gateway) -> BTreeSet<Labels> {
    let snapshot = gw.read(None).await.expect("read");
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
    let pgw = Pgw::start(&[]).await;
    let gw = pgw.gateway();
    for key in KEYS {
        assert_eq!(push(&pgw, &push_path(key)).await, 200, "push {key:?}");
    }
    let mut expected: BTreeSet<Labels> = KEYS.iter().map(|k| labels(k)).collect();
    assert_eq!(keys(&gw).await, expected);

    let snapshot = gw.read(None).await.unwrap();
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

    for key in KEYS {
        let key = labels(key);
        gw.delete(&key).await.expect("delete");
        expected.remove(&key);
        until_keys(&gw, &expected).await;
    }
    // A missing group is a silent no-op on the gateway, and Ok here.
    gw.delete(&labels(&[("job", "never-pushed")]))
        .await
        .unwrap();
    gw.delete(&labels(KEYS[0])).await.unwrap();
}

#[tokio::test]
async fn status_reports_the_admin_api_and_wipe_follows_it() {
    let admin = Pgw::start(&["--web.enable-admin-api"]).await;
    let plain = Pgw::start(&[]).await;

    let status = admin.gateway().status().await.unwrap();
    assert!(status.admin_api);
    assert_eq!(status.version.as_deref(), Some("1.5.1"));
    assert!(status.start_time.is_some());
    assert_eq!(status.persistence_file, None);
    assert_eq!(status.route_prefix, None);
    assert!(!plain.gateway().status().await.unwrap().admin_api);

    for pgw in [&admin, &plain] {
        for key in KEYS.iter().take(3) {
            assert_eq!(push(pgw, &push_path(key)).await, 200);
        }
    }
    admin.gateway().wipe().await.unwrap();
    until_keys(&admin.gateway(), &BTreeSet::new()).await;

    let err = plain.gateway().wipe().await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 404, .. }), "{err}");
    assert!(err.to_string().contains("--web.enable-admin-api"), "{err}");
    assert_eq!(keys(&plain.gateway()).await.len(), 3, "nothing wiped");
}

#[tokio::test]
async fn a_route_prefix_in_the_base_url_is_kept() {
    let pgw = Pgw::start(&["--web.route-prefix=/pgw"]).await;
    let key = &[("job", "prefixed"), ("instance", "")];
    assert_eq!(push(&pgw, &push_path(key)).await, 200);
    for base in [pgw.root.clone(), pgw.root.trim_end_matches('/').to_string()] {
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
    }
    let gw = pgw.gateway();
    gw.delete(&labels(key)).await.unwrap();
    until_keys(&gw, &BTreeSet::new()).await;
}

#[tokio::test]
async fn deleting_the_phantom_heals_a_poisoned_replica() {
    let pgw = Pgw::start(&[]).await;
    let gw = pgw.gateway();
    let metrics = || async {
        let url = format!("{}metrics", pgw.root);
        reqwest::get(url).await.unwrap().status().as_u16()
    };
    assert_eq!(push(&pgw, &push_path(&[("job", "a")])).await, 200);
    let phantom = &[("job", "a"), ("instance", "")];
    assert_eq!(
        push(&pgw, &push_path(phantom)).await,
        400,
        "the poisoning push fails"
    );

    let snapshot = gw.read(None).await.unwrap();
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

    gw.delete(&ghost.labels).await.unwrap();
    until_keys(&gw, &BTreeSet::from([real.labels.clone()])).await;
    assert_eq!(metrics().await, 200, "healed");
}

#[tokio::test]
async fn colliding_family_names_and_a_declared_ttl() {
    let pgw = Pgw::start(&[]).await;
    let gw = pgw.gateway();
    assert_eq!(push_body(&pgw, "/job/hidden", "labels 5\n").await, 200);
    let flag_family = "last_push_successful 5\n";
    assert_eq!(push_body(&pgw, "/job/flag", flag_family).await, 200);
    let declared = "# TYPE janitor_ttl_seconds gauge\njanitor_ttl_seconds 3600\n";
    assert_eq!(push_body(&pgw, "/job/ok", declared).await, 200);

    let snapshot = gw.read(Some("janitor_ttl_seconds")).await.unwrap();
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
        .map(|g| (g.labels["job"].as_str(), g.declared_ttl.map(|t| t as u64)))
        .collect();
    let expected = BTreeSet::from([("flag", None), ("ok", Some(3600))]);
    assert_eq!(ttls, expected, "a pushed TTL gauge is read");
}
