//! What the janitor knows about a replica after reading it: plain data, no IO.

use std::collections::BTreeMap;

use serde::Serialize;

/// A grouping key exactly as the gateway's JSON API reports it (`labels` of a group), `job` included.
/// Sorted, so two keys compare equal whatever order the gateway sent them in.
pub type Labels = BTreeMap<String, String>;

/// One group on one replica: only what a decision needs, never its samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The exact grouping key.
    pub labels: Labels,
    /// `push_time_seconds` on the replica's own clock; `0` when the group never had a successful push.
    pub push_time: f64,
    /// `push_failure_time_seconds`, `0` when no push ever failed.
    pub push_failure_time: f64,
    /// `last_push_successful` from the JSON API.
    pub last_push_successful: bool,
    /// Value of the pusher-declared TTL gauge (`--ttl-from-metric`) when the group carries it.
    pub declared_ttl: Option<f64>,
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

/// Everything read from one replica at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The replica's clock (the `Date` header of the `/api/v1/metrics` answer), Unix seconds.
    pub clock: f64,
    pub groups: Vec<Group>,
    /// Groups skipped because their key could not be read.
    pub unkeyed: Vec<UnkeyedGroup>,
}

/// What `/api/v1/status` says about a replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaStatus {
    pub admin_api: bool,
    pub version: Option<String>,
    pub start_time: Option<String>,
    pub route_prefix: Option<String>,
    pub persistence_file: Option<String>,
}
