//! Points 1 and 8: the CRD on the real server. It becomes Established with its names; the
//! published OpenAPI v3 carries the field docs that `kubectl explain` shows; the Table output
//! gives the printer columns with values after a sweep; a newer CRD (an added optional field)
//! applied over the live one keeps the objects and the running controller.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::api::{Api, Patch, PatchParams, ValidationDirective};
use serde_json::{json, Value};

use super::setup::*;
use crate::common::k8s::{
    apply_crd, committed_crd, committed_crd_with_spec_field, wait_until, Cluster, CRD_NAME,
};
use crate::common::{sleep_past, GatewayOpts};

async fn get_json(cluster: &Cluster, path: &str, accept: &str) -> Value {
    let req = axum::http::Request::get(path)
        .header("Accept", accept)
        .body(Vec::new())
        .unwrap();
    cluster
        .client
        .request::<Value>(req)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_crd_is_established_and_publishes_its_docs() {
    let cluster = Cluster::new("crd").await;
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let crd = api.get(CRD_NAME).await.expect("the CRD is installed");
    let status = crd.status.expect("CRD status");
    let conditions = status.conditions.unwrap_or_default();
    for type_ in ["Established", "NamesAccepted"] {
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == type_ && c.status == "True"),
            "{type_}: {conditions:#?}"
        );
    }
    let names = status.accepted_names.expect("acceptedNames");
    assert_eq!(names.short_names, Some(vec!["pgr".to_string()]));
    assert_eq!(names.categories, Some(vec!["pushgateway".to_string()]));

    // What `kubectl explain pgr.spec.ttl` reads: the OpenAPI v3 document of the group version.
    // Published a moment after the CRD is Established.
    let group = "apis/pgw-janitor.dev/v1alpha1";
    let url = std::sync::Mutex::new(None);
    let published = wait_until(SOON, || async {
        let index = get_json(&cluster, "/openapi/v3", "application/json").await;
        let found = index["paths"][group]["serverRelativeURL"]
            .as_str()
            .map(String::from);
        let ok = found.is_some();
        *url.lock().unwrap() = found;
        ok
    })
    .await;
    assert!(published, "no OpenAPI v3 path {group} within {SOON:?}");
    let url = url.into_inner().unwrap().unwrap();
    let doc = get_json(&cluster, &url, "application/json").await;
    let schema = &doc["components"]["schemas"]["dev.pgw-janitor.v1alpha1.PushgatewayRetention"];
    let spec = &schema["properties"]["spec"]["properties"];
    let committed = serde_json::to_value(committed_crd()).unwrap();
    let local = &committed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        ["spec"]["properties"];
    for field in ["ttl", "selector", "action", "service", "dryRun"] {
        let served = spec[field]["description"].as_str().unwrap_or_default();
        assert!(
            !served.is_empty(),
            "spec.{field} has no description in OpenAPI v3"
        );
        assert_eq!(
            served,
            local[field]["description"].as_str().unwrap(),
            "spec.{field}"
        );
    }
    assert!(
        spec["ttl"]["description"]
            .as_str()
            .unwrap()
            .contains("on their own replica's clock"),
        "{:#}",
        spec["ttl"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_table_output_has_the_printer_columns_after_a_sweep() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("table", GatewayOpts::default()).await;
    s.gw.push(STALE_1, "x 1\n").await;
    s.gw.push(STALE_2, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create("tabled", spec_for(&s.gw, json!({}))).await;
    s.wait_gone(&[STALE_1, STALE_2]).await;
    s.wait_status("tabled", "Ready=True, 2 deleted", |p| {
        condition_is(p, "Ready", "True")
            && p.status.as_ref().is_some_and(|st| st.totals.deleted == 2)
    })
    .await;
    let path = format!(
        "/apis/pgw-janitor.dev/v1alpha1/namespaces/{}/pushgatewayretentions",
        s.cluster.ns
    );
    let table = get_json(
        &s.cluster,
        &path,
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .await;
    assert_eq!(table["kind"], "Table", "{table:#}");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Name",
            "TTL",
            "Action",
            "Replicas",
            "Deleted",
            "Last Sweep",
            "Ready"
        ]
    );
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{table:#}");
    let cells = rows[0]["cells"].as_array().unwrap();
    assert_eq!(
        cells[..5],
        [
            json!("tabled"),
            json!(TTL),
            json!("DeleteGroups"),
            json!(1),
            json!(2)
        ]
    );
    assert_eq!(cells[6], json!("True"));
    // A date column is shown as an age, e.g. "3s" (with its own columns, a CRD has no Age).
    let since = cells[5].as_str().unwrap_or_default();
    assert!(
        since.ends_with('s') || since.ends_with('m'),
        "Last Sweep cell: {since:?}"
    );
}

/// The committed CRD with one more optional spec field, as a newer release would ship it.
fn newer_crd() -> CustomResourceDefinition {
    committed_crd_with_spec_field(
        "owner",
        JSONSchemaProps {
            type_: Some("string".into()),
            description: Some("Who to ask about this policy.".into()),
            ..Default::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_crd_keeps_the_objects_and_the_controller_running() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("upgrade", GatewayOpts::default()).await;
    s.gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create(
        "before",
        spec_for(&s.gw, json!({"selector": r#"{job=~"stale-.*"}"#})),
    )
    .await;
    s.wait_gone(&[STALE_1]).await;
    let before = s
        .wait_status("before", "Ready=True", |p| condition_is(p, "Ready", "True"))
        .await;

    let upgraded = apply_crd(&s.cluster.client, &newer_crd()).await;
    let served = upgraded.spec.versions[0].schema.as_ref().unwrap();
    assert!(served
        .open_api_v3_schema
        .as_ref()
        .unwrap()
        .properties
        .as_ref()
        .unwrap()["spec"]
        .properties
        .as_ref()
        .unwrap()
        .contains_key("owner"));

    // The object is still there, unchanged, with its status; the same process goes on sweeping.
    let kept = s.get("before").await;
    assert_eq!(kept.metadata.uid, before.metadata.uid);
    assert_eq!(kept.spec, before.spec);
    let pid = s.ctl.pid();
    s.gw.push(STALE_2, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.wait_gone(&[STALE_2]).await;
    s.wait_sweeps("before", totals_sweeps(&kept), 1).await;
    assert_eq!(s.ctl.pid(), pid, "the controller was restarted");

    // An object using the new field is accepted (strictly) and swept by the old controller.
    let obj = json!({
        "apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
        "metadata": {"name": "after"},
        "spec": spec_for(&s.gw, json!({"owner": "team-a", "selector": r#"{job="new"}"#})),
    });
    s.api
        .patch(
            "after",
            &PatchParams::apply("upgrade-test").validation(ValidationDirective::Strict),
            &Patch::Apply(&obj),
        )
        .await
        .expect("an object with the new field");
    s.gw.push(&[("job", "new")], "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.wait_gone(&[&[("job", "new")]]).await;
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        s.cluster.client.clone(),
        &s.cluster.ns,
        &kube::api::ApiResource::erase::<pushgateway_janitor::crd::PushgatewayRetention>(&()),
    );
    let after = raw.get("after").await.expect("get");
    assert_eq!(
        after.data["spec"]["owner"], "team-a",
        "the new field is stored"
    );
    assert!(
        after.data["status"]["totals"]["sweeps"].as_i64() >= Some(1),
        "{:#}",
        after.data
    );
}
