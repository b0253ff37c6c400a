//! Which groups a policy covers: Prometheus label matchers over grouping keys.
//!
//! `{job=~"nightly-.*", env!="dev", instance="", "service.name"="api"}`, braces optional, empty =
//! every group, names that are not legacy names quoted as in Prometheus 3. Semantics are
//! Prometheus' own, so a selector means here what it means in a PromQL query: regexes are fully
//! anchored (`^(?s:<re>)$`) and a label a group lacks matches as the empty string.

use std::fmt;
use std::str::FromStr;

use regex::Regex;

use crate::model::{is_legacy_name, Labels};
use crate::{Error, Result};

mod parse;
#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `name op "value"` condition.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// Compiled anchored regex, for the two regex ops only.
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher; the error text says what is wrong with the regex. Any UTF-8 name is a
    /// label name, as in Prometheus 3 (even `""`, which no group has: it matches as `""`).
    pub fn new(name: &str, op: MatchOp, value: &str) -> std::result::Result<Self, String> {
        let regex = match op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(
                Regex::new(&format!("^(?s:{value})$"))
                    .map_err(|e| format!("regex for label {name:?}: {}", regex_error(&e)))?,
            ),
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value satisfies this matcher; pass `""` for a label the group lacks.
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::RegexMatch, Some(re)) => re.is_match(v),
            (MatchOp::RegexNoMatch, Some(re)) => !re.is_match(v),
            (_, None) => unreachable!("regex ops always carry a compiled regex"),
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        // The compiled regex follows from the other three fields.
        (self.op, &self.name, &self.value) == (other.op, &other.name, &other.value)
    }
}

impl Eq for Matcher {}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", name(&self.name), self.op, quote(&self.value))
    }
}

/// A conjunction of matchers; no matchers = every group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

impl Selector {
    pub fn new(matchers: Vec<Matcher>) -> Self {
        Selector { matchers }
    }

    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// True when every matcher holds for this grouping key; a missing label counts as `""`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| {
            let v = labels.get(&m.name).unwrap_or("");
            m.matches_value(v)
        })
    }

    /// True when the selector has no matchers. A selector whose matchers happen to match everything
    /// (`job=~".*"`) is not match-all: that is decided on syntax, so the caller can rely on it to
    /// choose a whole-replica wipe.
    pub fn is_match_all(&self) -> bool {
        self.matchers.is_empty()
    }
}

impl FromStr for Selector {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        parse::parse(s)
            .map(Selector::new)
            .map_err(|message| Error::config(format!("selector '{s}'"), message))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

impl serde::Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Formats a grouping key the way Prometheus 3 prints a label set: `{instance="", job="a"}`,
/// a name that is not a legacy name quoted (`{"service.name"="api", job="a"}`).
/// It is also a selector that names exactly these label values.
pub fn format_labels(labels: &Labels) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&name(k));
        out.push('=');
        out.push_str(&quote(v));
    }
    out.push('}');
    out
}

/// A label name as Prometheus 3 prints it: bare when it is a legacy name, else quoted.
fn name(name: &str) -> std::borrow::Cow<'_, str> {
    if is_legacy_name(name) {
        name.into()
    } else {
        quote(name).into()
    }
}

/// Double-quotes a value with the escapes the parser reads back, so `Display` round-trips.
fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The regex crate's message draws the (anchored) pattern with a caret; keep only the one line that
/// says what is wrong, since the pattern the user wrote is already in the error.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or(text)
}
