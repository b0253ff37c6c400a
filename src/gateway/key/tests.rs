use super::*;
use proptest::prelude::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `model.UnescapeName(name, ValueEncodingEscaping)`, ported line by line from
/// prometheus/common v0.67.5 `model/metric.go` (the version Pushgateway 1.11.3 builds with; v0.72.1
/// has the same function). Works on bytes like the Go code; any error returns the input unchanged.
fn go_unescape_name(name: &str) -> String {
    let Some(escaped) = name.strip_prefix("U__") else {
        return name.to_string();
    };
    let b = escaped.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    'top: while i < b.len() {
        if b[i] != b'_' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        if i >= b.len() {
            return name.to_string();
        }
        if b[i] == b'_' {
            out.push(b'_');
            i += 1;
            continue;
        }
        let mut val: u32 = 0;
        let mut j = 0;
        while i < b.len() {
            if j >= 6 {
                return name.to_string();
            }
            if b[i] == b'_' {
                // utf8.ValidRune: not a surrogate, at most U+10FFFF.
                let Some(c) = char::from_u32(val) else {
                    return name.to_string();
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 1;
                continue 'top;
            }
            let r = b[i] | (b'x' - b'X'); // lower()
            val *= 16;
            match r {
                b'0'..=b'9' => val += u32::from(r - b'0'),
                b'a'..=b'f' => val += u32::from(r - b'a' + 10),
                _ => return name.to_string(),
            }
            i += 1;
            j += 1;
        }
        return name.to_string();
    }
    String::from_utf8(out).expect("the Go code writes whole runes")
}

/// Decodes a path the way Pushgateway 1.11.3's `splitLabels` does for a replica with this naming
/// (`Legacy`: `NoEscaping` + `LegacyValidation`; `Utf8`: `ValueEncodingEscaping` +
/// `UTF8Validation`), so the tests check a round trip through the gateway's rules, not a string.
fn gateway_decode(path: &str, naming: Naming) -> std::result::Result<Labels, String> {
    let mut segments = path.split('/');
    assert_eq!(segments.next(), Some("metrics"));
    let rest: Vec<&str> = segments.collect();
    if !rest.len().is_multiple_of(2) {
        return Err(format!("odd number of segments in {path}"));
    }
    let mut out = Labels::new();
    for pair in rest.chunks(2) {
        let trimmed = pair[0].strip_suffix("@base64").expect("always base64");
        let name = match naming {
            Naming::Utf8 => go_unescape_name(trimmed),
            _ => trimmed.to_string(),
        };
        let valid = match naming {
            Naming::Utf8 => !name.is_empty(),
            _ => is_legacy_name(&name),
        };
        if !valid || trimmed.starts_with("__") {
            return Err(format!("improper label name {trimmed:?}"));
        }
        let value = if pair[1] == "=" {
            String::new()
        } else {
            let bytes = URL_SAFE_NO_PAD
                .decode(pair[1].trim_end_matches('='))
                .map_err(|e| e.to_string())?;
            String::from_utf8(bytes).expect("utf-8")
        };
        out.insert(name, value);
    }
    Ok(out)
}

#[test]
fn job_comes_first_then_sorted_labels() {
    let key = labels(&[("job", "a"), ("zone", "z"), ("instance", "i")]);
    assert_eq!(
        group_path(&key, Naming::Legacy).unwrap(),
        "metrics/job@base64/YQ/instance@base64/aQ/zone@base64/eg"
    );
}

#[test]
fn empty_value_is_a_single_equals_sign() {
    let key = labels(&[("job", "a"), ("instance", "")]);
    assert_eq!(
        group_path(&key, Naming::Legacy).unwrap(),
        "metrics/job@base64/YQ/instance@base64/="
    );
}

#[test]
fn url_safe_alphabet_without_padding() {
    // "??>" encodes to "Pz8+" in the standard alphabet; the gateway rejects '+' and '/'.
    let key = labels(&[("job", "??>"), ("x", "ÿÿ")]);
    let path = group_path(&key, Naming::Legacy).unwrap();
    assert_eq!(path, "metrics/job@base64/Pz8-/x@base64/w7_Dvw");
    assert_eq!(gateway_decode(&path, Naming::Legacy), Ok(key));
}

#[test]
fn missing_or_empty_job_is_refused() {
    for naming in [Naming::Legacy, Naming::Utf8, Naming::Unknown] {
        for key in [labels(&[("instance", "i")]), labels(&[("job", "")])] {
            assert!(matches!(
                group_path(&key, naming),
                Err(Error::Config { .. })
            ));
        }
    }
}

#[test]
fn a_legacy_replica_refuses_invalid_or_reserved_names() {
    for name in [
        "__x", "1a", "a-b", "a+b", "a b", "", "é", "a/b", "a@b", "a:b",
    ] {
        let key = labels(&[("job", "j"), (name, "v")]);
        assert!(
            matches!(group_path(&key, Naming::Legacy), Err(Error::Config { .. })),
            "{name:?} accepted"
        );
    }
    for name in ["_a", "a_", "A9", "_"] {
        assert!(group_path(&labels(&[("job", "j"), (name, "v")]), Naming::Legacy).is_ok());
    }
}

#[test]
fn a_name_that_only_looks_escaped_is_sent_literally_to_a_legacy_replica() {
    let key = labels(&[("job", "j"), ("U__a_2e_b", "v")]);
    assert_eq!(
        group_path(&key, Naming::Legacy).unwrap(),
        "metrics/job@base64/ag/U__a_2e_b@base64/dg"
    );
}

