//! The CRD YAML committed under `crds/` (and the chart's copy) is exactly what the binary
//! generates from the Rust types. When this fails, regenerate:
//!   cargo run -q -- crd > crds/pushgatewayretentions.pgw-janitor.dev.yaml
//!   cp crds/pushgatewayretentions.pgw-janitor.dev.yaml charts/pushgateway-janitor/files/

pub mod common;

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

#[test]
fn the_crd_has_what_kubectl_users_see() {
    let crd = generated();
    for needle in [
        "group: pgw-janitor.dev",
        "name: v1alpha1",
        "scope: Namespaced",
        "- pgr",
        "- pushgateway",
        "subresources:",
        "x-kubernetes-validations:",
        "x-kubernetes-list-type: map",
        "name: Last Sweep",
        "name: Ready",
    ] {
        assert!(crd.contains(needle), "CRD lacks {needle:?}");
    }
}
