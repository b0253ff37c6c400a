use std::path::Path;
use std::time::Duration;

use super::load::{self, parse_into, Loaded};
use super::load_policies;
use crate::sweep::Tuning;

fn policy(name: &str, namespace: Option<&str>) -> String {
    let ns = namespace
        .map(|n| format!("  namespace: {n}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
         name: {name}\n{ns}spec:\n  static:\n    urls: [\"http://pgw:9091\"]\n  ttl: 1h\n"
    )
}

fn parse(file: &str, text: &str) -> Loaded {
    let mut loaded = Loaded::default();
    parse_into(Path::new(file), text, &mut loaded);
    loaded
}

#[test]
fn a_file_holds_several_documents_and_empty_ones_are_ignored() {
    let text = format!(
        "---\n{}---\n# only a comment\n---\n{}",
        policy("a", Some("team")),
        policy("b", Some("team"))
    );
    let loaded = parse("p.yaml", &text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let ids: Vec<String> = loaded.policies.iter().map(|p| p.id()).collect();
    assert_eq!(ids, ["team/a", "team/b"]);
    assert_eq!(loaded.policies[1].spec.ttl.as_deref(), Some("1h"));
    assert!(
        loaded.policies[1].origin.line > loaded.policies[0].origin.line,
        "each document knows its line"
    );
}

#[test]
fn a_missing_namespace_is_default() {
    let loaded = parse("p.yaml", &policy("a", None));
    assert_eq!(loaded.policies[0].id(), "default/a");
}

#[test]
fn other_kinds_are_skipped_not_errors() {
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n---\n{}",
        policy("a", None)
    );
    let loaded = parse("bundle.yaml", &text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.policies.len(), 1);
    assert_eq!(loaded.skipped.len(), 1);
    let skipped = loaded.skipped[0].to_string();
    assert!(
        skipped.contains("bundle.yaml") && skipped.contains("ConfigMap"),
        "{skipped}"
    );
}

#[test]
fn a_wrong_api_version_or_no_name_is_an_error_naming_what_is_wrong() {
    let text = format!(
        "{}---\napiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\n\
         metadata: {{}}\nspec:\n  ttl: 1h\n",
        policy("old", None).replace("v1alpha1", "v1beta1")
    );
    let loaded = parse("p.yaml", &text);
    assert!(loaded.policies.is_empty());
    let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        errors[0].contains("default/old") && errors[0].contains("apiVersion"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("document 2") && errors[1].contains("metadata.name"),
        "{errors:?}"
    );
}

#[test]
fn a_spec_of_the_wrong_shape_is_an_error_and_the_next_document_still_loads() {
    let text = format!(
        "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
         name: bad\nspec:\n  dryRun: [1]\n---\n{}",
        policy("good", None)
    );
    let loaded = parse("p.yaml", &text);
    assert_eq!(loaded.policies.len(), 1);
    let error = loaded.errors[0].to_string();
    assert!(
        error.contains("default/bad") && error.contains("spec"),
        "{error}"
    );
}

#[test]
fn the_later_of_two_policies_with_one_name_is_refused_across_files() {
    let mut loaded = Loaded::default();
    parse_into(Path::new("a.yaml"), &policy("same", None), &mut loaded);
    let twice = format!(
        "{}---\n{}",
        policy("same", Some("default")),
        policy("same", Some("other"))
    );
    parse_into(Path::new("b.yaml"), &twice, &mut loaded);
    let ids: Vec<String> = loaded.policies.iter().map(|p| p.id()).collect();
    assert_eq!(ids, ["default/same", "other/same"]);
    assert_eq!(loaded.errors.len(), 1);
    let error = loaded.errors[0].to_string();
    assert!(
        error.starts_with("b.yaml") && error.contains("duplicate") && error.contains("a.yaml"),
        "{error}"
    );
}

#[test]
fn broken_yaml_is_reported_for_its_file() {
    let loaded = parse("broken.yaml", "spec: [\n");
    assert!(loaded.policies.is_empty());
    assert!(loaded.errors[0]
        .to_string()
        .starts_with("broken.yaml: not valid YAML"));
}

#[test]
fn a_directory_gives_its_yaml_files_sorted_without_hidden_ones() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.yml", "a.yaml", "notes.txt", ".hidden.yaml"] {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
    let files = load::files(dir.path()).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["a.yaml", "b.yml"]);
    let empty = tempfile::tempdir().unwrap();
    assert!(load::files(empty.path())
        .unwrap_err()
        .to_string()
        .contains("no *.yaml"));
}

#[test]
fn checking_names_the_field_and_refuses_a_service_source() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}  selector: '{{job=~\"(\"}}'\n---\n{}",
        policy("bad-selector", None),
        "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
         name: svc\nspec:\n  service:\n    name: pgw\n  ttl: 1h\n"
    );
    std::fs::write(dir.path().join("p.yaml"), text).unwrap();
    let (runnable, problems) =
        load_policies(dir.path(), Duration::from_secs(60), &Tuning::default()).unwrap();
    assert!(runnable.is_empty());
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(text[0].contains("default/bad-selector") && text[0].contains("spec.selector"));
    assert!(text[1].contains("default/svc") && text[1].contains("needs a cluster"));
}

#[test]
fn the_example_policies_are_all_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let (runnable, problems) =
        load_policies(&dir, Duration::from_secs(60), &Tuning::default()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let ids: Vec<String> = runnable.iter().map(|p| p.id()).collect();
    assert_eq!(
        ids,
        [
            "monitoring/try-one-hour",
            "monitoring/nightly-wipe",
            "monitoring/stale-copies",
            "monitoring/nightly-jobs",
            "monitoring/ci-runs",
        ]
    );
    let wipe = &runnable[1].checked;
    assert!(wipe.cadence.cron.is_some(), "the nightly wipe is scheduled");
}