#[test]
fn utf8_names_are_escaped_as_the_gateway_decodes_them() {
    let cases = [
        ("service.name", "U__service_2e_name"),
        ("a-b", "U__a_2d_b"),
        ("1st", "U___31_st"),
        ("Zürich", "U__Z_fc_rich"),
        ("日本", "U___65e5__672c_"),
        ("a b", "U__a_20_b"),
        ("a:b", "U__a_3a_b"),
        ("x_y.z", "U__x__y_2e_z"),
        // Legacy names that would be decoded as escaped, or refused as reserved, are escaped too.
        ("U__a_2e_b", "U__U____a__2e__b"),
        ("__x", "U______x"),
        ("😀", "U___1f600_"),
    ];
    for (name, escaped) in cases {
        let key = labels(&[("job", "j"), (name, "v")]);
        let path = group_path(&key, Naming::Utf8).unwrap();
        assert_eq!(path, format!("metrics/job@base64/ag/{escaped}@base64/dg"));
        assert_eq!(go_unescape_name(escaped), name);
        assert_eq!(gateway_decode(&path, Naming::Utf8), Ok(key));
    }
    // Other legacy names stay as they are.
    for name in ["instance", "_a", "U_x", "u__x", "A9"] {
        let key = labels(&[("job", "j"), (name, "v")]);
        let path = group_path(&key, Naming::Utf8).unwrap();
        assert_eq!(path, format!("metrics/job@base64/ag/{name}@base64/dg"));
    }
}

#[test]
fn an_unknown_naming_addresses_only_names_that_mean_the_same_under_both_rules() {
    for name in ["service.name", "U__a_2e_b", "U__x", "__x", "1a"] {
        let key = labels(&[("job", "j"), (name, "v")]);
        assert!(
            group_path(&key, Naming::Unknown).is_err(),
            "{name:?} accepted"
        );
    }
    let key = labels(&[("job", "j"), ("instance", "i"), ("U_x", "v")]);
    let path = group_path(&key, Naming::Unknown).unwrap();
    assert_eq!(gateway_decode(&path, Naming::Legacy), Ok(key.clone()));
    assert_eq!(gateway_decode(&path, Naming::Utf8), Ok(key));
}

#[test]
fn the_go_port_matches_the_go_functions_own_edge_cases() {
    // From common's model/metric_test.go and reading the source: errors return the input.
    assert_eq!(go_unescape_name("U__"), "");
    assert_eq!(go_unescape_name("U__a_"), "U__a_"); // dangling underscore
    assert_eq!(go_unescape_name("U__a_2e"), "U__a_2e"); // no closing underscore
    assert_eq!(go_unescape_name("U___1234567_"), "U___1234567_"); // too many hex digits
    assert_eq!(go_unescape_name("U___d800_"), "U___d800_"); // a surrogate is not a rune
    assert_eq!(go_unescape_name("U___zz_"), "U___zz_");
    assert_eq!(go_unescape_name("U___2E_"), "."); // upper-case hex is read too
    assert_eq!(go_unescape_name("no_prefix.x"), "no_prefix.x");
}

fn legacy_name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_]{0,8}|_[a-zA-Z0-9][a-zA-Z0-9_]{0,8}"
        .prop_filter("job is set separately", |n| n != "job")
}

/// Any name a UTF-8 replica can hold: legacy names, names that look escaped, reserved-looking
/// names, dots, dashes, digits first, any Unicode.
fn utf8_name() -> impl Strategy<Value = String> {
    prop_oneof![
        legacy_name(),
        "U__[a-z0-9_]{0,8}",
        "__[a-z.]{0,4}",
        "[0-9.\\-:/@= a-z_]{1,10}",
        any::<String>(),
    ]
    .prop_filter("non-empty, not the job", |n| !n.is_empty() && n != "job")
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[/%+=@#? a-z]{1,12}", any::<String>(),]
}

fn job() -> impl Strategy<Value = String> {
    label_value().prop_filter("job must not be empty", |j| !j.is_empty())
}

/// Nothing in a path needs percent-encoding, so no URL layer can alter it.
fn plain(path: &str) -> bool {
    path.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/@_-=".contains(&b))
}

proptest! {
    #[test]
    fn legacy_path_decodes_back_to_exactly_the_labels(
        job in job(),
        others in proptest::collection::btree_map(legacy_name(), label_value(), 0..6),
    ) {
        let mut key: Labels = others.into_iter().collect();
        key.insert("job".to_string(), job);
        let path = group_path(&key, Naming::Legacy).unwrap();
        prop_assert!(plain(&path), "{}", path);
        prop_assert_eq!(gateway_decode(&path, Naming::Legacy), Ok(key));
    }

    #[test]
    fn utf8_path_decodes_back_through_unescape_name(
        job in job(),
        others in proptest::collection::btree_map(utf8_name(), label_value(), 0..6),
    ) {
        let mut key: Labels = others.into_iter().collect();
        key.insert("job".to_string(), job);
        let path = group_path(&key, Naming::Utf8).unwrap();
        prop_assert!(plain(&path), "{}", path);
        prop_assert_eq!(gateway_decode(&path, Naming::Utf8), Ok(key));
    }

    #[test]
    fn escaping_decodes_back_for_any_name(name in any::<String>()) {
        prop_assert_eq!(go_unescape_name(&escape_name(&name)), name);
    }

    #[test]
    fn whatever_an_unknown_naming_sends_means_the_same_to_both_kinds_of_replica(
        job in job(),
        others in proptest::collection::btree_map(utf8_name(), label_value(), 0..6),
    ) {
        let mut key: Labels = others.into_iter().collect();
        key.insert("job".to_string(), job);
        if let Ok(path) = group_path(&key, Naming::Unknown) {
            prop_assert_eq!(gateway_decode(&path, Naming::Legacy), Ok(key.clone()));
            prop_assert_eq!(gateway_decode(&path, Naming::Utf8), Ok(key));
        }
    }
}
