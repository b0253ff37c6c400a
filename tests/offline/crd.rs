//! The CRD YAML committed under `crds/` (and the chart's copy) is exactly what the binary
//! generates from the Rust types. When this fails, regenerate:
//!   cargo run -q -- crd > crds/pushgatewayretentions.pgw-janitor.dev.yaml
//!   cp crds/pushgatewayretentions.pgw-janitor.dev.yaml charts/pushgateway-janitor/files/

use crate::common;

use serde_json::{json, Value};

const FILE: &str = "pushgatewayretentions.pgw-janitor.dev.yaml";

fn generated() -> String {
    let mut cmd = common::janitor();
    cmd.arg("crd");
    let out = common::run_bounded(cmd, std::time::Duration::from_secs(60));
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_committed_crd_matches_the_rust_types() {
    let committed =
        std::fs::read_to_string(format!("{}/crds/{FILE}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert!(
        committed == generated(),
        "crds/{FILE} drifted from src/crd.rs: regenerate it with `cargo run -q -- crd > crds/{FILE}`"
    );
}

#[test]
fn the_charts_crd_copy_matches_the_committed_crd() {
    let root = env!("CARGO_MANIFEST_DIR");
    let committed = std::fs::read_to_string(format!("{root}/crds/{FILE}")).unwrap();
    let copy =
        std::fs::read_to_string(format!("{root}/charts/pushgateway-janitor/files/{FILE}")).unwrap();
    assert!(
        committed == copy,
        "the chart's CRD copy drifted: cp crds/{FILE} charts/pushgateway-janitor/files/"
    );
}

/// What `kubectl` users see, read from the parsed CRD at its place (a substring could come from
/// anywhere in 600 lines, a description included).
#[test]
fn the_crd_has_what_kubectl_users_see() {
    let crd: Value = serde_saphyr::from_str(&generated()).expect("the generated CRD parses");
    let spec = &crd["spec"];
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(
        crd["metadata"]["name"],
        "pushgatewayretentions.pgw-janitor.dev"
    );
    assert_eq!(spec["group"], "pgw-janitor.dev");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "PushgatewayRetention");
    assert_eq!(spec["names"]["shortNames"], json!(["pgr"]));
    assert_eq!(spec["names"]["categories"], json!(["pushgateway"]));

    let versions = spec["versions"].as_array().expect("spec.versions");
    assert_eq!(versions.len(), 1, "{versions:?}");
    let v = &versions[0];
    assert_eq!(v["name"], "v1alpha1");
    assert_eq!((&v["served"], &v["storage"]), (&json!(true), &json!(true)));
    assert_eq!(
        v["subresources"],
        json!({"status": {}}),
        "status is a subresource"
    );

    let columns: Vec<(&str, &str)> = v["additionalPrinterColumns"]
        .as_array()
        .expect("additionalPrinterColumns")
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["jsonPath"].as_str().unwrap()))
        .collect();
    assert_eq!(
        columns,
        [
            ("TTL", ".spec.ttl"),
            ("Action", ".spec.action"),
            ("Replicas", ".status.lastSweep.replicasFound"),
            ("Deleted", ".status.totals.deleted"),
            ("Last Sweep", ".status.lastSweep.startTime"),
            ("Ready", r#".status.conditions[?(@.type=="Ready")].status"#),
        ]
    );

    let schema = &v["schema"]["openAPIV3Schema"]["properties"];
    // The API server runs the spec's cross-field rules (the admission tests send it what they
    // refuse); here, that they sit on the spec.
    let rules: Vec<&str> = schema["spec"]["x-kubernetes-validations"]
        .as_array()
        .expect("spec.x-kubernetes-validations")
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"set exactly one gateway source: prometheus, service or static")
            && rules.contains(&"ttl is required when action is DeleteGroups"),
        "{rules:?}"
    );
    // Conditions merge by type under server-side apply.
    let conditions = &schema["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
}
