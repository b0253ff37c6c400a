//! What the janitor knows about a replica after reading it: plain data, no IO.

mod instance;
mod labels;

use serde::Serialize;

pub use instance::{Form, KeyIndex, Loose, Presence};
pub use labels::Interner;
pub use labels::Labels;

/// One group on one replica: only what a decision needs, never its samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The grouping key: exact, unless `instance_unsure`.
    pub labels: Labels,
    /// Read from `/metrics`, which shows a group without `instance` and one whose key holds
    /// `instance=""` alike: `labels` then has no `instance`, and the key is either `labels` or
    /// `labels` plus `instance=""`. Both cannot live on one healthy replica, so it is one group;
    /// its delete removes whichever of the two it is.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub instance_unsure: bool,
    /// `push_time_seconds` on the replica's own clock; `0` when the group never had a successful push.
    pub push_time: f64,
    /// `push_failure_time_seconds`, `0` when no push ever failed.
    pub push_failure_time: f64,
    /// `last_push_successful` from the JSON API; from `/metrics`, derived from the two push
    /// times as the gateway derives it.
    pub last_push_successful: bool,
    /// Value of the pusher-declared TTL gauge (`--ttl-from-metric`) when the group carries it.
    pub declared_ttl: Option<f64>,
    /// Metrics (label sets) in the group's pushed families, without the gateway's own
    /// `push_time_seconds` and `push_failure_time_seconds`; a histogram or summary counts once.
    /// `None` when read from `/metrics`, which is not counted per group (only `inspect` shows it,
    /// and it reads the JSON API).
    pub series: Option<u64>,
}

impl Group {
    /// A phantom group never had a successful push: a failed push left it behind.
    pub fn is_phantom(&self) -> bool {
        self.push_time == 0.0
    }

    /// The time this group's age is counted from: its last successful push, or for a phantom its
    /// last failure. `None` when neither is known, so its age cannot be told.
    pub fn reference_time(&self) -> Option<f64> {
        if self.push_time > 0.0 {
            Some(self.push_time)
        } else if self.push_failure_time > 0.0 {
            Some(self.push_failure_time)
        } else {
            None
        }
    }
}

/// A group whose grouping key the JSON API could not give (a pushed family literally named
/// `labels` overwrites the key in the gateway's response). It is reported and never touched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnkeyedGroup {
    pub why: String,
}

/// A legacy Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*` (no `:`, unlike metric names). Any
/// other non-empty UTF-8 name exists only on a replica with `--push.enable-utf8-names`.
pub fn is_legacy_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How a replica reads the label names in a push or DELETE path, from its `/api/v1/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Naming {
    /// Legacy names only, taken literally: 1.5.1, and 1.11 without `--push.enable-utf8-names`.
    /// A name that merely looks escaped (`U__x`) is a plain name here.
    #[default]
    Legacy,
    /// `--push.enable-utf8-names` (1.11+): any UTF-8 name; every name in a path is decoded with
    /// Prometheus' `U__` value escaping.
    Utf8,
    /// The status could not be read: only names that mean the same under both rules (legacy names
    /// not starting with `U__`) can be addressed.
    Unknown,
}

impl Naming {
    /// The naming a replica's status implies; `None` (status unreadable) is [`Naming::Unknown`].
    pub fn of(status: Option<&ReplicaStatus>) -> Naming {
        match status {
            Some(s) if s.utf8_names => Naming::Utf8,
            Some(_) => Naming::Legacy,
            None => Naming::Unknown,
        }
    }
}

/// Which endpoint a snapshot was read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `GET /metrics`, the light read: push times only, every other line skipped.
    Metrics,
    /// `GET /api/v1/metrics`: exact keys and series counts, but the gateway builds the whole
    /// answer in memory first (about 1.9x its resting RSS on 1.11.3, 2.5x on 1.5.1).
    #[default]
    Json,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Metrics => "metrics",
            Source::Json => "json",
        }
    }
}

/// Everything read from one replica at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The replica's clock (the `Date` header of the answer), Unix seconds.
    pub clock: f64,
    /// Which endpoint the groups came from.
    pub source: Source,
    /// How this replica reads label names in paths: what its groups' DELETEs are encoded with.
    pub naming: Naming,
    pub groups: Vec<Group>,
    /// Groups skipped because their key could not be read.
    pub unkeyed: Vec<UnkeyedGroup>,
}

/// What `/api/v1/status` says about a replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaStatus {
    pub admin_api: bool,
    /// `push.enable-utf8-names` is `"true"` (1.11+): label names are any UTF-8, `U__`-escaped in paths.
    pub utf8_names: bool,
    pub version: Option<String>,
    pub start_time: Option<String>,
    pub route_prefix: Option<String>,
    pub persistence_file: Option<String>,
}
