//! Point 2: admission by the real server. Every schema constraint and CEL rule of the CRD is
//! enforced at create with the CRD's own message; the examples are accepted under strict field
//! validation; what only the janitor's own check refuses (regex, cron, time zone) is accepted
//! by the server and ends as SpecInvalid in status, and waits there for a change.

use kube::api::{
    Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams, ValidationDirective,
};
use serde_json::{json, Value};

use super::setup::*;
use crate::common::k8s::{committed_crd, repo_root, Cluster};
use crate::common::{sleep_past, GatewayOpts};
use pushgateway_janitor::crd::PushgatewayRetention;

fn dynamic_api(cluster: &Cluster) -> Api<DynamicObject> {
    let ar = ApiResource::erase::<PushgatewayRetention>(&());
    Api::namespaced_with(cluster.client.clone(), &cluster.ns, &ar)
}

fn object(name: &str, spec: Value) -> DynamicObject {
    let ar = ApiResource::erase::<PushgatewayRetention>(&());
    DynamicObject::new(name, &ar).data(json!({ "spec": spec }))
}

/// Every `message` of the CRD's `x-kubernetes-validations`.
fn crd_messages() -> Vec<String> {
    let crd = serde_json::to_value(committed_crd()).unwrap();
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(rules) = m.get("x-kubernetes-validations").and_then(Value::as_array) {
                    out.extend(
                        rules
                            .iter()
                            .filter_map(|r| r["message"].as_str().map(String::from)),
                    );
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&crd, &mut out);
    out
}

const ONE_SOURCE: &str = "set exactly one gateway source: prometheus, service or static";

