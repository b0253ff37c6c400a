//! End-to-end tests of `pushgateway-janitor controller`: the real binary, real gateways, and
//! `PushgatewayRetention` objects on a Kubernetes API stand-in.
//!
//! The stand-in is kmock's `KubernetesEmulator` extended by `tests/k8s_emulator.py`
//! (`tests/KMOCK.md` lists exactly what works). Its limits, which these tests do not rely on:
//! - no CRD schema: no OpenAPI/CEL validation, no defaulting or pruning — any JSON is accepted,
//!   so invalid specs here only reach the controller's own checks (which is what test 5 tests);
//! - no `managedFields`; server-side apply is simplified (one owner per leaf field, lists are
//!   atomic: no merging of `status.conditions` by `type` between managers);
//! - no strategic-merge list semantics, no YAML bodies, no RBAC/auth, no admission, plain HTTP/1.1;
//! - no collection DELETE, no garbage collection, no pagination, no 410 Gone, no periodic
//!   bookmarks; a watch does not turn "moved out of the selector" into DELETED;
//! - Namespaces cannot be addressed as objects (any namespace in a URL just works).
//!
//! The emulator's request log (`--request-log`) is the only record of what the controller sent;
//! it has no headers (no User-Agent), so which instance did something is read from each
//! instance's own `/metrics`.
//!
//! Every process is killed by its own handle on drop; every wait is bounded; only 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use common::k8s::{wait_until, Controller, ControllerOpts, Emulator, LeaseOpts, LoggedRequest};
use common::{key, sleep_past, GatewayOpts, Key, TestGateway};
use pushgateway_janitor::crd::{PushgatewayRetention, PushgatewayRetentionSpec};

const NS: &str = "e2e";

/// A typed policy from a JSON spec (the CRD's serde defaults fill the rest).
fn policy(name: &str, spec: serde_json::Value) -> PushgatewayRetention {
    let spec: PushgatewayRetentionSpec =
        serde_json::from_value(spec).expect("spec JSON matches PushgatewayRetentionSpec");
    PushgatewayRetention::new(name, spec)
}

// ---- the helper side: the stand-in and the clients work -----------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn emulator_serves_typed_policies_to_the_kube_client() {
    let emu = Emulator::start();
    let api: Api<PushgatewayRetention> = Api::namespaced(emu.client(NS), NS);

    let created = api
        .create(
            &PostParams::default(),
            &policy(
                "p1",
                json!({"static": {"urls": ["http://127.0.0.1:9/"]}, "ttl": "5s", "minTtl": "1s"}),
            ),
        )
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.resource_version.is_some());
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some(NS));

    let got = api.get("p1").await.expect("get");
    assert_eq!(got.spec.ttl.as_deref(), Some("5s"));
    assert_eq!(got.spec.min_ttl, "1s");
    assert!(got.status.is_none());

    // A spec change bumps the generation; a status write does not and leaves the spec alone.
    let patched = api
        .patch(
            "p1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ttl": "7s"}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(patched.metadata.generation, Some(2));
    let with_status = api
        .patch_status(
            "p1",
            &PatchParams::apply("e2e-test").force(),
            &Patch::Apply(json!({
                "apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
                "status": {"observedGeneration": 2, "totals": {"sweeps": 1, "deleted": 0, "failedSweeps": 0}}
            })),
        )
        .await
        .expect("status apply");
    assert_eq!(with_status.metadata.generation, Some(2));
    assert_eq!(with_status.spec.ttl.as_deref(), Some("7s"));
    assert_eq!(with_status.status.unwrap().totals.sweeps, 1);

    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);

    api.delete("p1", &DeleteParams::default())
        .await
        .expect("delete");
    let err = api.get("p1").await.expect_err("gone");
    match err {
        kube::Error::Api(s) => assert!(s.is_not_found(), "{s:?}"),
        other => panic!("{other:?}"),
    }

    // The request log saw it all.
    let reqs = emu.requests();
    assert!(reqs.iter().any(|r| r.is_status_write_of("p1")), "{reqs:#?}");
    assert!(reqs
        .iter()
        .any(|r| r.method == "DELETE" && r.path.ends_with("/pushgatewayretentions/p1")));
}

