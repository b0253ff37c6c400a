//! A table of broken policies, each with the check, the field and the message it must get.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

const HEAD: &str = "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  name: p\n  namespace: team\n";

fn run(text: &str) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, text).unwrap();
    validate(&[file], Duration::from_secs(60))
}

fn policy(spec: &str) -> String {
    format!("{HEAD}spec:\n{spec}")
}

#[test]
fn the_example_policies_are_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let report = validate(&[dir], Duration::from_secs(60));
    assert!(report.valid, "{}", report.to_text());
    assert!(report.summary.valid >= 4, "{}", report.to_text());
    assert_eq!(report.summary.invalid, 0);
}

#[test]
fn each_broken_policy_gets_its_check_field_and_message() {
    let urls = "  static:\n    urls: [\"http://pgw:9091\"]\n";
    let cases: Vec<(String, Check, Option<&str>, &str)> = vec![
        // Schema: types, enums, required, unknown fields, patterns, bounds.
        (policy(&format!("{urls}  ttl: 6h\n  tll: 5m\n")), Check::Schema, Some("spec.tll"), "unknown field"),
        (policy(&format!("{urls}  ttl: 5\n")), Check::Schema, Some("spec.ttl"), "must be of type string, not integer"),
        (policy(&format!("{urls}  ttl: 6h\n  action: Delete\n")), Check::Schema, Some("spec.action"), "expected one of \"DeleteGroups\", \"Wipe\""),
        (policy(&format!("{urls}  ttl: six hours\n")), Check::Schema, Some("spec.ttl"), "does not match"),
        (policy("  static:\n    urls: []\n  ttl: 6h\n"), Check::Schema, Some("spec.static.urls"), "at least 1 item"),
        (policy("  prometheus:\n    url: http://p:9090\n  ttl: 6h\n"), Check::Schema, Some("spec.prometheus.job"), "is required"),
        (policy(&format!("{urls}  ttl: 6h\n  maxDeletions:\n    percent: 150\n")), Check::Schema, Some("spec.maxDeletions.percent"), "at most 100"),
        (HEAD.to_string(), Check::Schema, Some("spec"), "is required"),
        // CEL: the rules the API server runs.
        (policy("  ttl: 6h\n"), Check::Cel, None, "set exactly one gateway source"),
        (policy(urls), Check::Cel, None, "ttl is required when action is DeleteGroups"),
        (policy(&format!("{urls}  ttl: 30s\n")), Check::Cel, None, "ttl is under minTtl"),
        (policy("  prometheus:\n    url: http://p:9090\n    job: pgw\n    discovery: Up\n  ttl: 6h\n"), Check::Cel, None, "needs prometheus.allowedReplicas"),
        (policy(&format!("{urls}  ttl: 6h\n  schedule:\n    cron: \"0 3 * * *\"\n")), Check::Cel, None, "schedule is only for action Wipe"),
        // The janitor's own checks: what neither schema nor CEL can say.
        (policy(&format!("{urls}  ttl: 6h\n  selector: '{{job=~\"(\"}}'\n")), Check::Janitor, Some("spec.selector"), ""),
        (policy(&format!("{urls}  action: Wipe\n  schedule:\n    cron: \"61 3 * * *\"\n")), Check::Janitor, Some("spec.schedule.cron"), "61 3"),
        (policy(&format!("{urls}  action: Wipe\n  schedule:\n    cron: \"0 3 * * *\"\n    timeZone: Mars/Olympus\n")), Check::Janitor, Some("spec.schedule.timeZone"), "Mars/Olympus"),
        (policy("  static:\n    urls: [\"pgw:9091\"]\n  ttl: 6h\n"), Check::Janitor, Some("spec.static.urls[0]"), ""),
        // A minTtl under the floor passes the schema and CEL; the controller's floor does not.
        (policy(&format!("{urls}  ttl: 30s\n  minTtl: 1s\n")), Check::Janitor, Some("spec.ttl"), "floor"),
        (policy(&format!("{urls}  ttl: 6h\n  interval: 0s\n")), Check::Janitor, Some("spec.interval"), "at least 1s"),
        // A TTL on a plain wipe would be ignored: refused, as `sweep --action wipe --ttl` is.
        (policy(&format!("{urls}  ttl: 6h\n  action: Wipe\n")), Check::Janitor, Some("spec.ttl"), "has no effect with a plain action Wipe"),
        // Load: what is not a policy document at all.
        ("apiVersion: pgw-janitor.dev/v1\nkind: PushgatewayRetention\nmetadata:\n  name: p\nspec:\n  static:\n    urls: [\"http://pgw:9091\"]\n  ttl: 6h\n".into(), Check::Load, None, "expected pgw-janitor.dev/v1alpha1"),
        ("apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata: {}\nspec:\n  static:\n    urls: [\"http://pgw:9091\"]\n  ttl: 6h\n".into(), Check::Load, None, "metadata.name is required"),
        ("spec: [unclosed\n".into(), Check::Load, None, "not valid YAML"),
    ];
    for (text, check, field, message) in cases {
        let report = run(&text);
        assert!(!report.valid, "accepted:\n{text}");
        let problems: Vec<&Finding> = report.documents.iter().flat_map(|d| &d.problems).collect();
        let hit = problems.iter().any(|p| {
            p.check == check
                && (field.is_none() || p.field.as_deref() == field)
                && p.message.contains(message)
        });
        assert!(
            hit,
            "want {check:?} {field:?} {message:?} for\n{text}\ngot {problems:?}"
        );
    }
}

#[test]
fn every_problem_names_file_document_policy_and_field() {
    let text = format!(
        "{}\n---\n{}",
        policy("  static:\n    urls: [\"http://pgw:9091\"]\n  ttl: 6h\n"),
        policy("  static:\n    urls: [\"http://pgw:9091\"]\n  ttl: 6h\n  tll: 1m\n")
            .replace("name: p", "name: q")
    );
    let report = run(&text);
    assert_eq!((report.summary.valid, report.summary.invalid), (1, 1));
    let bad = &report.documents[1];
    assert_eq!(bad.document, Some(2));
    assert_eq!(bad.policy.as_deref(), Some("team/q"));
    let line = report
        .to_text()
        .lines()
        .find(|l| l.starts_with("invalid"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("p.yaml (document 2, line ")
            && line.contains("policy team/q: spec.tll: unknown field [schema]"),
        "{line}"
    );
}

#[test]
fn a_duplicate_policy_and_another_kind_are_told_apart() {
    let one = policy("  static:\n    urls: [\"http://pgw:9091\"]\n  ttl: 6h\n");
    let text =
        format!("{one}---\n{one}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n");
    let report = run(&text);
    let results: Vec<Outcome> = report.documents.iter().map(|d| d.result).collect();
    assert_eq!(
        results,
        [Outcome::Valid, Outcome::Invalid, Outcome::Skipped]
    );
    assert!(report.documents[1].problems[0]
        .message
        .contains("duplicate policy"));
}

#[test]
fn the_floor_is_the_one_given() {
    let text = policy("  static:\n    urls: [\"http://pgw:9091\"]\n  ttl: 30s\n  minTtl: 1s\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, text).unwrap();
    assert!(!validate(std::slice::from_ref(&file), Duration::from_secs(60)).valid);
    assert!(validate(&[file], Duration::from_secs(1)).valid);
}
