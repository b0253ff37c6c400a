use std::io::BufReader;

use proptest::prelude::*;

use super::*;
use crate::model::Labels;

/// Parses `body` read `chunk` bytes at a time, so lines cross the read buffer everywhere.
fn parse_chunked(body: &str, chunk: usize, ttl: Option<&str>) -> Result<Parsed, TextError> {
    parse(
        BufReader::with_capacity(chunk, body.as_bytes()),
        ttl,
        Naming::Legacy,
    )
}

fn parse_all(body: &str, ttl: Option<&str>) -> Parsed {
    let whole = parse_chunked(body, 1 << 16, ttl).unwrap();
    for chunk in [1, 2, 3, 7, 31, 64] {
        let parsed = parse_chunked(body, chunk, ttl).unwrap();
        // Compared as text: a NaN is not equal to itself.
        let text = |p: &Parsed| format!("{:?}", p.groups);
        assert_eq!(text(&parsed), text(&whole), "chunk {chunk}");
        assert_eq!(parsed.unkeyed, whole.unkeyed, "chunk {chunk}");
    }
    whole
}

fn unusable_why(body: &str, ttl: Option<&str>) -> String {
    for chunk in [1, 5, 1 << 16] {
        match parse_chunked(body, chunk, ttl) {
            Err(TextError::Unusable(why)) => {
                if chunk == 1 << 16 {
                    return why;
                }
            }
            other => panic!("chunk {chunk}: {other:?}"),
        }
    }
    unreachable!()
}

fn key(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().copied().collect()
}

/// What 1.11.3 answers for three groups: `{job="a"}` (or `{job="a",instance=""}`), one with an
/// empty label, one with an instance, around the gateway's own families and pushed ones whose
/// names start like the wanted ones.
const BODY: &str = r#"# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.1e-05
# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.
# TYPE push_failure_time_seconds gauge
push_failure_time_seconds{instance="",job="a"} 0
push_failure_time_seconds{foo="",instance="i1",job="c"} 1.8e+09
# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.
# TYPE push_time_seconds gauge
push_time_seconds{instance="",job="a"} 1.7965711060328798e+09
push_time_seconds{foo="",instance="i1",job="c"} 1.796571106051344e+09
push_time_seconds{instance="",job="ph"} 0
# TYPE push_time_seconds_total counter
push_time_seconds_total{instance="",job="a"} 9
# TYPE push_timex untyped
push_timex{instance="",job="a"} 9
x{foo="",instance="i1",job="c"} 1
"#;