const PROBE_ENV: &str = "PGW_JANITOR_E2E_KUBECONFIG_PROBE";

/// `kube::Client::try_default()` under `KUBECONFIG` reaches the emulator. Run in a child process
/// (this same test binary, this same test) so the test process's own environment stays untouched.
#[tokio::test(flavor = "multi_thread")]
async fn kubeconfig_works_with_client_try_default() {
    if let Ok(expect) = std::env::var(PROBE_ENV) {
        // The child: KUBECONFIG points at the emulator; the default namespace comes from it.
        let client = kube::Client::try_default().await.expect("try_default");
        assert_eq!(client.default_namespace(), NS);
        let api: Api<PushgatewayRetention> = Api::default_namespaced(client);
        let names: Vec<String> = api
            .list(&ListParams::default())
            .await
            .expect("list through KUBECONFIG")
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        assert_eq!(names, vec![expect]);
        return;
    }
    let emu = Emulator::start();
    let api: Api<PushgatewayRetention> = Api::namespaced(emu.client(NS), NS);
    api.create(
        &PostParams::default(),
        &policy(
            "via-kubeconfig",
            json!({"static": {"urls": ["http://127.0.0.1:9/"]}, "ttl": "5s"}),
        ),
    )
    .await
    .expect("create");
    let kubeconfig = emu.write_kubeconfig(NS);
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "kubeconfig_works_with_client_try_default",
            "--nocapture",
        ])
        .env(PROBE_ENV, "via-kubeconfig")
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("NO_PROXY", "127.0.0.1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the probe");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("probe output");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "probe {status:?}:\n{text}"
    );
    assert!(text.contains("1 passed"), "the probe ran no test:\n{text}");
    assert!(
        emu.requests().iter().any(|r| r.method == "GET"
            && r.path
                == format!("/apis/pgw-janitor.dev/v1alpha1/namespaces/{NS}/pushgatewayretentions")),
        "the probe's list did not reach the emulator"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_until_is_bounded() {
    let start = Instant::now();
    let mut rounds = 0;
    let held = wait_until(Duration::from_millis(600), || {
        rounds += 1;
        async { false }
    })
    .await;
    assert!(!held);
    assert!(rounds <= 5, "{rounds}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(wait_until(Duration::from_secs(1), || async { true }).await);
}

// ---- the controller against real gateways ---------------------------------------------------------

/// The controller scenarios run one at a time: each starts a controller, a gateway and an
/// emulator, and their timing (TTLs of seconds) should not compete for the CPU with the others.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// TTL of the policies: short, so tests age groups past it by sleeping.
const TTL_SECS: f64 = 4.0;
const TTL: &str = "4s";
/// `spec.interval` of the policies.
const INTERVAL: Duration = Duration::from_secs(2);
/// Generous bound for anything the controller should do within a sweep or two.
const SOON: Duration = Duration::from_secs(30);

/// A static-source spec for `gw` with the test TTL, `minTtl: 1s`, `interval: 2s`; `extra` is
/// merged in (a `null` removes a key).
fn spec_for(gw: &TestGateway, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({
        "static": {"urls": [gw.base_url]},
        "ttl": TTL,
        "minTtl": "1s",
        "interval": "2s",
    });
    if let (Some(base), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    spec
}

struct Setup {
    emu: Emulator,
    api: Api<PushgatewayRetention>,
    gw: TestGateway,
    ctl: Controller,
}

impl Setup {
    /// An emulator, one gateway (`gw_opts`) and one controller watching [`NS`].
    fn start(gw_opts: GatewayOpts) -> Setup {
        let emu = Emulator::start();
        let api = Api::namespaced(emu.client(NS), NS);
        let gw = TestGateway::start(gw_opts);
        let ctl = Controller::start(&emu, &controller_opts("ctl-a"));
        Setup { emu, api, gw, ctl }
    }

    async fn create(&self, name: &str, spec: serde_json::Value) -> PushgatewayRetention {
        self.api
            .create(&PostParams::default(), &policy(name, spec))
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"))
    }

    async fn patch_spec(&self, name: &str, spec: serde_json::Value) -> PushgatewayRetention {
        self.api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .unwrap_or_else(|e| panic!("patch {name}: {e}"))
    }

    async fn get(&self, name: &str) -> PushgatewayRetention {
        self.api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}"))
    }

    /// Waits (bounded) until the status of `name` satisfies `pred`; panics with the last status
    /// and the controller's log otherwise.
    async fn wait_status<F>(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: F,
    ) -> PushgatewayRetention
    where
        F: Fn(&PushgatewayRetention) -> bool,
    {
        let held = wait_until(timeout, || async {
            self.api.get(name).await.map(|p| pred(&p)).unwrap_or(false)
        })
        .await;
        let last = self.get(name).await;
        assert!(
            held,
            "{name}: {what} not seen within {timeout:?}; last object: {:#?}\ncontroller log:\n{}",
            last,
            self.ctl.log_tail(40)
        );
        last
    }

    /// Waits (bounded) until `name` has swept at least `n` more times than `since` (from
    /// `status.totals.sweeps`), so a following check covers real sweeps, not just time.
    async fn wait_sweeps(&self, name: &str, since: i64, n: i64) {
        self.wait_status(name, &format!("{n} more sweeps after {since}"), SOON, |p| {
            p.status
                .as_ref()
                .is_some_and(|s| s.totals.sweeps >= since + n)
        })
        .await;
    }

    /// Waits (bounded) until none of `gone` is on the gateway.
    async fn wait_gone(&self, gone: &[&[(&str, &str)]]) {
        let keys: Vec<Key> = gone.iter().map(|k| key(k)).collect();
        let held = wait_until(SOON, || async {
            let groups = self.gw.groups().await;
            keys.iter().all(|k| !groups.contains(k))
        })
        .await;
        assert!(
            held,
            "still on the gateway after {SOON:?}: {:?} (groups: {:?})\ncontroller log:\n{}",
            keys,
            self.gw.groups().await,
            self.ctl.log_tail(40)
        );
    }

    async fn assert_present(&self, present: &[&[(&str, &str)]], why: &str) {
        let groups = self.gw.groups().await;
        for k in present {
            assert!(
                groups.contains(&key(k)),
                "{k:?} should still be on the gateway ({why}); groups: {groups:?}\ncontroller log:\n{}",
                self.ctl.log_tail(40)
            );
        }
    }
}

fn controller_opts(pod: &str) -> ControllerOpts {
    let mut opts = ControllerOpts::new(pod, Some(NS));
    opts.extra_args = vec![
        "--confirm-timeout".into(),
        "10s".into(),
        "--shutdown-timeout".into(),
        "10s".into(),
    ];
    opts
}

fn condition<'a>(p: &'a PushgatewayRetention, type_: &str) -> Option<&'a Condition> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn condition_is(p: &PushgatewayRetention, type_: &str, status: &str) -> bool {
    condition(p, type_).is_some_and(|c| c.status == status)
}

