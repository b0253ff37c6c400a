//! Property tests over arbitrary input for the parsers users feed (issue #11, "bad input,
//! fuzzed"): the selector parser, the duration parser, and the spec checker behind
//! `run --policies` (YAML through `runner::load::parse_into`, then `policy::check`). Each must
//! never panic, and must refuse bad input with a clear error naming what is wrong.
//! (The streaming reader of `/api/v1/metrics` is fuzzed in `src/gateway/read/fuzz.rs`.)
//!
//! Short by default for CI; a longer run:
//! `PGW_JANITOR_FUZZ_CASES=20000 cargo test --test offline fuzz_inputs::`.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use pushgateway_janitor::duration::parse_duration;
use pushgateway_janitor::policy;
use pushgateway_janitor::runner::load::{parse_into, Loaded};
use pushgateway_janitor::selector::Selector;
use pushgateway_janitor::sweep::Tuning;
use pushgateway_janitor::Error;

fn cases(default: u32) -> u32 {
    std::env::var("PGW_JANITOR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Text made mostly of the characters a grammar cares about, so cases reach deep into it.
fn near(alphabet: &'static str, max: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    prop::collection::vec(prop::sample::select(chars), 0..max).prop_map(|v| v.into_iter().collect())
}

fn check_selector(s: &str) -> Result<(), TestCaseError> {
    match s.parse::<Selector>().map_err(Error::from) {
        Ok(sel) => {
            // Never more matchers than the input could spell (each needs at least `a=""`).
            prop_assert!(sel.matchers().len() <= s.len() / 3 + 1);
            // What it prints, it reads back the same.
            prop_assert_eq!(sel.to_string().parse::<Selector>().ok(), Some(sel));
        }
        Err(Error::Config { what, message }) => {
            prop_assert!(what.starts_with("selector "), "{what}");
            prop_assert!(!message.is_empty());
        }
        Err(other) => prop_assert!(false, "not a config error: {other}"),
    }
    Ok(())
}

fn check_duration(s: &str) -> Result<(), TestCaseError> {
    match parse_duration(s) {
        Ok(_) => prop_assert!(s.chars().any(|c| c.is_ascii_digit()), "{s:?} has no number"),
        Err(e) => {
            let message = e.to_string();
            prop_assert!(!message.is_empty());
            prop_assert!(message.contains(&format!("{s:?}")), "{message} names {s:?}");
        }
    }
    Ok(())
}

/// A policy document with each slot filled from a pool of valid and broken values.
fn policy_yaml() -> impl Strategy<Value = String> {
    let durations = prop::sample::select(vec![
        "1s",
        "2m",
        "7d",
        "0",
        "0s",
        "-1s",
        "",
        "1x",
        "99999999999999999999y",
        "1e3s",
        "'10s'",
        "null",
        "[1]",
        "{a: 1}",
        "\"\\u0000\"",
        "5m5m",
        "1h30m",
        "2w",
        "nan",
    ]);
    let selectors = prop::sample::select(vec![
        "'{job=\"a\"}'",
        "'{job=~\"(\"}'",
        "'{'",
        "''",
        "'{\"service.name\"=\"x\"}'",
        "'{a=\"b\",}'",
        "'{__name__=\"x\"}'",
        "'{job!~\".*\"}'",
        "1",
        "null",
        "'{job=\"\\xff\"}'",
    ]);
    let sources = prop::sample::select(vec![
        "static:\n    urls: [\"http://127.0.0.1:9091/\"]",
        "static:\n    urls: []",
        "static:\n    urls: [\"not a url\"]",
        "static:\n    urls: [\"ftp://x/\"]",
        "prometheus:\n    url: http://127.0.0.1:9090\n    job: pushgateway",
        "prometheus:\n    url: ''\n    job: ''",
        "prometheus:\n    url: http://p:9090\n    job: pgw\n    discovery: Up",
        "prometheus:\n    url: http://p:9090\n    job: pgw\n    discovery: Up\n    allowedReplicas:\n      cidrs: [\"10.0.0.0/33\"]",
        "prometheus:\n    url: http://p:9090\n    job: pgw\n    allowedReplicas:\n      regex: '('",
        "service:\n    name: pgw\n    port: ''",
        "static:\n    urls: [\"http://a/\"]\n  prometheus:\n    url: http://p\n    job: j",
        "",
    ]);
    let extras = prop::sample::select(vec![
        "",
        "action: Wipe",
        "action: Nope",
        "schedule:\n    cron: '0 3 * * *'",
        "action: Wipe\n  schedule:\n    cron: 'not cron'\n    timeZone: Mars/Base",
        "maxDeletions:\n    count: -1",
        "maxDeletions:\n    percent: 101",
        "maxDeletions:\n    percent: .nan",
        "ttlFromMetric: ''",
        "maxTtl: 1s",
        "superseded:\n    enabled: true\n    grace: 0s",
        "dryRun: maybe",
        "suspend: true",
        "gatewayAuth:\n    bearerToken:\n      name: ''\n      key: ''",
    ]);
    (durations.clone(), durations.clone(), durations, selectors, sources, extras).prop_map(
        |(ttl, min_ttl, interval, selector, source, extra)| {
            format!(
                "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
                 name: fuzz\n  namespace: fuzz\nspec:\n  {source}\n  ttl: {ttl}\n  minTtl: {min_ttl}\n  \
                 interval: {interval}\n  selector: {selector}\n  {extra}\n"
            )
        },
    )
}

/// Loads `text` as one policy file and checks every policy in it. Everything refused names its
/// file and says why; a refused check names the spec field.
fn check_policy_text(text: &str) -> Result<(), TestCaseError> {
    let mut loaded = Loaded::default();
    parse_into(Path::new("fuzz.yaml"), text, &mut loaded);
    for problem in loaded.errors.iter().chain(&loaded.skipped) {
        let shown = problem.to_string();
        prop_assert!(shown.starts_with("fuzz.yaml"), "{shown}");
        prop_assert!(!problem.message.is_empty(), "{shown}");
    }
    for p in &loaded.policies {
        match policy::check(&p.spec, Duration::from_secs(1), &Tuning::default()) {
            Ok(_) => {}
            Err(e @ Error::Invalid { .. }) => {
                let what = e.to_string();
                prop_assert!(
                    what.starts_with("invalid spec:") || what.starts_with("invalid spec."),
                    "names the field: {what}"
                );
                prop_assert!(!what.contains("--"), "names no flag: {what}");
            }
            Err(other) => prop_assert!(false, "not a field error: {other}"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn selectors_from_arbitrary_text_parse_or_say_why(s in any::<String>()) {
        check_selector(&s)?;
    }

    #[test]
    fn selectors_near_the_grammar_parse_or_say_why(s in near("{}=~!\"'`,ab_ .*\\()[]U\u{e9}\n", 40)) {
        check_selector(&s)?;
    }

    #[test]
    fn durations_from_arbitrary_text_parse_or_say_why(s in any::<String>()) {
        check_duration(&s)?;
    }

    #[test]
    fn durations_near_the_grammar_parse_or_say_why(s in near("0123456789msuhdwyinecor .-+", 30)) {
        check_duration(&s)?;
    }

    #[test]
    fn policies_with_broken_fields_load_or_are_refused_naming_the_field(text in policy_yaml()) {
        check_policy_text(&text)?;
    }

    #[test]
    fn policy_files_of_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_policy_text(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn mutated_example_policies_never_panic(
        which in 0usize..4,
        cut in any::<prop::sample::Index>(),
        insert in prop::sample::select(vec!["", ":", "- ", "{", "]", "\n  ", "'", "&a ", "*a", "!!binary "]),
    ) {
        let examples = [
            include_str!("../../examples/policies/ttl-per-job.yaml"),
            include_str!("../../examples/policies/stale-copies.yaml"),
            include_str!("../../examples/policies/nightly-wipe.yaml"),
            include_str!("../../examples/policies/dry-run.yaml"),
        ];
        let text = examples[which];
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        check_policy_text(&format!("{}{insert}{}", &text[..at], &text[at..]))?;
    }
}

#[test]
fn a_billion_laughs_yaml_is_refused_or_bounded() {
    // Aliases that expand exponentially: the loader must not build the expansion.
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let prev = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    let mut loaded = Loaded::default();
    parse_into(Path::new("laughs.yaml"), &text, &mut loaded);
    assert!(loaded.policies.is_empty());
    assert!(
        !loaded.errors.is_empty() || !loaded.skipped.is_empty(),
        "neither refused nor skipped"
    );
}
