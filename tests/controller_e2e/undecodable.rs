//! One policy the controller cannot decode does not stop the watch of the others (kube's
//! `DeserializeGuard`). How one comes to be on a real server: it was stored under a looser CRD
//! (here the CRD of a release in which `spec.suspend` was an int-or-string), and the served CRD
//! is the strict one again; the server validates on write, never on read, so the stored object
//! is served as it was written. The controller reports it on its own (a Warning event, its
//! `SpecInvalid` condition), sweeps every other policy, and sweeps it too once it is fixed.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use super::setup::*;
use crate::common::k8s::{
    apply_crd, committed_crd, committed_crd_with_spec_field, wait_until, Cluster,
};
use crate::common::{key, sleep_past, GatewayOpts};
use pushgateway_janitor::crd::PushgatewayRetention;

/// The committed CRD with `spec.suspend` an int-or-string (and so without its `false` default).
fn looser_crd() -> CustomResourceDefinition {
    committed_crd_with_spec_field(
        "suspend",
        JSONSchemaProps {
            x_kubernetes_int_or_string: Some(true),
            description: Some("Stop sweeping: 1 or \"yes\".".into()),
            ..Default::default()
        },
    )
}

fn raw(cluster: &Cluster) -> Api<DynamicObject> {
    Api::namespaced_with(
        cluster.client.clone(),
        &cluster.ns,
        &ApiResource::erase::<PushgatewayRetention>(&()),
    )
}

fn bad_object(spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
        "metadata": {"name": "bad"},
        "spec": spec,
    }))
    .unwrap()
}

fn spec_invalid(obj: &DynamicObject) -> Option<&Value> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "SpecInvalid")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_that_cannot_be_decoded_is_reported_alone_and_the_others_are_swept() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("undecodable", GatewayOpts::default()).await;
    let raw = raw(&s.cluster);
    const BAD_JOB: &[(&str, &str)] = &[("job", "bad")];
    let bad_spec = spec_for(&s.gw, json!({"selector": r#"{job="bad"}"#, "suspend": 1}));

    // Stored under the looser CRD (the new schema may take a moment to be served), then the
    // strict CRD is back and refuses the same object.
    apply_crd(&s.cluster.client, &looser_crd()).await;
    let stored = wait_until(SOON, || async {
        raw.create(&PostParams::default(), &bad_object(bad_spec.clone()))
            .await
            .is_ok()
    })
    .await;
    assert!(stored, "the looser CRD never took `suspend: 1`");
    apply_crd(&s.cluster.client, &committed_crd()).await;
    let strict = wait_until(SOON, || async {
        let mut other = bad_object(bad_spec.clone());
        other.metadata.name = Some("bad-again".into());
        match raw.create(&PostParams::default(), &other).await {
            Err(kube::Error::Api(e)) => e.code == 422,
            Ok(_) => {
                let _ = raw.delete("bad-again", &Default::default()).await;
                false
            }
            Err(_) => false,
        }
    })
    .await;
    assert!(strict, "the committed CRD should refuse `suspend: 1`");
    assert_eq!(raw.get("bad").await.unwrap().data["spec"]["suspend"], 1);
    // What a watch without the guard gets: the whole list fails to decode.
    let typed = s.api.list(&Default::default()).await;
    assert!(
        matches!(typed, Err(kube::Error::SerdeError(_))),
        "{typed:?}"
    );

    s.gw.push(STALE_1, "x 1\n").await;
    s.gw.push(BAD_JOB, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create(
        "good",
        spec_for(&s.gw, json!({"selector": r#"{job=~"stale-.*"}"#})),
    )
    .await;

    // The other policy is swept, as if nothing were wrong.
    s.wait_gone(&[STALE_1]).await;
    s.wait_status("good", "Ready=True", |p| condition_is(p, "Ready", "True"))
        .await;
    // The undecodable one is reported on its own, and not swept.
    let reported = wait_until(SOON, || async {
        raw.get("bad")
            .await
            .ok()
            .is_some_and(|o| spec_invalid(&o).is_some_and(|c| c["status"] == "True"))
    })
    .await;
    let bad = raw.get("bad").await.unwrap();
    assert!(reported, "{:#}\n{}", bad.data, s.ctl.log_tail(30));
    let cond = spec_invalid(&bad).unwrap();
    let message = cond["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("cannot be decoded:") && message.contains("boolean"),
        "{cond:#}"
    );
    let warned = wait_until(SOON, || async {
        s.events_about("bad").await.iter().any(|e| {
            e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("Undecodable")
        })
    })
    .await;
    assert!(warned, "{:#?}", s.events_about("bad").await);
    assert!(s.gw.groups().await.contains(&key(BAD_JOB)), "bad was swept");
    assert!(
        s.ctl
            .log_events()
            .iter()
            .any(|e| e["message"] == "policy cannot be decoded; not swept"),
        "{}",
        s.ctl.log_tail(30)
    );
    assert_eq!(s.ctl.readyz().await, Some(200));

    // Fixed, it decodes and is swept like any other.
    raw.patch(
        "bad",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .expect("fix bad");
    s.wait_gone(&[BAD_JOB]).await;
    s.wait_status("bad", "SpecInvalid=False", |p| {
        condition_is(p, "SpecInvalid", "False")
    })
    .await;
}
