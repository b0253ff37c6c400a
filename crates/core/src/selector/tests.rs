use proptest::prelude::*;
use regex::RegexBuilder;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sel(s: &str) -> Selector {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn err(s: &str) -> String {
    s.parse::<Selector>()
        .expect_err(&format!("{s} should not parse"))
        .to_string()
}

#[test]
fn empty_and_bare_braces_match_everything() {
    for s in ["", "  ", "{}", "{ }"] {
        let selector = sel(s);
        assert!(selector.is_match_all(), "{s}");
        assert!(selector.matches(&labels(&[("job", "x")])));
        assert!(selector.matches(&Labels::new()));
    }
    assert!(Selector::default().is_match_all());
}

#[test]
fn braces_are_optional_and_trailing_comma_allowed() {
    let a = sel(r#"job="a", env!="dev""#);
    let b = sel(r#"{ job = "a" , env != "dev", }"#);
    assert_eq!(a, b);
    assert_eq!(a.matchers().len(), 2);
}

#[test]
fn all_four_operators() {
    let s = sel(r#"{job=~"nightly-.*", env!="dev", team!~"infra|ops", region="eu"}"#);
    assert!(s.matches(&labels(&[
        ("job", "nightly-db"),
        ("env", "prod"),
        ("region", "eu")
    ])));
    assert!(!s.matches(&labels(&[("job", "hourly"), ("region", "eu")])));
    assert!(!s.matches(&labels(&[
        ("job", "nightly-db"),
        ("env", "dev"),
        ("region", "eu")
    ])));
    assert!(!s.matches(&labels(&[
        ("job", "nightly-a"),
        ("team", "ops"),
        ("region", "eu")
    ])));
    assert!(!s.matches(&labels(&[("job", "nightly-a"), ("region", "us")])));
}

#[test]
fn regexes_are_fully_anchored() {
    let s = sel(r#"job=~"night""#);
    assert!(s.matches(&labels(&[("job", "night")])));
    assert!(!s.matches(&labels(&[("job", "nightly")])));
    assert!(!s.matches(&labels(&[("job", "a-night")])));
    // Alternation is anchored as a whole, as Prometheus does: ^(?s:a|b)$ not ^a|b$.
    let alt = sel(r#"job=~"a|b""#);
    assert!(!alt.matches(&labels(&[("job", "ab")])));
    assert!(!alt.matches(&labels(&[("job", "xb")])));
}

#[test]
fn dot_matches_newline_like_prometheus() {
    let s = sel(r#"job=~"a.*b""#);
    assert!(s.matches(&labels(&[("job", "a\nb")])));
}

#[test]
fn missing_label_matches_as_empty_string() {
    let no_instance = labels(&[("job", "a")]);
    assert!(sel(r#"instance="""#).matches(&no_instance));
    assert!(!sel(r#"instance!="""#).matches(&no_instance));
    assert!(sel(r#"instance=~".*""#).matches(&no_instance));
    assert!(!sel(r#"instance=~".+""#).matches(&no_instance));
    assert!(sel(r#"env!="dev""#).matches(&no_instance));
}

#[test]
fn go_escapes_in_all_quote_styles() {
    let s = sel(r#"a="q\"b\\n\nx", b='it\'s', c=`raw\n`, d="\x41\101\u00e9\U0001F600\t""#);
    let m = s.matchers();
    assert_eq!(m[0].value(), "q\"b\\n\nx");
    assert_eq!(m[1].value(), "it's");
    assert_eq!(m[2].value(), "raw\\n", "backticks are raw");
    assert_eq!(m[3].value(), "AAé😀\t");
}

#[test]
fn display_round_trips_and_is_canonical() {
    let s = sel(r#"job =~ 'nightly-.*',instance="", v="a\"b\\c\nd\u0001""#);
    let shown = s.to_string();
    assert_eq!(
        shown,
        r#"{job=~"nightly-.*", instance="", v="a\"b\\c\nd\u0001"}"#
    );
    assert_eq!(sel(&shown), s);
    assert_eq!(Selector::default().to_string(), "{}");
}

#[test]
fn serde_uses_the_string_form() {
    let s = sel(r#"{job=~"a.*"}"#);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, r#""{job=~\"a.*\"}""#);
    let back: Selector = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    let bad = serde_json::from_str::<Selector>(r#""{job=~\"(\"}""#).unwrap_err();
    assert!(bad.to_string().contains("regex for label"), "{bad}");
}

#[test]
fn bad_regex_error_names_selector_and_label() {
    let e = err(r#"{job=~"("}"#);
    assert!(
        e.starts_with(r#"invalid selector '{job=~"("}': regex for label "job": "#),
        "{e}"
    );
    assert!(e.contains("unclosed group"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
}

#[test]
fn syntax_errors_say_where() {
    assert!(err(r#"{job="a" env="b"}"#).contains("unexpected 'e' at position 10"));
    assert!(err(r#"{job="a"#).contains("unterminated string starting at position 6"));
    assert!(err(r#"{job="a""#).contains("missing closing '}'"));
    assert!(err(r#"{job=a}"#).contains("unexpected 'a' at position 6, expected a quoted string"));
    assert!(err(r#"{job}"#).contains("expected one of = != =~ !~"));
    assert!(err(r#"{1job="a"}"#).contains("at position 2, expected a label name"));
    assert!(err(r#"{job="a"}x"#).contains("unexpected 'x' at position 10"));
    assert!(err(r#"job="a"}"#).contains("unexpected '}'"));
    assert!(err(r#"{job="\q"}"#).contains("unknown escape \\q at position 7"));
    assert!(err(r#"{job="\xff"}"#).contains("not ASCII"));
    assert!(err(r#"{job="\u12"}"#).contains("needs 4 digits"));
    assert!(err("{job=\"a\nb\"}").contains("unterminated string"));
}

#[test]
fn quoted_label_names_as_prometheus_3_writes_them() {
    let s = sel(r#"{"service.name"="api", job=~"nightly-.*", 'a-b'!="x", `日本`="y", "job2"="z"}"#);
    let names: Vec<&str> = s.matchers().iter().map(Matcher::name).collect();
    assert_eq!(names, ["service.name", "job", "a-b", "日本", "job2"]);
    assert!(s.matches(&labels(&[
        ("service.name", "api"),
        ("job", "nightly-db"),
        ("日本", "y"),
        ("job2", "z"),
    ])));
    assert!(!s.matches(&labels(&[("service.name", "api"), ("job", "nightly-db")])));
    // Escapes work in quoted names as in values.
    assert_eq!(sel(r#"{"a\"b\u00e9"="v"}"#).matchers()[0].name(), "a\"bé");
    // A legacy name prints bare, any other quoted, so the printed form parses back.
    let shown = s.to_string();
    assert_eq!(
        shown,
        r#"{"service.name"="api", job=~"nightly-.*", "a-b"!="x", "日本"="y", job2="z"}"#
    );
    assert_eq!(sel(&shown), s);
}

#[test]
fn malformed_quoted_names_are_refused_clearly() {
    assert!(err(r#"{"service.name="api"}"#).contains("expected one of = != =~ !~"));
    assert!(err(r#"{"service.name}"#).contains("unterminated string starting at position 2"));
    // An empty name is no error to Prometheus 3: no group has it, so it matches as "".
    assert!(!sel(r#"{""="x"}"#).matches(&labels(&[("job", "a")])));
    assert!(sel(r#"{""=""}"#).matches(&labels(&[("job", "a")])));
    let alone = err(r#"{"service.name"}"#);
    assert!(
        alone.contains("alone it would select a metric name"),
        "{alone}"
    );
    assert!(alone.contains(r#"write "service.name"="value""#), "{alone}");
    assert!(err(r#"{job="a", "x.y"}"#).contains("no operator"));
    assert!(err(r#"{"a\qb"="v"}"#).contains("unknown escape \\q"));
    assert!(err(r#"{service.name="api"}"#).contains("unexpected '.' at position 9"));
}

#[test]
fn format_labels_quotes_names_as_prometheus_3_prints_them() {
    let key = labels(&[("job", "a"), ("service.name", "api"), ("U__x", "")]);
    let shown = format_labels(&key);
    assert_eq!(shown, r#"{U__x="", job="a", "service.name"="api"}"#);
    assert!(sel(&shown).matches(&key));
}

#[test]
fn format_labels_prints_a_selector_for_that_key() {
    let key = labels(&[("job", "a"), ("instance", "")]);
    let shown = format_labels(&key);
    assert_eq!(shown, r#"{instance="", job="a"}"#);
    assert!(sel(&shown).matches(&key));
}

fn arb_matcher() -> impl Strategy<Value = Matcher> {
    let name = prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        "[a-z.\\-]{1,6}",
        any::<String>(),
    ];
    let op = prop_oneof![
        Just(MatchOp::Equal),
        Just(MatchOp::NotEqual),
        Just(MatchOp::RegexMatch),
        Just(MatchOp::RegexNoMatch),
    ];
    (name, op, any::<String>()).prop_map(|(n, op, v)| {
        let v = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => regex::escape(&v),
            _ => v,
        };
        Matcher::new(&n, op, &v).unwrap()
    })
}

proptest! {
    #[test]
    fn display_then_parse_gives_the_same_selector(ms in prop::collection::vec(arb_matcher(), 0..5)) {
        let s = Selector::new(ms);
        prop_assert_eq!(s.to_string().parse::<Selector>().unwrap(), s);
    }

    /// Oracle built another way (builder flag, \A..\z) than the matcher (inline (?s:), ^..$).
    /// Only for a pattern that is a regex on its own: an unbalanced one such as `)(.*` closes
    /// either wrapper early, and then the two differ by construction (Prometheus wraps it the
    /// same way as the matcher, `^(?s:` + re + `)$`).
    #[test]
    fn regex_matcher_is_regex_full_match(re in "[ab.*+?|()\n]{0,8}", value in "[ab\n]{0,6}") {
        prop_assume!(regex::Regex::new(&re).is_ok());
        let Ok(oracle) = RegexBuilder::new(&format!(r"\A(?:{re})\z"))
            .dot_matches_new_line(true)
            .build()
        else {
            prop_assert!(Matcher::new("job", MatchOp::RegexMatch, &re).is_err());
            return Ok(());
        };
        let key = labels(&[("job", &value)]);
        let pos = Selector::new(vec![Matcher::new("job", MatchOp::RegexMatch, &re).unwrap()]);
        let neg = Selector::new(vec![Matcher::new("job", MatchOp::RegexNoMatch, &re).unwrap()]);
        prop_assert_eq!(pos.matches(&key), oracle.is_match(&value));
        prop_assert_eq!(neg.matches(&key), !oracle.is_match(&value));
    }

    #[test]
    fn absent_label_behaves_as_empty_value(m in arb_matcher()) {
        let s = Selector::new(vec![m.clone()]);
        let empty = labels(&[(m.name(), "")]);
        prop_assert_eq!(s.matches(&Labels::new()), s.matches(&empty));
    }
}

/// Prometheus compiles `^(?s:` + re + `)$`, so an unbalanced pattern closes the flag group early
/// and is accepted; the janitor reads it the same way (found by the full-match proptest).
#[test]
fn an_unbalanced_regex_is_wrapped_as_prometheus_wraps_it() {
    let m = Matcher::new("job", MatchOp::RegexMatch, ")(.*").unwrap();
    let s = Selector::new(vec![m]);
    assert!(s.matches(&labels(&[("job", "ab")])));
    assert!(
        !s.matches(&labels(&[("job", "\n")])),
        "the dot is outside (?s:)"
    );
}
