//! Grouping key → URL path, the one encoding the gateway can never misread.
//!
//! Every value is sent as `<name>@base64/<URL-safe base64, no padding>`, the job included: a `/`
//! in a value (even as `%2F`) is a path separator for the gateway, and an empty plain segment
//! becomes `//`, which Go's router collapses into another group. A wrong path still gets `202`
//! and deletes nothing, so anything the gateway would reject or misroute is refused here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::model::Labels;
use crate::{Error, Result};

/// The path of a group below the gateway's base URL: `metrics/job@base64/<job>{/<name>@base64/<value>}`,
/// other labels in sorted order.
pub fn group_path(labels: &Labels) -> Result<String> {
    let job = labels
        .get("job")
        .ok_or_else(|| Error::config("grouping key", "no `job` label"))?;
    if job.is_empty() {
        return Err(Error::config("grouping key", "empty `job` label"));
    }
    let mut path = String::from("metrics");
    push_segment(&mut path, "job", job);
    // `Labels` is a BTreeMap: iteration is already sorted by name.
    for (name, value) in labels.iter().filter(|(name, _)| name.as_str() != "job") {
        check_label_name(name)?;
        push_segment(&mut path, name, value);
    }
    Ok(path)
}

fn push_segment(path: &mut String, name: &str, value: &str) {
    path.push('/');
    path.push_str(name);
    path.push_str("@base64/");
    if value.is_empty() {
        // Base64 of "" is "", which would leave an empty segment; the gateway reads "=" as "".
        path.push('=');
    } else {
        URL_SAFE_NO_PAD.encode_string(value.as_bytes(), path);
    }
}

/// The names the gateway accepts in a path (classic Prometheus names; `__` is reserved).
fn check_label_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_start || !valid_rest {
        return Err(Error::config(
            "grouping key",
            format!("invalid label name {name:?}"),
        ));
    }
    if name.starts_with("__") {
        return Err(Error::config(
            "grouping key",
            format!("label name {name:?} is reserved (starts with `__`)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Decodes a path the way the gateway does, so the tests check a round trip, not a string.
    fn decode(path: &str) -> Labels {
        let mut segments = path.split('/');
        assert_eq!(segments.next(), Some("metrics"));
        let rest: Vec<&str> = segments.collect();
        assert_eq!(rest.len() % 2, 0, "odd number of segments in {path}");
        rest.chunks(2)
            .map(|pair| {
                let name = pair[0].strip_suffix("@base64").expect("base64 marker");
                let value = if pair[1] == "=" {
                    String::new()
                } else {
                    let bytes = URL_SAFE_NO_PAD.decode(pair[1]).expect("url-safe base64");
                    String::from_utf8(bytes).expect("utf-8")
                };
                (name.to_string(), value)
            })
            .collect()
    }

    #[test]
    fn job_comes_first_then_sorted_labels() {
        let key = labels(&[("job", "a"), ("zone", "z"), ("instance", "i")]);
        assert_eq!(
            group_path(&key).unwrap(),
            "metrics/job@base64/YQ/instance@base64/aQ/zone@base64/eg"
        );
    }

    #[test]
    fn empty_value_is_a_single_equals_sign() {
        let key = labels(&[("job", "a"), ("instance", "")]);
        assert_eq!(
            group_path(&key).unwrap(),
            "metrics/job@base64/YQ/instance@base64/="
        );
    }

    #[test]
    fn url_safe_alphabet_without_padding() {
        // "??>" encodes to "Pz8+" in the standard alphabet; the gateway rejects '+' and '/'.
        let key = labels(&[("job", "??>"), ("x", "ÿÿ")]);
        let path = group_path(&key).unwrap();
        assert_eq!(path, "metrics/job@base64/Pz8-/x@base64/w7_Dvw");
        assert_eq!(decode(&path), key);
    }

    #[test]
    fn missing_or_empty_job_is_refused() {
        assert!(matches!(
            group_path(&labels(&[("instance", "i")])),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            group_path(&labels(&[("job", "")])),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn invalid_or_reserved_label_names_are_refused() {
        for name in ["__x", "1a", "a-b", "a+b", "a b", "", "é", "a/b", "a@b"] {
            let key = labels(&[("job", "j"), (name, "v")]);
            assert!(
                matches!(group_path(&key), Err(Error::Config { .. })),
                "{name:?} accepted"
            );
        }
        for name in ["_a", "a_", "A9", "_"] {
            assert!(group_path(&labels(&[("job", "j"), (name, "v")])).is_ok());
        }
    }

    fn label_name() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9_]{0,8}|_[a-zA-Z0-9][a-zA-Z0-9_]{0,8}"
            .prop_filter("job is set separately", |n| n != "job")
    }

    fn label_value() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[/%+=@#? a-z]{1,12}", any::<String>(),]
    }

    proptest! {
        #[test]
        fn path_decodes_back_to_exactly_the_labels(
            job in label_value().prop_filter("job must not be empty", |j| !j.is_empty()),
            others in proptest::collection::btree_map(label_name(), label_value(), 0..6),
        ) {
            let mut key = others;
            key.insert("job".to_string(), job);
            let path = group_path(&key).unwrap();
            // Nothing in the path needs percent-encoding, so no URL layer can alter it.
            prop_assert!(path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/@_-=".contains(&b)));
            prop_assert_eq!(decode(&path), key);
        }
    }
}