/// The status describes the object's current generation (top-level and on `Ready`).
fn observed_current(p: &PushgatewayRetention) -> bool {
    let generation = p.metadata.generation;
    generation.is_some()
        && p.status.as_ref().and_then(|s| s.observed_generation) == generation
        && condition(p, "Ready").is_some_and(|c| c.observed_generation == generation)
}

fn totals_sweeps(p: &PushgatewayRetention) -> i64 {
    p.status.as_ref().map_or(0, |s| s.totals.sweeps)
}

const STALE_1: &[(&str, &str)] = &[("job", "stale-1")];
const STALE_2: &[(&str, &str)] = &[("job", "stale-2"), ("instance", "i")];
const FRESH: &[(&str, &str)] = &[("job", "fresh")];

/// 1. A new static-source policy: the stale groups go, the fresh one stays; the status reports
/// the sweep (`lastSweep.deleted`, Ready=True for the current generation); a `Swept` event.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_policy_deletes_the_stale_groups_and_reports_it() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start(GatewayOpts::default());
    s.gw.push(STALE_1, "x 1\n").await;
    s.gw.push(STALE_2, "x 2\n").await;
    sleep_past(TTL_SECS).await;
    s.gw.push(FRESH, "x 3\n").await;
    let mark = s.emu.mark();
    s.create("sweep", spec_for(&s.gw, json!({}))).await;

    s.wait_gone(&[STALE_1, STALE_2]).await;
    s.assert_present(&[FRESH], "pushed under a TTL ago").await;

    let p = s
        .wait_status("sweep", "Ready=True for generation 1", SOON, |p| {
            condition_is(p, "Ready", "True") && observed_current(p)
        })
        .await;
    assert_eq!(p.metadata.generation, Some(1));
    let status = p.status.unwrap();
    assert!(status.totals.deleted >= 2, "{status:#?}");
    assert!(status.totals.sweeps >= 1, "{status:#?}");
    let last = status.last_sweep.expect("lastSweep");
    assert_eq!(last.replicas_found, 1, "{last:#?}");
    assert!(!last.dry_run);

    // lastSweep is overwritten every interval: the sweep that deleted is read from the status
    // writes the controller sent (the request log keeps their bodies).
    let reqs = s.emu.requests_since(mark);
    let deleted: Vec<i64> = reqs
        .iter()
        .filter(|r| r.is_status_write_of("sweep"))
        .filter_map(|r| r.body.as_ref()?["status"]["lastSweep"]["deleted"].as_i64())
        .collect();
    assert!(
        deleted.iter().any(|&d| d >= 2),
        "no status write with lastSweep.deleted >= 2: {deleted:?}"
    );

    // Every request the controller made was accepted (status applies, events).
    let refused: Vec<_> = reqs
        .iter()
        .filter(|r| r.status.is_none_or(|code| code >= 400))
        .collect();
    assert!(refused.is_empty(), "refused requests: {refused:#?}");

    let held = wait_until(SOON, || async {
        s.emu
            .requests_since(mark)
            .iter()
            .any(|r| r.is_event_with_reason("Swept") && event_regards(r, "sweep"))
    })
    .await;
    assert!(
        held,
        "no Swept event for the policy; events: {:#?}",
        events(&s.emu, mark)
    );
}

