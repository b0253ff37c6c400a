//! The alert rules in `deploy/prometheus/pgw-janitor-rules.yaml`, checked and unit-tested by a
//! real `promtool` (Debian's `prometheus` package; `PGW_JANITOR_TEST_PROMTOOL` names another),
//! with the test cases in `tests/alerts/*.yaml`. Mutants prove the cases bite: with any one alert
//! made to never fire, or to always fire, the unit tests must fail and name that alert.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::run_bounded;
use serde_json::Value;

const RULES: &str = "deploy/prometheus/pgw-janitor-rules.yaml";
const CHART_COPY: &str = "charts/pushgateway-janitor/files/pgw-janitor-rules.yaml";
const RUNBOOKS: &str = "charts/pushgateway-janitor/README.md";
const RUNBOOK_BASE: &str =
    "https://github.com/pgw-janitor/pushgateway-janitor/blob/main/charts/pushgateway-janitor/README.md#";
const PROMTOOL_TIMEOUT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn promtool(args: &[&str]) -> Output {
    let bin = std::env::var("PGW_JANITOR_TEST_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(root());
    run_bounded(cmd, PROMTOOL_TIMEOUT)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn yaml(path: &Path) -> Value {
    let body = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn test_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/alerts"))
        .expect("tests/alerts")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no promtool test files in tests/alerts");
    files
}

/// Every alerting rule of the rule file, as (group index, rule index, rule).
fn alerts(rules: &Value) -> Vec<(usize, usize, Value)> {
    let mut out = Vec::new();
    for (g, group) in rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .enumerate()
    {
        for (r, rule) in group["rules"].as_array().expect("rules").iter().enumerate() {
            if rule.get("alert").is_some() {
                out.push((g, r, rule.clone()));
            }
        }
    }
    out
}

/// GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn promtool_check_rules_accepts_the_rule_file_and_the_charts_copy() {
    let out = promtool(&["check", "rules", RULES, CHART_COPY]);
    assert!(out.status.success(), "{}", text(&out));
    let n = alerts(&yaml(&root().join(RULES))).len();
    assert!(
        text(&out).contains(&format!("SUCCESS: {n} rules found")),
        "{}",
        text(&out)
    );
}

#[test]
fn the_charts_copy_is_the_rule_file() {
    let source = std::fs::read(root().join(RULES)).unwrap();
    let copy = std::fs::read(root().join(CHART_COPY)).unwrap();
    assert!(
        source == copy,
        "{CHART_COPY} drifted from {RULES}: cp {RULES} charts/pushgateway-janitor/files/"
    );
}

#[test]
fn promtool_unit_tests_of_every_alert_pass() {
    let files = test_files();
    let mut args = vec!["test".to_string(), "rules".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = promtool(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("FAILED"), "{}", text(&out));
    // Every alert is evaluated by at least one case, by name.
    let tested: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for (_, _, rule) in alerts(&yaml(&root().join(RULES))) {
        let name = rule["alert"].as_str().unwrap();
        assert!(
            tested.contains(&format!("alertname: {name}\n")),
            "{name} has no promtool test case"
        );
    }
}

/// Runs the unit tests against a copy of the rules where `alert`'s expression is `expr`.
fn run_with_mutant(g: usize, r: usize, expr: &str, dir: &Path) -> Output {
    let mut rules = yaml(&root().join(RULES));
    rules["groups"][g]["rules"][r]["expr"] = Value::String(expr.into());
    let mutant = dir.join("rules.json");
    std::fs::write(&mutant, serde_json::to_string(&rules).unwrap()).unwrap();
    let mut args = vec!["test".to_string(), "rules".to_string()];
    for (i, file) in test_files().iter().enumerate() {
        let mut test = yaml(file);
        test["rule_files"] = serde_json::json!([mutant.display().to_string()]);
        let path = dir.join(format!("test-{i}.json"));
        std::fs::write(&path, serde_json::to_string(&test).unwrap()).unwrap();
        args.push(path.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    promtool(&args)
}

/// Per alert name: how many evaluations expect it to fire, and how many expect silence.
fn cases() -> std::collections::BTreeMap<String, (usize, usize)> {
    let mut out = std::collections::BTreeMap::<String, (usize, usize)>::new();
    for file in test_files() {
        for test in yaml(&file)["tests"].as_array().expect("tests").iter() {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = case["alertname"].as_str().expect("alertname").to_string();
                let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
                let entry = out.entry(name).or_default();
                if fires {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
        }
    }
    out
}

#[test]
fn every_alert_has_a_case_that_fires_and_one_that_stays_silent() {
    let cases = cases();
    let dir = tempfile::tempdir().unwrap();
    for (g, r, rule) in alerts(&yaml(&root().join(RULES))) {
        let name = rule["alert"].as_str().unwrap();
        let (firing, silent) = cases.get(name).copied().unwrap_or_default();
        assert!(
            firing > 0 && silent > 0,
            "{name}: {firing} firing and {silent} silent evaluations"
        );
        for (what, expr) in [
            ("never fires", "vector(0) > 1"),
            ("fires on everything", "vector(1)"),
        ] {
            let out = run_with_mutant(g, r, expr, dir.path());
            assert!(
                !out.status.success(),
                "with {name} made to {what}, the promtool tests still pass: it lacks a case"
            );
            assert!(
                text(&out).contains(&format!("alertname: {name},")),
                "with {name} made to {what}, the failures do not name it:\n{}",
                text(&out)
            );
        }
    }
}

#[test]
fn every_alert_has_severity_summary_description_and_a_runbook_that_exists() {
    let readme = std::fs::read_to_string(root().join(RUNBOOKS)).unwrap();
    let anchors: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| anchor(h.trim_start_matches('#')))
        .collect();
    let alerts = alerts(&yaml(&root().join(RULES)));
    assert!(alerts.len() >= 7, "{} alerts", alerts.len());
    for (_, _, rule) in alerts {
        let name = rule["alert"].as_str().unwrap();
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("critical" | "warning" | "info")),
            "{name}: severity {severity:?}"
        );
        for key in ["summary", "description"] {
            let v = rule["annotations"][key].as_str().unwrap_or_default();
            assert!(!v.trim().is_empty(), "{name}: no {key}");
        }
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_default();
        let fragment = url
            .strip_prefix(RUNBOOK_BASE)
            .unwrap_or_else(|| panic!("{name}: runbook_url {url:?} is not in {RUNBOOKS}"));
        assert_eq!(fragment, name.to_lowercase(), "{name}: its own runbook");
        assert!(
            anchors.iter().any(|a| a == fragment),
            "{name}: {RUNBOOKS} has no heading with anchor #{fragment}"
        );
    }
}