#[test]
fn groups_come_from_the_push_time_series_and_everything_else_is_skipped() {
    let parsed = parse_all(BODY, None);
    assert!(parsed.unkeyed.is_empty());
    let got: Vec<_> = parsed
        .groups
        .iter()
        .map(|g| {
            (
                g.labels.clone(),
                g.instance_unsure,
                g.push_time,
                g.push_failure_time,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (key(&[("job", "a")]), true, 1.7965711060328798e9, 0.0),
            (
                key(&[("job", "c"), ("foo", ""), ("instance", "i1")]),
                false,
                1.796571106051344e9,
                1.8e9
            ),
            (key(&[("job", "ph")]), true, 0.0, 0.0),
        ]
    );
    let c = &parsed.groups[1];
    assert!(!c.last_push_successful, "failure after success");
    assert!(parsed.groups[0].last_push_successful);
    assert!(parsed.groups.iter().all(|g| g.series.is_none()));
}

#[test]
fn quoted_utf8_names_and_escaped_values_are_read_back_raw() {
    let body = concat!(
        r#"push_time_seconds{"service.name"="a\\b\"c\nd",instance="",job="u","U__x"="1"} 5"#,
        "\n",
        r#"push_time_seconds{instance="",job="u",service_name="svc"} 6"#,
        "\n",
    );
    let parsed = parse(
        BufReader::with_capacity(3, body.as_bytes()),
        None,
        Naming::Utf8,
    )
    .unwrap();
    let keys: Vec<_> = parsed.groups.iter().map(|g| g.labels.clone()).collect();
    assert_eq!(
        keys,
        [
            key(&[("job", "u"), ("service.name", "a\\b\"c\nd"), ("U__x", "1")]),
            key(&[("job", "u"), ("service_name", "svc")]),
        ]
    );
    // The same names on a legacy replica cannot be addressed: reported, never planned.
    let legacy = parse_all(body, None);
    assert_eq!(legacy.groups.len(), 1);
    assert_eq!(legacy.unkeyed.len(), 1);
}

#[test]
fn special_values_are_go_floats() {
    let body = "push_time_seconds{instance=\"\",job=\"a\"} +Inf\n\
                push_failure_time_seconds{instance=\"\",job=\"a\"} NaN\n\
                push_time_seconds{instance=\"\",job=\"b\"} 1e+09 1700000000000\n";
    let parsed = parse_all(body, None);
    assert_eq!(parsed.groups[0].push_time, f64::INFINITY);
    assert!(parsed.groups[0].push_failure_time.is_nan());
    assert_eq!(parsed.groups[1].push_time, 1e9);
}

#[test]
fn declared_ttls_find_their_group_before_or_after_the_push_times() {
    // `a_ttl` sorts before `push_time_seconds`, `z_ttl` after: both must work.
    for name in ["a_ttl", "z_ttl"] {
        let ttl_lines = format!(
            "# HELP {name} declared\n# TYPE {name} gauge\n\
             {name}{{instance=\"\",job=\"a\"}} 300\n\
             {name}{{instance=\"x\",job=\"b\",zone=\"q\"}} 60\n\
             {name}{{instance=\"\",job=\"c\",k=\"v\"}} NaN\n"
        );
        let times = "push_time_seconds{instance=\"\",job=\"a\"} 1\n\
                     push_time_seconds{instance=\"\",job=\"b\"} 2\n\
                     push_time_seconds{instance=\"\",job=\"c\",k=\"v\"} 3\n\
                     push_time_seconds{instance=\"\",job=\"d\"} 4\n";
        let body = if name == "a_ttl" {
            format!("{ttl_lines}{times}")
        } else {
            format!("{times}{ttl_lines}")
        };
        let parsed = parse_all(&body, Some(name));
        let ttls: Vec<_> = parsed.groups.iter().map(|g| g.declared_ttl).collect();
        // b's series carries its pushed metric's own `instance` and `zone`; c's NaN is no TTL.
        assert_eq!(ttls, [Some(300.0), Some(60.0), None, None], "{name}");
        let without: Vec<_> = parse_all(&body, None)
            .groups
            .iter()
            .map(|g| g.declared_ttl)
            .collect();
        assert_eq!(without, [None; 4]);
    }
}

#[test]
fn a_declared_ttl_of_a_valueless_type_is_no_ttl() {
    let body = "# TYPE ttl summary\nttl{instance=\"\",job=\"a\",quantile=\"0.5\"} 3\n\
                ttl_sum{instance=\"\",job=\"a\"} 1\n\
                push_time_seconds{instance=\"\",job=\"a\"} 1\n";
    assert_eq!(parse_all(body, Some("ttl")).groups[0].declared_ttl, None);
}

#[test]
fn what_slash_metrics_cannot_say_exactly_is_refused() {
    let cases = [
        // {job=a} and {job=a,zone=q} both exist; a series {job=a,zone=q} fits either.
        (
            "ttl{instance=\"\",job=\"a\",zone=\"q\"} 1\n\
             push_time_seconds{instance=\"\",job=\"a\"} 1\n\
             push_time_seconds{instance=\"\",job=\"a\",zone=\"q\"} 1\n",
            "fits two groups",
        ),
        (
            "ttl{instance=\"\",job=\"a\",s=\"1\"} 1\nttl{instance=\"\",job=\"a\",s=\"2\"} 2\n\
             push_time_seconds{instance=\"\",job=\"a\"} 1\n",
            "two different declared TTLs",
        ),
        (
            "ttl{instance=\"\",job=\"zz\"} 1\npush_time_seconds{instance=\"\",job=\"a\"} 1\n",
            "of no group",
        ),
        (
            "push_time_seconds{instance=\"\",job=\"a\"} 1\n\
             push_time_seconds{instance=\"\",job=\"a\"} 2\n",
            "same push time series",
        ),
        ("push_time_seconds 1\n", "without a `job`"),
        ("push_time_seconds{job=\"a} 1\n", "unterminated"),
        ("push_time_seconds{job=\"a\"}\n", "no space"),
        ("push_time_seconds{job=\"a\"} one\n", "bad value"),
        ("push_time_seconds{job=\"a\",job=\"b\"} 1\n", "repeated"),
        ("push_time_seconds{job=\"a\\x\"} 1\n", "unknown escape"),
    ];
    for (body, why) in cases {
        let got = unusable_why(body, Some("ttl"));
        assert!(got.contains(why), "{body:?}: {got}");
    }
}

#[test]
fn a_body_without_a_final_newline_still_gives_its_last_line() {
    let parsed = parse_all("push_time_seconds{instance=\"\",job=\"a\"} 7", None);
    assert_eq!(parsed.groups[0].push_time, 7.0);
}

/// A label value as Go's text writer escapes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

proptest! {
    /// Whatever the keys, values and chunking, each group comes back with its key (the
    /// instance made unsure exactly when it is absent or empty) and its push time.
    #[test]
    fn every_group_comes_back_with_its_key_and_push_time(
        groups in prop::collection::btree_map(
            (
                "[a-c]{1,2}",
                prop::option::of(prop_oneof![Just(String::new()), "[a-z:0-9]{1,4}"]),
                prop::collection::btree_map("[d-g][a-z_]{0,3}", "[ -~\n\\\\\"é✓]{0,6}", 0..3),
            ),
            0u32..2_000_000_000,
            0..12,
        ),
        chunk in 1usize..40,
    ) {
        let mut body = String::from("# HELP push_time_seconds x\n# TYPE push_time_seconds gauge\n");
        let mut expected = Vec::new();
        for ((job, instance, others), push) in &groups {
            let mut pairs: Vec<(String, String)> = others.clone().into_iter().collect();
            pairs.push(("job".into(), job.clone()));
            // The gateway shows an absent instance as `instance=""`.
            pairs.push(("instance".into(), instance.clone().unwrap_or_default()));
            pairs.sort();
            let labels: Vec<String> =
                pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            body.push_str(&format!("push_time_seconds{{{}}} {push}\n", labels.join(",")));
            body.push_str(&format!("pushed_x{{{}}} 1\n", labels.join(",")));
            let unsure = instance.as_deref().unwrap_or("").is_empty();
            let key: Labels = pairs
                .iter()
                .filter(|(k, v)| !(k == "instance" && v.is_empty()))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            expected.push((key, unsure, f64::from(*push)));
        }
        // Two generated groups that differ only by an empty instance collide, as on a gateway.
        let mut loose: Vec<_> = expected.iter().map(|(k, _, _)| k.clone()).collect();
        loose.sort();
        loose.dedup();
        let parsed = parse_chunked(&body, chunk, None);
        if loose.len() < expected.len() {
            prop_assert!(matches!(parsed, Err(TextError::Unusable(_))));
        } else {
            let parsed = parsed.unwrap();
            let got: Vec<_> = parsed
                .groups
                .iter()
                .map(|g| (g.labels.clone(), g.instance_unsure, g.push_time))
                .collect();
            prop_assert_eq!(got, expected);
        }
    }
}

proptest! {
    /// Whatever the bytes (the wanted line starts mixed with garbage, quotes, escapes, cut
    /// anywhere), the parse ends with groups or a reason, never a panic, and the same whatever
    /// the chunking.
    #[test]
    fn any_body_is_parsed_or_refused_never_a_panic(
        pieces in prop::collection::vec(prop_oneof![
            Just("push_time_seconds{".to_string()),
            Just("push_failure_time_seconds{".to_string()),
            Just("ttl{".to_string()),
            Just("# TYPE ttl gauge\n".to_string()),
            Just("job=\"a\"".to_string()),
            Just("instance=\"\"".to_string()),
            Just("\"x.y\"=\"\\\\\\\"\"".to_string()),
            Just("} 1e+09\n".to_string()),
            Just(",".to_string()),
            "[ -~\n]{0,8}",
        ], 0..40),
        chunk in 1usize..17,
    ) {
        let body = pieces.concat();
        let whole = parse_chunked(&body, 1 << 16, Some("ttl"));
        let chunked = parse_chunked(&body, chunk, Some("ttl"));
        prop_assert_eq!(format!("{whole:?}"), format!("{chunked:?}"));
    }
}
