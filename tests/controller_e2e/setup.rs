//! What the controller scenarios share: a namespace on the real API server, a real gateway, a
//! controller process watching that namespace, and bounded waits on what the server and the
//! gateway hold.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::k8s::{wait_until, Cluster, Controller, ControllerOpts};
use crate::common::{key, GatewayOpts, Key, TestGateway};
use pushgateway_janitor::crd::{PushgatewayRetention, PushgatewayRetentionSpec};

/// The scenarios with short TTLs run one at a time, so their timing does not compete for the
/// two cores with each other.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// TTL of the policies: short, so tests age groups past it by sleeping.
pub const TTL_SECS: f64 = 4.0;
pub const TTL: &str = "4s";
/// `spec.interval` of the policies.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Generous bound for anything the controller should do within a sweep or two.
pub const SOON: Duration = Duration::from_secs(40);

pub const STALE_1: &[(&str, &str)] = &[("job", "stale-1")];
pub const STALE_2: &[(&str, &str)] = &[("job", "stale-2"), ("instance", "i")];
pub const FRESH: &[(&str, &str)] = &[("job", "fresh")];

/// A typed policy from a JSON spec (the CRD's serde defaults fill the rest).
pub fn policy(name: &str, spec: serde_json::Value) -> PushgatewayRetention {
    let spec: PushgatewayRetentionSpec =
        serde_json::from_value(spec).expect("spec JSON matches PushgatewayRetentionSpec");
    PushgatewayRetention::new(name, spec)
}

/// A static-source spec for `urls` with the test TTL, `minTtl: 1s`, `interval: 2s`; `extra` is
/// merged in (a `null` removes a key).
pub fn spec_with(urls: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({
        "static": {"urls": urls},
        "ttl": TTL,
        "minTtl": "1s",
        "interval": "2s",
    });
    merge(&mut spec, extra);
    spec
}

pub fn merge(spec: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(base), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

pub fn spec_for(gw: &TestGateway, extra: serde_json::Value) -> serde_json::Value {
    spec_with(&[gw.base_url.as_str()], extra)
}

/// A controller watching only `ns`, with quick confirm and shutdown bounds.
pub fn controller_opts(pod: &str, ns: &str) -> ControllerOpts {
    let mut opts = ControllerOpts::new(pod, Some(ns));
    opts.extra_args = ["--confirm-timeout", "10s", "--shutdown-timeout", "10s"]
        .map(String::from)
        .to_vec();
    opts
}

pub struct Setup {
    pub cluster: Cluster,
    pub api: Api<PushgatewayRetention>,
    pub gw: TestGateway,
    pub ctl: Controller,
}

impl Setup {
    /// A fresh namespace, one gateway (`gw_opts`) and one controller watching the namespace.
    pub async fn start(prefix: &str, gw_opts: GatewayOpts) -> Setup {
        let cluster = Cluster::new(prefix).await;
        let api = cluster.api();
        let gw = TestGateway::start(gw_opts);
        let ctl = Controller::start(&controller_opts("ctl-a", &cluster.ns));
        Setup {
            cluster,
            api,
            gw,
            ctl,
        }
    }

    pub async fn create(&self, name: &str, spec: serde_json::Value) -> PushgatewayRetention {
        self.api
            .create(&PostParams::default(), &policy(name, spec))
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"))
    }

    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) -> PushgatewayRetention {
        self.api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .unwrap_or_else(|e| panic!("patch {name}: {e}"))
    }

    pub async fn get(&self, name: &str) -> PushgatewayRetention {
        self.api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}"))
    }

    /// Waits (bounded) until the object `name` satisfies `pred`; panics with the last object
    /// and the controller's log otherwise.
    pub async fn wait_status<F>(&self, name: &str, what: &str, pred: F) -> PushgatewayRetention
    where
        F: Fn(&PushgatewayRetention) -> bool,
    {
        let held = wait_until(SOON, || async {
            self.api.get(name).await.map(|p| pred(&p)).unwrap_or(false)
        })
        .await;
        let last = self.get(name).await;
        assert!(
            held,
            "{name}: {what} not seen within {SOON:?}; last object: {last:#?}\ncontroller log:\n{}",
            self.ctl.log_tail(40)
        );
        last
    }

    /// Waits (bounded) until `name` has swept at least `n` more times than `since`.
    pub async fn wait_sweeps(&self, name: &str, since: i64, n: i64) -> PushgatewayRetention {
        self.wait_status(name, &format!("{n} more sweeps after {since}"), |p| {
            totals_sweeps(p) >= since + n
        })
        .await
    }

    /// Waits (bounded) until none of `gone` is on the gateway.
    pub async fn wait_gone(&self, gone: &[&[(&str, &str)]]) {
        wait_gone(&self.gw, gone, &self.ctl).await;
    }

    pub async fn assert_present(&self, present: &[&[(&str, &str)]], why: &str) {
        let groups = self.gw.groups().await;
        for k in present {
            assert!(
                groups.contains(&key(k)),
                "{k:?} should still be on the gateway ({why}); groups: {groups:?}\n\
                 controller log:\n{}",
                self.ctl.log_tail(40)
            );
        }
    }

    /// The events.k8s.io Events about policy `name` in the namespace.
    pub async fn events_about(&self, name: &str) -> Vec<Event> {
        events_about(&self.cluster, name).await
    }
}

pub async fn wait_gone(gw: &TestGateway, gone: &[&[(&str, &str)]], ctl: &Controller) {
    let keys: Vec<Key> = gone.iter().map(|k| key(k)).collect();
    let held = wait_until(SOON, || async {
        let groups = gw.groups().await;
        keys.iter().all(|k| !groups.contains(k))
    })
    .await;
    assert!(
        held,
        "still on the gateway after {SOON:?}: {keys:?} (groups: {:?})\ncontroller log:\n{}",
        gw.groups().await,
        ctl.log_tail(40)
    );
}

pub async fn events_about(cluster: &Cluster, name: &str) -> Vec<Event> {
    let api: Api<Event> = cluster.api();
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

pub fn condition<'a>(p: &'a PushgatewayRetention, type_: &str) -> Option<&'a Condition> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn condition_is(p: &PushgatewayRetention, type_: &str, status: &str) -> bool {
    condition(p, type_).is_some_and(|c| c.status == status)
}

/// The status describes the object's current generation (top-level and on `Ready`).
pub fn observed_current(p: &PushgatewayRetention) -> bool {
    let generation = p.metadata.generation;
    generation.is_some()
        && p.status.as_ref().and_then(|s| s.observed_generation) == generation
        && condition(p, "Ready").is_some_and(|c| c.observed_generation == generation)
}

pub fn totals_sweeps(p: &PushgatewayRetention) -> i64 {
    p.status.as_ref().map_or(0, |s| s.totals.sweeps)
}

/// Status writes (`patch`/`update` of the status subresource) to policy `name` of the
/// cluster's namespace, from the audit log.
pub fn status_writes(cluster: &Cluster, name: &str) -> usize {
    cluster
        .server
        .audit_events()
        .iter()
        .filter(|e| {
            e["stage"] == "ResponseComplete"
                && e["objectRef"]["namespace"] == cluster.ns.as_str()
                && e["objectRef"]["name"] == name
                && e["objectRef"]["subresource"] == "status"
                && matches!(e["verb"].as_str(), Some("patch" | "update"))
        })
        .count()
}
