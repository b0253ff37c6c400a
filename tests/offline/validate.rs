//! `validate` as CI runs it: the binary, its exit codes and its JSON, with no cluster and no
//! network (the policies point at hosts that do not exist).

use crate::common;

use std::time::Duration;

use common::{janitor, run_bounded};
use serde_json::Value;

fn validate(args: &[&str]) -> (i32, String) {
    let mut cmd = janitor();
    cmd.arg("validate").args(args);
    let out = run_bounded(cmd, Duration::from_secs(30));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn the_example_policies_pass_with_exit_0() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policies");
    let (code, out) = validate(&[dir]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("5 valid, 0 invalid"), "{out}");
}

#[test]
fn a_broken_policy_fails_with_exit_2_and_json_naming_file_document_policy_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  name: good\n  namespace: team\nspec:\n  static:\n    urls: [\"http://pgw-0.invalid:9091\"]\n  ttl: 6h\n";
    let bad = good
        .replace("name: good", "name: bad")
        .replace("ttl: 6h", "ttl: 6h\n  dryrun: true");
    let file = dir.path().join("policies.yaml");
    std::fs::write(&file, format!("{good}---\n{bad}")).unwrap();
    let path = file.to_str().unwrap();

    let (code, out) = validate(&["--output", "json", path]);
    assert_eq!(code, 2, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["summary"]["valid"], 1);
    assert_eq!(report["summary"]["invalid"], 1);
    let doc = &report["documents"][1];
    assert_eq!(doc["file"], path);
    assert_eq!(doc["document"], 2);
    assert_eq!(doc["policy"], "team/bad");
    assert_eq!(doc["result"], "invalid");
    assert_eq!(
        doc["problems"],
        serde_json::json!([{"check": "schema", "field": "spec.dryrun", "message": "unknown field"}])
    );

    // The good document alone passes; a missing path fails.
    std::fs::write(&file, good).unwrap();
    assert_eq!(validate(&[path]).0, 0);
    let missing = dir.path().join("missing.yaml");
    let (code, out) = validate(&[missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("missing.yaml"), "{out}");
}
