//! Property tests over arbitrary and mutated bodies (issue #11, "bad input, fuzzed"): the reader
//! never panics, fails with a clear error that says where, and keeps no more than the input holds.
//! Seeds are real `GET /api/v1/metrics` bodies from Pushgateway 1.5.1 and 1.11.3 in
//! `tests/corpus/metrics/` (captured by `scripts/capture-corpus.sh`).
//!
//! Short by default for CI; a longer run: `PGW_JANITOR_FUZZ_CASES=20000 cargo test --lib fuzz`.

use proptest::prelude::*;
use serde::de::IgnoredAny;

use super::*;

const CORPUS: &[(&str, &str)] = &[
    (
        "1.5.1",
        include_str!("../../../tests/corpus/metrics/1.5.1.json"),
    ),
    (
        "1.11.3",
        include_str!("../../../tests/corpus/metrics/1.11.3.json"),
    ),
];

/// The byte offset of a (line, column) position as serde_json gives them.
fn offset(body: &[u8], line: usize, column: usize) -> usize {
    let start = match line {
        0 | 1 => 0,
        n => body
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(n - 2)
            .map_or(body.len(), |(i, _)| i + 1),
    };
    start + column
}

/// Cases per property: `PGW_JANITOR_FUZZ_CASES`, else `default` (kept small for CI).
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PGW_JANITOR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn read_bytes(body: &[u8], naming: Naming) -> Result<Parsed, ReadError> {
    parse(body, Some("ttl_seconds"), naming)
}

/// What an input may give at most: every kept group is an object of the input, and every label
/// kept is text that appears in it (escapes only shrink), so the kept state is bounded by it.
fn assert_bounded(body: &[u8], parsed: &Parsed) -> Result<(), TestCaseError> {
    let objects = body.iter().filter(|&&b| b == b'{').count();
    prop_assert!(parsed.groups.len() + parsed.unkeyed.len() <= objects);
    let kept: usize = parsed
        .groups
        .iter()
        .flat_map(|g| g.labels.iter())
        .map(|(k, v)| k.len() + v.len())
        .sum();
    prop_assert!(
        kept <= body.len(),
        "kept {kept} bytes of labels from {}",
        body.len()
    );
    Ok(())
}

/// An error names what went wrong and where.
fn assert_clear(err: &ReadError) -> Result<(), TestCaseError> {
    let message = err.to_string();
    prop_assert!(!message.is_empty());
    if !err.is_io() {
        prop_assert!(message.contains("line "), "no position in {message:?}");
    }
    Ok(())
}

/// The longest values the scanner parses from memory in [`check`]: every value streams, most do,
/// a few do.
const LIMITS: [usize; 3] = [1, 16, 200];

fn check(body: &[u8]) -> Result<(), TestCaseError> {
    // What serde_json, reading the whole body at once, thinks of it as JSON.
    let json = serde_json::from_slice::<IgnoredAny>(body);
    for naming in [Naming::Legacy, Naming::Utf8, Naming::Unknown] {
        let read = read_bytes(body, naming);
        match &read {
            Ok(parsed) => {
                assert_bounded(body, parsed)?;
                prop_assert!(json.is_ok(), "accepted what is not JSON: {:?}", json);
            }
            Err(e) => assert_clear(e)?,
        }
        // Streamed or from memory, a value reads the same: same groups, same error, same place.
        for limit in LIMITS {
            let small = read_body(
                Scanner::with_limit(body, limit),
                Some("ttl_seconds"),
                naming,
            );
            assert_same(body, &small, &read, limit)?;
        }
    }
    Ok(())
}

/// Two reads of `body` agree. serde_json's place of an error differs by one byte between reading
/// a stream and a slice (the stream counts a byte it only peeked at, a newline too), so theirs may.
fn assert_same(
    body: &[u8],
    a: &Result<Parsed, ReadError>,
    b: &Result<Parsed, ReadError>,
    limit: usize,
) -> Result<(), TestCaseError> {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            prop_assert_eq!(&a.status, &b.status, "limit {}", limit);
            prop_assert_eq!(&a.error, &b.error, "limit {}", limit);
            prop_assert_eq!(&a.groups, &b.groups, "limit {}", limit);
            prop_assert_eq!(&a.unkeyed, &b.unkeyed, "limit {}", limit);
        }
        (
            Err(ReadError::Invalid {
                message: m1,
                line: l1,
                column: c1,
                eof: e1,
            }),
            Err(ReadError::Invalid {
                message: m2,
                line: l2,
                column: c2,
                eof: e2,
            }),
        ) => {
            let context = format!("limit {limit}: {a:?} against {b:?}");
            prop_assert!(m1 == m2 && e1 == e2, "{}", context);
            let (at1, at2) = (offset(body, *l1, *c1), offset(body, *l2, *c2));
            prop_assert!(at1.abs_diff(at2) <= 1, "{}", context);
        }
        _ => prop_assert!(
            false,
            "limit {}: {:?} against {:?}",
            limit,
            a.as_ref().err(),
            b.as_ref().err()
        ),
    }
    Ok(())
}

