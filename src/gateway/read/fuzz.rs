//! Property tests over arbitrary and mutated bodies (issue #11, "bad input, fuzzed"): the reader
//! never panics, fails with a clear error that says where, and keeps no more than the input holds.
//! Each body is also read whole by plain serde_json into a document, and the reader must accept
//! exactly the JSON of the answer's shape and keep the grouping keys it holds
//! ([`agrees_with_serde_json`], with its one exception).
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

/// The metric the reads below take as the declared TTL.
const TTL_METRIC: &str = "ttl_seconds";

fn read_bytes(body: &[u8], naming: Naming) -> Result<Parsed, ReadError> {
    parse(body, Some(TTL_METRIC), naming)
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
        agrees_with_serde_json(body, &read, naming)?;
        // Streamed or from memory, a value reads the same: same groups, same error, same place.
        for limit in LIMITS {
            let small = read_body(Scanner::with_limit(body, limit), Some(TTL_METRIC), naming);
            assert_same(body, &small, &read, limit)?;
        }
    }
    Ok(())
}

/// A JSON document as plain serde_json decodes it, each object's entries in order with a repeated
/// key kept (`serde_json::Value` keeps only the last; the reader acts on each in turn).
enum Doc {
    Null,
    Other,
    Str(String),
    Arr(Vec<Doc>),
    Obj(Vec<(String, Doc)>),
}