/// The object an event is about (`regarding.name`, events.k8s.io/v1).
fn event_regards(r: &LoggedRequest, name: &str) -> bool {
    r.body
        .as_ref()
        .and_then(|b| b["regarding"]["name"].as_str())
        == Some(name)
}

fn events(emu: &Emulator, mark: usize) -> Vec<serde_json::Value> {
    emu.requests_since(mark)
        .into_iter()
        .filter(|r| r.path.starts_with("/apis/events.k8s.io/"))
        .filter_map(|r| r.body)
        .collect()
}

/// 2. A spec change takes effect: after narrowing the selector to other groups, a group only the
/// new selector matches goes, and a stale group the new selector excludes stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_selector_takes_effect() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start(GatewayOpts::default());
    let a1: &[(&str, &str)] = &[("job", "a-1")];
    let a2: &[(&str, &str)] = &[("job", "a-2")];
    let b1: &[(&str, &str)] = &[("job", "b-1")];
    s.gw.push(a1, "x 1\n").await;
    s.gw.push(b1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create(
        "change",
        spec_for(&s.gw, json!({"selector": r#"{job=~"a-.*"}"#})),
    )
    .await;
    s.wait_gone(&[a1]).await;
    let p = s
        .wait_status("change", "a sweep of generation 1", SOON, observed_current)
        .await;
    s.wait_sweeps("change", totals_sweeps(&p), 1).await;
    s.assert_present(&[b1], "outside the first selector").await;

    let patched = s
        .patch_spec("change", json!({"selector": r#"{job=~"b-.*"}"#}))
        .await;
    assert_eq!(patched.metadata.generation, Some(2));
    s.gw.push(a2, "x 1\n").await;
    s.wait_gone(&[b1]).await;
    let p = s
        .wait_status("change", "generation 2 observed", SOON, observed_current)
        .await;
    // a-2 ages past the TTL under the new selector, which excludes it: it stays.
    sleep_past(TTL_SECS).await;
    let since = totals_sweeps(&s.get("change").await).max(totals_sweeps(&p));
    s.wait_sweeps("change", since, 2).await;
    s.assert_present(&[a2], "stale, but outside the new selector")
        .await;
}

/// 3. `suspend: true`: Ready=False/Suspended, and a group that goes stale meanwhile stays; set
/// back to false, it goes.
#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_policy_deletes_nothing() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start(GatewayOpts::default());
    s.gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create("pause", spec_for(&s.gw, json!({}))).await;
    s.wait_gone(&[STALE_1]).await; // it works before the suspension

    s.patch_spec("pause", json!({"suspend": true})).await;
    let p = s
        .wait_status("pause", "Ready=False reason Suspended", SOON, |p| {
            observed_current(p)
                && condition(p, "Ready")
                    .is_some_and(|c| c.status == "False" && c.reason == "Suspended")
        })
        .await;
    let sweeps_then = totals_sweeps(&p);
    s.gw.push(STALE_2, "x 2\n").await;
    sleep_past(TTL_SECS).await;
    tokio::time::sleep(INTERVAL * 3).await; // a few intervals while stale
    s.assert_present(&[STALE_2], "the policy is suspended")
        .await;
    let p = s.get("pause").await;
    assert_eq!(
        totals_sweeps(&p),
        sweeps_then,
        "swept while suspended: {:#?}",
        p.status
    );

    s.patch_spec("pause", json!({"suspend": false})).await;
    s.wait_gone(&[STALE_2]).await;
}

/// 4. Deleting the policy stops its sweeps: a group that goes stale afterwards stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_policy_stops_sweeping() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start(GatewayOpts::default());
    s.gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create("bye", spec_for(&s.gw, json!({}))).await;
    s.wait_gone(&[STALE_1]).await; // it works before the delete

    s.api
        .delete("bye", &DeleteParams::default())
        .await
        .expect("delete the policy");
    let gone = wait_until(SOON, || async {
        matches!(s.api.get("bye").await, Err(kube::Error::Api(ref e)) if e.code == 404)
    })
    .await;
    assert!(
        gone,
        "the policy is still there: {:#?}",
        s.api.get("bye").await
    );
    let mark = s.emu.mark();
    s.gw.push(STALE_2, "x 2\n").await;
    sleep_past(TTL_SECS).await;
    tokio::time::sleep(INTERVAL * 3).await;
    s.assert_present(&[STALE_2], "its policy was deleted").await;
    let writes: Vec<_> = s
        .emu
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.path.contains("/pushgatewayretentions/bye") && r.method != "GET")
        .collect();
    assert!(
        writes.is_empty(),
        "writes to the deleted policy: {writes:#?}"
    );
}

/// 5. Specs the controller refuses: `SpecInvalid` names the field, Ready=False, nothing deleted.
/// (The emulator has no CRD schema or CEL, so these reach the controller as a real API server
/// with the CRD installed would let them: neither is caught by the schema.)
#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_spec_is_reported_and_nothing_is_deleted() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start(GatewayOpts {
        admin_api: true, // a Wipe would work, were it attempted
        ..Default::default()
    });
    s.gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    let mark = s.emu.mark();
    s.create(
        "bad-selector",
        spec_for(&s.gw, json!({"selector": r#"{job=~"("}"#})),
    )
    .await;
    s.create(
        "bad-cron",
        spec_for(
            &s.gw,
            json!({"action": "Wipe", "ttl": null, "schedule": {"cron": "every tuesday-ish"}}),
        ),
    )
    .await;
    for (name, field) in [
        ("bad-selector", "spec.selector"),
        ("bad-cron", "spec.schedule.cron"),
    ] {
        let p = s
            .wait_status(name, "SpecInvalid=True", SOON, |p| {
                condition_is(p, "SpecInvalid", "True") && observed_current(p)
            })
            .await;
        let c = condition(&p, "SpecInvalid").unwrap();
        assert!(
            c.message.contains(field),
            "{name}: {field} not named in {c:#?}"
        );
        assert!(
            condition_is(&p, "Ready", "False"),
            "{name}: {:#?}",
            p.status
        );
    }
    tokio::time::sleep(INTERVAL * 3).await;
    s.assert_present(&[STALE_1], "every policy is invalid")
        .await;
    let held = wait_until(SOON, || async {
        let reqs = s.emu.requests_since(mark);
        ["bad-selector", "bad-cron"].iter().all(|n| {
            reqs.iter()
                .any(|r| r.is_event_with_reason("InvalidSpec") && event_regards(r, n))
        })
    })
    .await;
    assert!(
        held,
        "no InvalidSpec event for each; events: {:#?}",
        events(&s.emu, mark)
    );
}

/// `pgw_janitor_sweeps_total` of one policy on one controller (every result).
async fn sweeps_of(ctl: &Controller, policy: &str) -> f64 {
    ctl.metric_sum(
        "pgw_janitor_sweeps_total",
        &[("namespace", NS), ("policy", policy)],
    )
    .await
}

/// 6. Two controllers with leader election on one Lease: only the holder sweeps (each
/// instance's own `/metrics` says who swept; the request log has no headers to tell them apart,
/// and both write status as the same field manager). After a SIGTERM, the leader releases the
/// Lease and exits 0, and the other takes over within a bound.
#[tokio::test(flavor = "multi_thread")]
async fn with_leader_election_one_instance_sweeps_and_the_other_takes_over() {
    let _serial = SERIAL.lock().await;
    let emu = Emulator::start();
    let api: Api<PushgatewayRetention> = Api::namespaced(emu.client(NS), NS);
    let leases: Api<Lease> = Api::namespaced(emu.client(NS), NS);
    let gw = TestGateway::start(GatewayOpts::default());
    let lease = LeaseOpts {
        name: "pgw-janitor-e2e".into(),
        namespace: NS.into(),
        duration: "3s".into(),
    };
    let mut ctls: Vec<Controller> = ["ctl-a", "ctl-b"]
        .iter()
        .map(|pod| {
            let mut opts = controller_opts(pod);
            opts.leader_election = Some(lease.clone());
            Controller::start(&emu, &opts)
        })
        .collect();

    api.create(
        &PostParams::default(),
        &policy("ha", spec_for(&gw, json!({}))),
    )
    .await
    .expect("create");
    // Sweeps happen every 2s; wait for several in total.
    let several = wait_until(SOON, || async {
        sweeps_of(&ctls[0], "ha").await + sweeps_of(&ctls[1], "ha").await >= 3.0
    })
    .await;
    assert!(
        several,
        "fewer than 3 sweeps in {SOON:?}\nctl-a:\n{}\nctl-b:\n{}",
        ctls[0].log_tail(30),
        ctls[1].log_tail(30)
    );
    let counts = [
        sweeps_of(&ctls[0], "ha").await,
        sweeps_of(&ctls[1], "ha").await,
    ];
    assert!(
        (counts[0] == 0.0) != (counts[1] == 0.0),
        "exactly one instance should sweep, sweeps: {counts:?}"
    );
    let leader = if counts[0] > 0.0 { 0 } else { 1 };
    let follower = 1 - leader;
    let holder = leases
        .get(&lease.name)
        .await
        .expect("the Lease exists")
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(
        holder.as_deref(),
        Some(ctls[leader].name.as_str()),
        "Lease holder"
    );

    // The leader really deletes.
    gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    let gone = wait_until(SOON, || async { !gw.has_group(STALE_1).await }).await;
    assert!(
        gone,
        "the leader did not delete; log:\n{}",
        ctls[leader].log_tail(30)
    );
    assert_eq!(
        sweeps_of(&ctls[follower], "ha").await,
        0.0,
        "the follower swept"
    );

    // SIGTERM the leader: it exits 0; the other takes over within lease duration + margin.
    ctls[leader].terminate();
    let status = ctls[leader].wait_exit(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the leader's exit after SIGTERM: {status:?}; log:\n{}",
        ctls[leader].log_tail(30)
    );
    gw.push(STALE_2, "x 2\n").await;
    let took_over = wait_until(SOON, || async {
        sweeps_of(&ctls[follower], "ha").await > 0.0
    })
    .await;
    assert!(
        took_over,
        "the follower did not sweep within {SOON:?} of the leader's exit; log:\n{}",
        ctls[follower].log_tail(40)
    );
    sleep_past(TTL_SECS).await;
    let gone = wait_until(SOON, || async { !gw.has_group(STALE_2).await }).await;
    assert!(
        gone,
        "the new leader did not delete; log:\n{}",
        ctls[follower].log_tail(30)
    );
    let holder = leases
        .get(&lease.name)
        .await
        .expect("the Lease exists")
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(
        holder.as_deref(),
        Some(ctls[follower].name.as_str()),
        "Lease holder after"
    );
    ctls[follower].terminate();
    let status = ctls[follower].wait_exit(Duration::from_secs(30)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// 7a. `/readyz` is 200 once the watch delivered its first event.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_200_after_the_first_watch_event() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start(GatewayOpts::default());
    s.create("ready", spec_for(&s.gw, json!({}))).await;
    // The watch really delivered: the policy gets swept (its status is written).
    s.wait_status("ready", "a sweep", SOON, |p| totals_sweeps(p) >= 1)
        .await;
    let reqs = s.emu.requests();
    assert!(
        reqs.iter().any(|r| r.action.as_deref() == Some("WATCH")
            && r.path
                .ends_with(&format!("/namespaces/{NS}/pushgatewayretentions"))),
        "no namespaced watch in the request log"
    );
    let last = std::sync::Mutex::new(None);
    let ready = wait_until(SOON, || async {
        let r = s.ctl.readyz().await;
        *last.lock().unwrap() = r;
        r == Some(200)
    })
    .await;
    let last = last.into_inner().unwrap();
    assert!(
        ready,
        "/readyz never 200 ({last:?}) although the watch delivered and the policy was swept; log:\n{}",
        s.ctl.log_tail(20)
    );
}

/// 7b. After SIGTERM `/readyz` stops answering 200 (503 while shutting down, or nothing once
/// gone) and the process exits 0 within its shutdown timeout.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_readiness_and_exits_0() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start(GatewayOpts::default());
    s.create("stop", spec_for(&s.gw, json!({}))).await;
    s.wait_status("stop", "a sweep", SOON, |p| totals_sweeps(p) >= 1)
        .await;
    let mut ctl = s.ctl;
    ctl.terminate();
    let seen = std::sync::Mutex::new(Vec::new());
    let not_ready = wait_until(SOON, || async {
        let r = ctl.readyz().await;
        seen.lock().unwrap().push(r);
        r != Some(200)
    })
    .await;
    let seen = seen.into_inner().unwrap();
    assert!(not_ready, "/readyz stayed 200 after SIGTERM: {seen:?}");
    assert!(
        seen.iter()
            .all(|r| matches!(r, Some(200) | Some(503) | None)),
        "/readyz after SIGTERM: {seen:?}"
    );
    let status = ctl.wait_exit(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}; log:\n{}",
        ctl.log_tail(30)
    );
    assert!(
        ctl.log_tail(5).contains("stopped"),
        "no clean stop in the log:\n{}",
        ctl.log_tail(30)
    );
}