/// One edit of a seed: flip a byte, cut it short, drop or repeat a span, splice in a token.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Truncate(usize),
    Remove(usize, usize),
    Repeat(usize, usize),
    Insert(usize, &'static str),
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "null",
    "true",
    "-1e999",
    "1e400",
    "\"labels\"",
    "\"data\"",
    "\"status\"",
    "\"push_time_seconds\"",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "{\"job\":1}",
    "{\"labels\":{}}",
    "\"value\":\"NaN\"",
    "\"value\":\"+Inf\"",
    "\u{feff}",
    "\u{0}",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Remove(i, n)),
        (any::<usize>(), 1usize..256).prop_map(|(i, n)| Edit::Repeat(i, n)),
        (any::<usize>(), prop::sample::select(TOKENS)).prop_map(|(i, t)| Edit::Insert(i, t)),
    ]
}

fn apply(seed: &str, edits: &[Edit]) -> Vec<u8> {
    let mut body = seed.as_bytes().to_vec();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match *e {
            Edit::Set(i, b) if !body.is_empty() => {
                let i = at(i, body.len());
                body[i] = b;
            }
            Edit::Set(..) => {}
            Edit::Truncate(i) => body.truncate(at(i, body.len() + 1)),
            Edit::Remove(i, n) => {
                let i = at(i, body.len() + 1);
                body.drain(i..(i + n).min(body.len()));
            }
            Edit::Repeat(i, n) => {
                let i = at(i, body.len() + 1);
                let span = body[i..(i + n).min(body.len())].to_vec();
                body.splice(i..i, span);
            }
            Edit::Insert(i, t) => {
                let i = at(i, body.len() + 1);
                body.splice(i..i, t.bytes());
            }
        }
    }
    body
}

#[test]
fn the_real_bodies_parse_whole() {
    for (version, body) in CORPUS {
        let parsed = read_bytes(body.as_bytes(), Naming::Legacy)
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        let doc: serde_json::Value = serde_json::from_str(body).unwrap();
        let groups = doc["data"].as_array().unwrap().len();
        assert_eq!(parsed.status.as_deref(), Some("success"), "{version}");
        assert_eq!(
            parsed.groups.len() + parsed.unkeyed.len(),
            groups,
            "{version}"
        );
        assert!(
            parsed.unkeyed.len() == 1,
            "{version}: the family named labels"
        );
    }
}

#[test]
fn every_prefix_of_a_real_body_is_an_error_with_its_position_never_a_panic() {
    for (version, body) in CORPUS {
        let bytes = body.trim_end().as_bytes();
        for cut in 0..bytes.len() {
            let err = read_bytes(&bytes[..cut], Naming::Legacy)
                .expect_err(&format!("{version}: {cut} bytes are not a whole body"));
            let message = err.to_string();
            assert!(
                message.contains("EOF") || message.contains("line "),
                "{version} cut at {cut}: {message}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(&body)?;
    }

    #[test]
    fn mutated_real_bodies_never_panic_and_keep_what_they_hold(
        seed in prop::sample::select(CORPUS),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        check(&apply(seed.1, &edits))?;
    }

    /// Deep nesting in a skipped family is refused with serde_json's recursion limit, not a stack
    /// overflow; a long flat run of groups is kept one by one.
    #[test]
    fn deep_nesting_and_many_groups_are_bounded(depth in 1usize..2000, groups in 0usize..300) {
        let nested = format!(
            r#"{{"status":"success","data":[{{"labels":{{"job":"a"}},"x":{}1{}}}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        check(nested.as_bytes())?;
        let one = r#"{"labels":{"job":"a"},"push_time_seconds":{"metrics":[{"value":"1"}]}}"#;
        let many = format!(r#"{{"status":"success","data":[{}]}}"#, vec![one; groups].join(","));
        let parsed = read_bytes(many.as_bytes(), Naming::Legacy).unwrap();
        prop_assert_eq!(parsed.groups.len(), groups);
    }
}