/// (case, spec, a message the server must give). CEL messages are the CRD's own; the schema's
/// pattern constraint is worded by the server.
fn invalid_specs() -> Vec<(&'static str, Value, &'static str)> {
    let stat = json!({"urls": ["http://127.0.0.1:9/"]});
    let prom = json!({"url": "http://127.0.0.1:9", "job": "pushgateway"});
    vec![
        (
            "two sources",
            json!({"static": stat, "prometheus": prom, "ttl": "1h"}),
            ONE_SOURCE,
        ),
        ("no source", json!({"ttl": "1h"}), ONE_SOURCE),
        (
            "DeleteGroups without ttl",
            json!({"static": stat}),
            "ttl is required when action is DeleteGroups",
        ),
        (
            "schedule without Wipe",
            json!({"static": stat, "ttl": "1h", "schedule": {"cron": "0 3 * * *"}}),
            "schedule is only for action Wipe",
        ),
        (
            "onlyIfAllStale without Wipe",
            json!({"static": stat, "ttl": "1h", "onlyIfAllStale": true}),
            "onlyIfAllStale needs action Wipe and a ttl",
        ),
        (
            "onlyIfAllStale without ttl",
            json!({"static": stat, "action": "Wipe", "onlyIfAllStale": true}),
            "onlyIfAllStale needs action Wipe and a ttl",
        ),
        (
            "ttl under minTtl",
            json!({"static": stat, "ttl": "30s", "minTtl": "1m"}),
            "ttl is under minTtl",
        ),
        (
            "malformed duration",
            json!({"static": stat, "ttl": "6 hours"}),
            "spec.ttl in body should match '^([0-9]+(ms|s|m|h|d|w|y))+$'",
        ),
        (
            "an empty url list",
            json!({"static": {"urls": []}, "ttl": "1h"}),
            "spec.static.urls in body should have at least 1 items",
        ),
        (
            "an unknown action",
            json!({"static": stat, "ttl": "1h", "action": "Purge"}),
            "supported values: \"DeleteGroups\", \"Wipe\"",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_refuses_every_invalid_spec_with_the_crds_message() {
    let cluster = Cluster::new("admission").await;
    let api = dynamic_api(&cluster);
    let messages = crd_messages();
    let mut failures = Vec::new();
    for (i, (case, spec, want)) in invalid_specs().into_iter().enumerate() {
        if !want.contains("in body") && !want.contains("supported values") {
            assert!(
                messages.iter().any(|m| m == want),
                "{want:?} is not a CRD message: {messages:?}"
            );
        }
        match api
            .create(&PostParams::default(), &object(&format!("bad-{i}"), spec))
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains(want) => {}
            Err(kube::Error::Api(s)) => {
                failures.push(format!("{case}: {} {:?}", s.code, s.message))
            }
            other => failures.push(format!("{case}: accepted or other error: {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "not refused as expected:\n{}",
        failures.join("\n")
    );
    let left = api.list(&Default::default()).await.expect("list");
    assert!(
        left.items.is_empty(),
        "refused objects were stored: {:?}",
        left.items
    );
}

/// An unknown field: with strict field validation the server refuses it, naming the field
/// (create and server-side apply alike); without, it would be pruned silently.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_field_is_refused_under_strict_field_validation() {
    let cluster = Cluster::new("strict").await;
    let spec = json!({"static": {"urls": ["http://127.0.0.1:9/"]}, "ttl": "1h", "tll": "2h"});
    let body = json!({
        "apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
        "metadata": {"name": "typo"}, "spec": spec,
    });
    let path = format!(
        "/apis/pgw-janitor.dev/v1alpha1/namespaces/{}/pushgatewayretentions?fieldValidation=Strict",
        cluster.ns
    );
    let req = axum::http::Request::post(path)
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    let created = cluster.client.request::<Value>(req).await;
    let strict_create = match created {
        Err(kube::Error::Api(s)) => s,
        other => panic!("a create with an unknown field was not refused: {other:?}"),
    };
    assert!(
        strict_create
            .message
            .contains(r#"unknown field "spec.tll""#),
        "{strict_create:?}"
    );
    let api = dynamic_api(&cluster);
    let applied = api
        .patch(
            "typo",
            &PatchParams::apply("admission-test").validation(ValidationDirective::Strict),
            &Patch::Apply(&body),
        )
        .await;
    let strict_apply = match applied {
        Err(kube::Error::Api(s)) => s,
        other => panic!("an apply with an unknown field was not refused: {other:?}"),
    };
    assert!(
        strict_apply.message.contains(r#"spec.tll"#),
        "{strict_apply:?}"
    );
    // The codes, as Kubernetes 1.34 gives them: a strict create is a 400 BadRequest, not a 422;
    // an apply of an undeclared field fails building its typed patch, a 500. Recorded here so a
    // change shows up.
    assert_eq!(
        (strict_create.code, strict_apply.code),
        (400, 500),
        "{strict_create:?} / {strict_apply:?}"
    );
    assert!(
        strict_apply
            .message
            .contains("field not declared in schema"),
        "{strict_apply:?}"
    );
    assert!(api.get_opt("typo").await.unwrap().is_none());
}

/// Every example under `examples/policies/` is accepted by the real server under strict field
/// validation, and reads back as the typed resource.
#[tokio::test(flavor = "multi_thread")]
async fn the_examples_are_accepted() {
    let cluster = Cluster::new("examples").await;
    let api = dynamic_api(&cluster);
    let dir = repo_root().join("examples/policies");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples/policies") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("example YAML");
        for mut doc in docs {
            doc["metadata"]["namespace"] = json!(cluster.ns);
            let name = doc["metadata"]["name"].as_str().unwrap().to_string();
            api.patch(
                &name,
                &PatchParams::apply("admission-test").validation(ValidationDirective::Strict),
                &Patch::Apply(&doc),
            )
            .await
            .unwrap_or_else(|e| panic!("{} ({name}) refused: {e}", path.display()));
            names.push(name);
        }
    }
    assert!(names.len() >= 5, "{names:?}");
    let typed: Api<PushgatewayRetention> = cluster.api();
    for name in &names {
        let p = typed
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.spec.min_ttl, "1m", "defaulted by the schema: {name}");
    }
}

/// Specs the server accepts and only the janitor's own check refuses: SpecInvalid=True names
/// the field, Ready=False, nothing deleted, an InvalidSpec event; no sweep and no further status
/// write until the spec changes; a fixed spec sweeps.
#[tokio::test(flavor = "multi_thread")]
async fn a_spec_only_the_janitor_refuses_is_reported_and_waits_for_a_change() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("specinvalid", GatewayOpts::default()).await;
    s.gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    let cases = [
        (
            "bad-selector",
            json!({"selector": r#"{job=~"("}"#}),
            "spec.selector",
        ),
        (
            "bad-cron",
            json!({"action": "Wipe", "ttl": null, "schedule": {"cron": "every tuesday-ish"}}),
            "spec.schedule.cron",
        ),
        (
            "bad-zone",
            json!({"action": "Wipe", "ttl": null,
                   "schedule": {"cron": "0 3 * * *", "timeZone": "Mars/Olympus_Mons"}}),
            "spec.schedule.timeZone",
        ),
    ];
    for (name, extra, _) in &cases {
        s.create(name, spec_for(&s.gw, extra.clone())).await;
    }
    for (name, _, field) in &cases {
        let p = s
            .wait_status(name, "SpecInvalid=True", |p| {
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
        assert_eq!(totals_sweeps(&p), 0, "{name}");
        let events = s.events_about(name).await;
        assert!(
            events
                .iter()
                .any(|e| e.reason.as_deref() == Some("InvalidSpec")
                    && e.type_.as_deref() == Some("Warning")),
            "{name}: no InvalidSpec event: {events:#?}"
        );
    }
    let before = status_writes(&s.cluster, "bad-selector");
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(
        status_writes(&s.cluster, "bad-selector"),
        before,
        "status rewritten while waiting for a change"
    );
    s.assert_present(&[STALE_1], "every policy is invalid")
        .await;

    s.patch_spec("bad-selector", json!({"selector": r#"{job=~"stale-.*"}"#}))
        .await;
    s.wait_gone(&[STALE_1]).await;
    s.wait_status("bad-selector", "SpecInvalid=False after the fix", |p| {
        condition_is(p, "SpecInvalid", "False") && observed_current(p) && totals_sweeps(p) >= 1
    })
    .await;
}
