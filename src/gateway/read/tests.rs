//! Parser tests on bodies shaped like the gateway's (taken from a real 1.5.1 answer), fed through
//! the same streaming path as a live read, in small chunks to cross every token boundary.

use bytes::Bytes;
use futures::stream;

use super::*;

fn family(name_labels: &str, value: &str) -> String {
    format!(
        r#"{{"time_stamp":"2026-11-21T22:51:45.573679681Z","type":"GAUGE","help":"h","metrics":[{{"labels":{name_labels},"value":"{value}"}}]}}"#
    )
}

/// A group as Go writes it: keys sorted, so `labels` sits between `a_*` and `p*` families.
fn group(labels: &str, push_time: &str, extra: &str) -> String {
    format!(
        r#"{{{extra}"labels":{labels},"last_push_successful":true,"push_failure_time_seconds":{},"push_time_seconds":{}}}"#,
        family(labels, "0"),
        family(labels, push_time),
    )
}

fn body(groups: &[String]) -> String {
    format!(r#"{{"status":"success","data":[{}]}}"#, groups.join(","))
}

/// A histogram family with `n` series: the kind of payload that must be skipped unparsed.
fn big_family(name: &str, n: usize) -> String {
    let metric = r#"{"labels":{"le_set":"x","path":"/a/b"},"buckets":{"0.1":"3","1":"7","+Inf":"9"},"count":"9","sum":"1.5e+00"}"#;
    format!(
        r#""{name}":{{"type":"HISTOGRAM","metrics":[{}]}},"#,
        vec![metric; n].join(",")
    )
}

fn chunks(body: &str, size: usize) -> impl Stream<Item = std::io::Result<Bytes>> + Send + Unpin {
    let pieces: Vec<_> = body
        .as_bytes()
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(pieces)
}

async fn parse_chunked(body: &str, size: usize, ttl: Option<&str>) -> Result<Parsed, ReadError> {
    parse_stream(chunks(body, size), ttl.map(str::to_owned), Naming::Legacy).await
}

fn key(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn keeps_key_push_times_and_flag_at_any_chunk_size() {
    let body = body(&[
        group(r#"{"job":"a"}"#, "1.7953015055736797e+09", ""),
        group(r#"{"instance":"","job":"a/b c%+=@#?é"}"#, "0", ""),
    ]);
    for size in [1, 2, 3, 7, 64, body.len()] {
        let parsed = parse_chunked(&body, size, None).await.unwrap();
        assert_eq!(parsed.status.as_deref(), Some("success"));
        assert!(parsed.unkeyed.is_empty());
        let groups = &parsed.groups;
        assert_eq!(groups.len(), 2, "chunk size {size}");
        assert_eq!(groups[0].labels, key(&[("job", "a")]));
        assert_eq!(groups[0].push_time, 1.7953015055736797e9);
        assert_eq!(groups[0].push_failure_time, 0.0);
        assert!(groups[0].last_push_successful);
        assert_eq!(
            groups[1].labels,
            key(&[("instance", ""), ("job", "a/b c%+=@#?é")])
        );
        assert!(groups[1].is_phantom());
    }
}

#[tokio::test]
async fn labels_after_families_are_read() {
    let extra = format!(
        "{}\"a_first\":{},",
        big_family("a_hist", 3),
        family("{}", "1")
    );
    let body = body(&[group(r#"{"job":"late"}"#, "5", &extra)]);
    let parsed = parse_chunked(&body, 5, None).await.unwrap();
    assert_eq!(parsed.groups[0].labels, key(&[("job", "late")]));
    assert_eq!(parsed.groups[0].push_time, 5.0);
}

#[tokio::test]
async fn declared_ttl_is_the_first_value_of_the_named_family() {
    let ttl_family = concat!(
        r#""a_ttl_seconds":{"type":"UNTYPED","metrics":["#,
        r#"{"labels":{},"value":"3600"},{"labels":{},"value":"1"}]},"#
    );
    let body = body(&[
        group(r#"{"job":"with"}"#, "5", ttl_family),
        group(r#"{"job":"without"}"#, "5", ""),
        group(r#"{"job":"hist"}"#, "5", &big_family("a_ttl_seconds", 2)),
    ]);
    let parsed = parse_chunked(&body, 11, Some("a_ttl_seconds"))
        .await
        .unwrap();
    let ttls: Vec<_> = parsed.groups.iter().map(|g| g.declared_ttl).collect();
    assert_eq!(ttls, [Some(3600.0), None, None]);
    // Not asked for: not read.
    let parsed = parse_chunked(&body, 11, None).await.unwrap();
    assert!(parsed.groups.iter().all(|g| g.declared_ttl.is_none()));
}

#[tokio::test]
async fn family_named_labels_makes_an_unkeyed_group_never_a_guess() {
    // What 1.5.1 answers after `labels 5` was pushed to job "b": the family replaced the key.
    let hidden = format!(
        r#"{{"labels":{},"last_push_successful":true,"push_time_seconds":{}}}"#,
        family(r#"{"instance":"","job":"b"}"#, "5"),
        family(r#"{"instance":"","job":"b"}"#, "1.7e+09"),
    );
    let body = body(&[hidden, group(r#"{"job":"ok"}"#, "1", "")]);
    let parsed = parse_chunked(&body, 4, None).await.unwrap();
    assert_eq!(parsed.groups.len(), 1);
    assert_eq!(parsed.groups[0].labels, key(&[("job", "ok")]));
    assert_eq!(parsed.unkeyed.len(), 1);
    assert!(
        parsed.unkeyed[0].why.contains("`labels`"),
        "{:?}",
        parsed.unkeyed
    );
}

#[tokio::test]
async fn keys_that_cannot_be_addressed_are_unkeyed() {
    let body = body(&[
        group(r#"{"instance":"i"}"#, "1", ""),
        group(r#"{"job":""}"#, "1", ""),
        group(r#"{"job":"j","__bad":"x"}"#, "1", ""),
        r#"{"last_push_successful":true}"#.to_string(),
    ]);
    let parsed = parse_chunked(&body, 9, None).await.unwrap();
    assert!(parsed.groups.is_empty(), "{:?}", parsed.groups);
    assert_eq!(parsed.unkeyed.len(), 4);
}

#[tokio::test]
async fn utf8_names_are_groups_only_on_a_replica_that_decodes_them() {
    let body = body(&[
        group(r#"{"job":"j","service.name":"api"}"#, "1", ""),
        group(r#"{"job":"j","U__x":"v"}"#, "1", ""),
        group(r#"{"job":"j","instance":"i"}"#, "1", ""),
    ]);
    let read = |naming| {
        let body = body.clone();
        async move { parse_stream(chunks(&body, 7), None, naming).await.unwrap() }
    };
    let utf8 = read(Naming::Utf8).await;
    assert_eq!(utf8.groups.len(), 3, "{:?}", utf8.unkeyed);

    // A legacy replica cannot hold `service.name`; `U__x` is a plain name there.
    let legacy = read(Naming::Legacy).await;
    assert_eq!(legacy.groups.len(), 2);
    assert_eq!(legacy.unkeyed.len(), 1);
    assert!(
        legacy.unkeyed[0].why.contains("service.name"),
        "{:?}",
        legacy.unkeyed
    );

    // Unknown naming: only what means the same on both kinds is kept.
    let unknown = read(Naming::Unknown).await;
    assert_eq!(
        unknown
            .groups
            .iter()
            .map(|g| g.labels.clone())
            .collect::<Vec<_>>(),
        vec![key(&[("instance", "i"), ("job", "j")])]
    );
    assert_eq!(unknown.unkeyed.len(), 2);
}

#[tokio::test]
async fn every_metric_type_is_skipped_whatever_its_shape() {
    // Families as 1.11.3 writes them (a native histogram's buckets are an array of
    // [rule, lower, upper, count]) and as 1.5.1 writes the same push (`"buckets": {}`).
    let native_111 = r#""h":{"type":"HISTOGRAM","metrics":[{"buckets":[[0,"0.19","0.21","1"],[0,"2.8","3.08","1"]],"count":"3","labels":{"job":"k"},"sum":"4.2"}]},"#;
    let native_151 = r#""h":{"type":"HISTOGRAM","metrics":[{"buckets":{},"count":"3","labels":{"job":"k"},"sum":"4.2"}]},"#;
    let summary = r#""s":{"type":"SUMMARY","metrics":[{"count":"3","labels":{},"quantiles":{"0.5":"1","0.99":"3"},"sum":"4.2"}]},"#;
    let counter = r#""c":{"type":"COUNTER","metrics":[{"labels":{},"value":"+Inf"}]},"#;
    let untyped = r#""u":{"type":"UNTYPED","metrics":[{"labels":{},"value":"NaN"}]},"#;
    let body = body(&[
        group(r#"{"job":"a"}"#, "1", native_111),
        group(r#"{"job":"b"}"#, "2", native_151),
        group(
            r#"{"job":"c"}"#,
            "3",
            &format!("{counter}{summary}{untyped}"),
        ),
        group(r#"{"job":"d"}"#, "4", &big_family("hist", 3)),
    ]);
    let parsed = parse_chunked(&body, 5, None).await.unwrap();
    assert!(parsed.unkeyed.is_empty(), "{:?}", parsed.unkeyed);
    let times: Vec<(String, f64)> = parsed
        .groups
        .iter()
        .map(|g| (g.labels["job"].to_string(), g.push_time))
        .collect();
    let want: Vec<(String, f64)> = [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)]
        .map(|(j, t)| (j.to_string(), t))
        .into();
    assert_eq!(times, want);
}

#[tokio::test]
async fn family_named_last_push_successful_falls_back_to_push_times() {
    let hidden = format!(
        r#"{{"labels":{{"job":"c"}},"last_push_successful":{},"push_failure_time_seconds":{},"push_time_seconds":{}}}"#,
        family("{}", "5"),
        family("{}", "10"),
        family("{}", "20"),
    );
    let failed = format!(
        r#"{{"labels":{{"job":"d"}},"last_push_successful":{},"push_failure_time_seconds":{},"push_time_seconds":{}}}"#,
        family("{}", "5"),
        family("{}", "30"),
        family("{}", "20"),
    );
    let parsed = parse_chunked(&body(&[hidden, failed]), 3, None)
        .await
        .unwrap();
    assert!(parsed.groups[0].last_push_successful);
    assert_eq!(parsed.groups[0].push_failure_time, 10.0);
    assert!(!parsed.groups[1].last_push_successful);
}

#[tokio::test]
async fn missing_push_time_is_a_phantom() {
    let body =
        r#"{"status":"success","data":[{"labels":{"job":"p"},"last_push_successful":false}]}"#;
    let parsed = parse_chunked(body, 2, None).await.unwrap();
    assert_eq!(parsed.groups[0].push_time, 0.0);
    assert!(parsed.groups[0].is_phantom());
    assert!(!parsed.groups[0].last_push_successful);
}

#[tokio::test]
async fn error_status_is_reported_with_its_message() {
    let body = r#"{"status":"error","errorType":"internal","error":"boom","data":null}"#;
    let parsed = parse_chunked(body, 3, None).await.unwrap();
    assert_eq!(parsed.status.as_deref(), Some("error"));
    assert_eq!(parsed.error.as_deref(), Some("boom"));
}

#[tokio::test]
async fn truncated_garbage_and_wrong_shapes_fail_with_a_position() {
    let full = body(&[group(r#"{"job":"a"}"#, "1", "")]);
    let cases = [
        full[..full.len() - 3].to_string(),
        "<html>502 Bad Gateway</html>".to_string(),
        format!("{full} trailing"),
        r#"{"status":"success","data":{"job":"a"}}"#.to_string(),
        r#"{"status":"success","data":[{"labels":{"job":"a"},"push_time_seconds":"1"}]}"#
            .to_string(),
        r#"["status"]"#.to_string(),
        String::new(),
    ];
    for case in cases {
        let err = parse_chunked(&case, 4, None).await.unwrap_err();
        assert!(!err.is_io(), "{case:?}: {err}");
        assert!(err.to_string().contains("line 1 column"), "{case:?}: {err}");
    }
}

#[tokio::test]
async fn many_groups_with_big_families_parse_from_a_lazy_stream() {
    // Generated lazily per group, so the body (~30 MB) never exists in memory as a whole; only
    // the kept groups do.
    const GROUPS: usize = 100_000;
    const BIG_EVERY: usize = 1_000;
    let big = big_family("a_big_histogram", 1_000);
    let parts = (0..GROUPS).map(move |i| {
        let labels = format!(r#"{{"instance":"i{i}","job":"j{}"}}"#, i % 7);
        let extra = if i % BIG_EVERY == 0 {
            big.clone()
        } else {
            String::new()
        };
        let sep = if i == 0 { "" } else { "," };
        Ok::<_, std::io::Error>(Bytes::from(format!(
            "{sep}{}",
            group(&labels, "1.7e+09", &extra)
        )))
    });
    let open = Bytes::from_static(br#"{"status":"success","data":["#);
    let close = Bytes::from_static(b"]}");
    let pieces = std::iter::once(Ok(open))
        .chain(parts)
        .chain(std::iter::once(Ok(close)));
    let body = stream::iter(pieces);
    let parsed = parse_stream(body, None, Naming::Legacy).await.unwrap();
    assert_eq!(parsed.groups.len(), GROUPS);
    assert_eq!(
        parsed.groups[99_999].labels,
        key(&[("instance", "i99999"), ("job", "j4")])
    );
    assert!(parsed.groups.iter().all(|g| g.push_time == 1.7e9));
}

#[tokio::test]
async fn series_are_counted_per_pushed_family_without_the_gateways_own() {
    let counter = r#""c":{"type":"COUNTER","metrics":[{"labels":{"a":"1"},"value":"1"},{"labels":{"a":"2"},"value":"2"}]},"#;
    let ttl = r#""d_ttl":{"type":"GAUGE","metrics":[{"labels":{},"value":"60"}]},"#;
    let body = body(&[
        group(
            r#"{"job":"a"}"#,
            "1",
            &format!("{}{counter}", big_family("b_hist", 3)),
        ),
        group(r#"{"job":"b"}"#, "2", ttl),
        group(r#"{"job":"none"}"#, "3", ""),
    ]);
    for ttl_metric in [None, Some("d_ttl")] {
        let parsed = parse_chunked(&body, 7, ttl_metric).await.unwrap();
        let series: Vec<u64> = parsed
            .groups
            .iter()
            .map(|g| g.series.unwrap_or_default())
            .collect();
        // A histogram counts once per label set; push_time_seconds and
        // push_failure_time_seconds, which every group has, are not counted.
        assert_eq!(series, [5, 1, 0], "ttl metric {ttl_metric:?}");
    }
}

#[tokio::test]
async fn an_error_in_a_later_group_names_its_place_in_the_whole_body() {
    // Each group is parsed on its own; the error's line and column must still be the body's,
    // as serde_json gives them when it parses the whole body at once.
    let first = group(r#"{"job":"a"}"#, "1", "");
    let cases = [
        (r#""value":"2""#, r#""value":x"#),
        (r#""job":"b""#, r#""job":"b\q""#),
        (
            "\"last_push_successful\":true",
            "\"last_push_successful\":tru",
        ),
    ];
    for (from, to) in cases {
        let second = group(r#"{"job":"b"}"#, "2", "").replacen(from, to, 1);
        for sep in [",", ",\n  ", "\n,\n"] {
            let body = format!(r#"{{"status":"success","data":[{first}{sep}{second}]}}"#);
            let want = serde_json::from_str::<serde_json::Value>(&body).unwrap_err();
            for size in [5, 4096] {
                let err = parse_chunked(&body, size, None).await.unwrap_err();
                assert_eq!(err.to_string(), want.to_string(), "{body:?} in {size}s");
            }
        }
    }
}
