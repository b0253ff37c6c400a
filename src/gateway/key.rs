//! Grouping key → URL path, the one encoding the gateway can never misread.
//!
//! Every value is sent as `<name>@base64/<URL-safe base64, no padding>`, the job included: a `/`
//! in a value (even as `%2F`) is a path separator for the gateway, and an empty plain segment
//! becomes `//`, which Go's router collapses into another group. A wrong path still gets `202`
//! and deletes nothing, so anything the gateway would reject or misroute is refused here.
//!
//! Names depend on the replica ([`Naming`]). A replica with `--push.enable-utf8-names` decodes
//! every name in a path with Prometheus' `U__` value escaping (`model.UnescapeName(name,
//! ValueEncodingEscaping)`), so a name that is not a legacy name, or that starts with `U__` or
//! `__`, is sent escaped; any other replica takes names literally and only knows legacy names.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::model::{is_legacy_name, Labels, Naming};
use crate::{Error, Result};

/// The path of a group below the gateway's base URL: `metrics/job@base64/<job>{/<name>@base64/<value>}`,
/// other labels in sorted order, each name as `naming` requires.
pub fn group_path(labels: &Labels, naming: Naming) -> Result<String> {
    let job = labels
        .get("job")
        .ok_or_else(|| Error::config("grouping key", "no `job` label"))?;
    if job.is_empty() {
        return Err(Error::config("grouping key", "empty `job` label"));
    }
    let mut path = String::from("metrics");
    push_segment(&mut path, "job", job);
    // `Labels` iterate sorted by name.
    for (name, value) in labels.iter().filter(|(name, _)| *name != "job") {
        let name = path_name(name, naming)?;
        push_segment(&mut path, &name, value);
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

/// A label name as it must appear in a path for a replica with this naming, or why it cannot.
fn path_name(name: &str, naming: Naming) -> Result<std::borrow::Cow<'_, str>> {
    let refuse = |why: String| Err(Error::config("grouping key", why));
    let legacy = is_legacy_name(name);
    match naming {
        // The gateway reads the name literally and refuses a non-legacy or reserved one.
        Naming::Legacy if !legacy => refuse(format!(
            "invalid label name {name:?} (the replica takes only legacy names: it runs without \
             --push.enable-utf8-names)"
        )),
        Naming::Legacy | Naming::Unknown if name.starts_with("__") => refuse(format!(
            "label name {name:?} is reserved (starts with `__`)"
        )),
        Naming::Legacy => Ok(name.into()),
        // Whether the replica decodes `U__` names is unknown: send only names that mean the same
        // either way. Deleting `U__a_2e_b` literally on a UTF-8 replica would hit `a.b` instead.
        Naming::Unknown if !legacy || name.starts_with("U__") => refuse(format!(
            "label name {name:?} cannot be addressed: the replica's status (whether it runs with \
             --push.enable-utf8-names) could not be read"
        )),
        Naming::Unknown => Ok(name.into()),
        Naming::Utf8 if name.is_empty() => refuse("empty label name".to_string()),
        // The gateway refuses a path name starting with `__` before decoding it, but accepts an
        // escaped one that decodes to `__...`: such a group exists only if pushed that way.
        Naming::Utf8 if !legacy || name.starts_with("U__") || name.starts_with("__") => {
            Ok(escape_name(name).into())
        }
        Naming::Utf8 => Ok(name.into()),
    }
}

/// Prometheus' `U__` value escaping (`model.EscapeName(name, ValueEncodingEscaping)`), applied
/// unconditionally: `U__`, then `_` as `__`, ASCII letters and digits (not a leading digit) as
/// they are, every other character as `_<lowercase hex code point>_`. Stricter than Go's, which
/// also keeps `:` literal; `model.UnescapeName` decodes both the same, and this way the path holds
/// only characters no URL layer rewrites.
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    out.push_str("U__");
    for (i, c) in name.chars().enumerate() {
        match c {
            '_' => out.push_str("__"),
            c if c.is_ascii_alphabetic() || (c.is_ascii_digit() && i > 0) => out.push(c),
            c => {
                out.push('_');
                out.push_str(&format!("{:x}", c as u32));
                out.push('_');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