impl<'de> serde::Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Doc, D::Error> {
        d.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Doc, E> {
        Ok(Doc::Null)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Doc, E> {
        Ok(Doc::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Doc, E> {
        Ok(Doc::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Doc, E> {
        Ok(Doc::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Doc, E> {
        Ok(Doc::Other)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Doc, E> {
        Ok(Doc::Str(v.to_owned()))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Doc, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Doc::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Doc::Obj(entries))
    }
}

/// What the answer's shape (the gateway's `api/v1/metrics`) makes of a document: per element of
/// `data`, its labels when `labels` is an object of strings; or why it is no answer. `status` is
/// a string, `error` a string or null, `data` null or an array of objects; in a group `labels`
/// is an object, and every key but `last_push_successful` a metric family object whose `metrics`
/// is an array (whose first element is an object, in the families read for a value).
fn answer(doc: &Doc) -> Result<Vec<Option<Labels>>, String> {
    let Doc::Obj(top) = doc else {
        return Err("the body is not an object".into());
    };
    let mut groups = Vec::new();
    for (key, value) in top {
        match (key.as_str(), value) {
            ("status", Doc::Str(_)) | ("error", Doc::Str(_) | Doc::Null) | ("data", Doc::Null) => {}
            ("status" | "error", _) => return Err(format!("`{key}` is not a string")),
            ("data", Doc::Arr(items)) => {
                for item in items {
                    groups.push(group(item)?);
                }
            }
            ("data", _) => return Err("`data` is not an array".into()),
            _ => {}
        }
    }
    Ok(groups)
}

fn group(item: &Doc) -> Result<Option<Labels>, String> {
    let Doc::Obj(fields) = item else {
        return Err("a group is not an object".into());
    };
    let valued = ["push_time_seconds", "push_failure_time_seconds", TTL_METRIC];
    let mut labels = None;
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("labels", Doc::Obj(pairs)) => labels = Some(strings(pairs)),
            ("labels", _) => return Err("`labels` is not an object".into()),
            ("last_push_successful", _) => {}
            (_, Doc::Obj(family)) => {
                for (_, metrics) in family.iter().filter(|(k, _)| k == "metrics") {
                    let ok = match metrics {
                        Doc::Arr(m) if valued.contains(&name.as_str()) => {
                            matches!(m.first(), None | Some(Doc::Obj(_)))
                        }
                        Doc::Arr(_) => true,
                        _ => false,
                    };
                    if !ok {
                        return Err(format!("`{name}.metrics` is not an array of metrics"));
                    }
                }
            }
            (_, _) => return Err(format!("family `{name}` is not an object")),
        }
    }
    Ok(labels.flatten())
}

/// An object of strings as labels; `None` when a value is not a string.
fn strings(pairs: &[(String, Doc)]) -> Option<Labels> {
    let pairs = pairs.iter().map(|(name, value)| match value {
        Doc::Str(value) => Some((name.as_str().into(), value.as_str().into())),
        _ => None,
    });
    Some(Labels::from_pairs(pairs.collect::<Option<_>>()?))
}

/// serde_json's errors of a document that it only checks as grammar when it skips the value:
/// `IgnoredAny` takes a string's bytes without decoding them (UTF-8, `\u` escapes as code
/// points) and walks nesting without a limit, where decoding into a [`Doc`] refuses them.
const SKIPPED_UNCHECKED: [&str; 4] = [
    "invalid unicode code point",
    "unexpected end of hex escape",
    "lone leading surrogate",
    "recursion limit exceeded",
];

/// The reader and plain serde_json, reading the whole body into a [`Doc`], agree: both refuse
/// what is not JSON or not an answer, and of an answer the reader keeps, in order, the groups
/// whose labels it can address, and says why of every other. One exception, serde_json's own:
/// the reader skips every family and unknown key with `IgnoredAny`, which serde_json checks as
/// grammar only ([`SKIPPED_UNCHECKED`]); what the reader decodes (keys, `status`, `error`,
/// labels) it refuses as the document does.
fn agrees_with_serde_json(
    body: &[u8],
    read: &Result<Parsed, ReadError>,
    naming: Naming,
) -> Result<(), TestCaseError> {
    match (read, serde_json::from_slice::<Doc>(body)) {
        (Ok(parsed), Ok(doc)) => {
            let groups = answer(&doc);
            prop_assert!(groups.is_ok(), "read what is no answer: {:?}", groups.err());
            let groups = groups.unwrap_or_default();
            let addressable: Vec<&Labels> = groups
                .iter()
                .flatten()
                .filter(|l| crate::gateway::key::group_path(l, naming).is_ok())
                .collect();
            let kept: Vec<&Labels> = parsed.groups.iter().map(|g| &g.labels).collect();
            prop_assert_eq!(kept, addressable);
            prop_assert_eq!(parsed.groups.len() + parsed.unkeyed.len(), groups.len());
        }
        (Err(e), Ok(doc)) => {
            prop_assert!(answer(&doc).is_err(), "refused an answer: {}", e);
        }
        (Ok(_), Err(e)) => {
            let text = e.to_string();
            prop_assert!(
                SKIPPED_UNCHECKED.iter().any(|x| text.contains(x)),
                "read what serde_json refuses: {}",
                text
            );
        }
        (Err(_), Err(_)) => {}
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

/// The comparison with serde_json bites both ways, and differs only where the reader skips.
#[test]
fn the_reader_accepts_exactly_the_answers_serde_json_reads() {
    let agree = |body: &[u8]| {
        let read = read_bytes(body, Naming::Legacy);
        agrees_with_serde_json(body, &read, Naming::Legacy)
            .map(|()| read.is_ok())
            .map_err(|e| e.to_string())
    };
    let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    // JSON, but no answer: serde_json reads it, the reader refuses it, each for its shape.
    for body in [
        "[]",
        r#"{"status":1}"#,
        r#"{"error":true}"#,
        r#"{"data":{}}"#,
        r#"{"data":[1]}"#,
        r#"{"data":[{"labels":"job"}]}"#,
        r#"{"data":[{"labels":{"job":"a"},"x":1}]}"#,
        r#"{"data":[{"labels":{"job":"a"},"x":{"metrics":{}}}]}"#,
        r#"{"data":[{"labels":{"job":"a"},"push_time_seconds":{"metrics":[1]}}]}"#,
        r#"{"data":[],"data":5}"#,
    ] {
        assert_eq!(agree(body.as_bytes()), Ok(false), "{body}");
        let doc = serde_json::from_slice::<Doc>(body.as_bytes()).expect(body);
        assert!(answer(&doc).is_err(), "{body}");
    }
    // Odd answers, read alike: null data, a repeated `data`, keys the janitor cannot use.
    for body in [
        r#"{"status":"error","error":"x","data":null}"#,
        r#"{"data":[{"labels":{"job":"a"}}],"data":[{"labels":{"job":"b"}}]}"#,
        r#"{"data":[{"labels":{"job":1}},{"x":{"metrics":[1,2]}},{"labels":{}}]}"#,
        r#"{"data":[{"labels":{"job":"a"},"ttl_seconds":{"metrics":[]}}]}"#,
    ] {
        assert_eq!(agree(body.as_bytes()), Ok(true), "{body}");
    }
    // The one difference: what the reader skips, serde_json checks as grammar only...
    let lone_surrogate = br#""\ud800""#.to_vec();
    let not_utf8 = b"\"\xff\"".to_vec();
    for skipped in [&lone_surrogate, &not_utf8, &nested(200).into_bytes()] {
        for body in [
            [
                br#"{"zz":"#,
                &skipped[..],
                br#","data":[{"labels":{"job":"a"}}]}"#,
            ]
            .concat(),
            [
                br#"{"data":[{"labels":{"job":"a"},"x":{"help":"#,
                &skipped[..],
                b"}}]}",
            ]
            .concat(),
        ] {
            let shown = String::from_utf8_lossy(&body);
            assert_eq!(agree(&body), Ok(true), "{shown}");
            assert!(serde_json::from_slice::<Doc>(&body).is_err(), "{shown}");
        }
    }
    // ...and refuses it where it decodes: labels.
    for label in [&lone_surrogate, &not_utf8] {
        let body = [br#"{"data":[{"labels":{"job":"#, &label[..], b"}}]}"].concat();
        assert_eq!(
            agree(&body),
            Ok(false),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    // A read that dropped a group, or kept one of a body that has none, fails the comparison.
    let one = br#"{"data":[{"labels":{"job":"a"}}]}"#;
    let none = br#"{"data":[]}"#;
    let dropped = Ok(Parsed::default());
    assert!(agrees_with_serde_json(one, &dropped, Naming::Legacy).is_err());
    let invented = read_bytes(one, Naming::Legacy);
    assert!(agrees_with_serde_json(none, &invented, Naming::Legacy).is_err());
}
