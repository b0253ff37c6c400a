//! What one sweep did, in a stable shape: rendered as a table for people or as JSON for machines.

mod failure;
#[cfg(test)]
mod sent_tests;

use std::fmt::Write as _;

use serde::Serialize;

pub use failure::{Failure, Public};

use crate::model::Labels;
use crate::plan::Reason;
use crate::selector::format_labels;

pub use crate::exit;

/// A candidate that discovery refused to treat as a replica: it is never contacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// Its `instance` label.
    pub instance: String,
    /// The URL it would have had, when it makes one (credentials never shown).
    pub url: Option<String>,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// RFC 3339 time the sweep started (janitor clock; only for humans).
    pub started_at: String,
    pub duration_seconds: f64,
    pub dry_run: bool,
    /// `delete` or `wipe`.
    pub action: &'static str,
    pub replicas: Vec<ReplicaReport>,
    pub actions: Vec<ActionReport>,
    pub notes: Vec<String>,
    /// Candidates discovery refused (an `up` series with no scrape target behind it, an address
    /// outside the allow-list): never contacted, and no part of the exit code.
    pub refused: Vec<Refused>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplicaState {
    /// Read, decided and (unless dry run) acted on, every delete confirmed.
    Ok,
    /// Could not be read, or some of its deletes failed or stayed unconfirmed.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaReport {
    pub url: String,
    pub state: ReplicaState,
    pub error: Option<Failure>,
    /// Groups read on the replica; `null` when it could not be read (never 0 for "unknown").
    pub groups: Option<usize>,
    /// Groups whose key the gateway's API could not give; reported, never touched.
    pub unkeyed_groups: usize,
    pub version: Option<String>,
    pub admin_api: Option<bool>,
    /// The replica was wiped with `PUT /api/v1/admin/wipe`.
    pub admin_wipe: bool,
    /// The plan was older than the bound when deletes started, so the replica was re-read first.
    pub replanned: bool,
    pub read_seconds: Option<f64>,
    /// Longest time between reading a group and sending its DELETE: a push landing in this
    /// window would be lost (the gateway has no conditional delete).
    pub max_delete_window_seconds: Option<f64>,
    /// From the first DELETE (or the wipe) sent to the last one confirmed or given up: how long
    /// deleting on this replica took. `null` when nothing was sent.
    pub delete_seconds: Option<f64>,
    /// `start_time` from the replica's `/api/v1/status`; it changes when the replica restarts.
    pub start_time: Option<String>,
    /// Set only by a front door that remembers the previous sweep (`run --policies`, the
    /// controller): the start time changed since then, so deleted groups may have come back from
    /// its persistence file. Absent from a one-shot sweep's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarted: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Dry run: this group would be deleted.
    WouldDelete,
    /// Deleted, and a re-read confirmed it is gone.
    Deleted,
    /// Deleted, but a re-read found it pushed again since (fresh data, not an error).
    Repushed,
    /// The DELETE was accepted but the group was still there with the same push time.
    Unconfirmed,
    /// The DELETE (or wipe) request failed.
    Failed,
    /// Dropped from the plan when the replica was re-read before acting: pushed in between.
    Kept,
    /// A guard aborted the run; nothing was deleted.
    Aborted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::WouldDelete => "would-delete",
            Outcome::Deleted => "deleted",
            Outcome::Repushed => "repushed",
            Outcome::Unconfirmed => "unconfirmed",
            Outcome::Failed => "failed",
            Outcome::Kept => "kept",
            Outcome::Aborted => "aborted",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    pub gateway: String,
    pub labels: Labels,
    pub reason: Reason,
    pub age_seconds: Option<f64>,
    pub outcome: Outcome,
    /// Why it was decided, for people.
    pub detail: String,
    pub error: Option<Failure>,
    /// Set when the DELETE (or wipe) was never sent, and why; the `error` says it in words.
    /// Only counts read it: the JSON report and the table stay as they were.
    #[serde(skip)]
    pub not_sent: Option<NotSent>,
}

/// Why a decided DELETE (or wipe) was never sent by this sweep: no request of its own reached the
/// gateway for it, so it counts in no tally of requests sent. Such an action is `failed`, except
/// one [`NotSent::SentByAnother`], which ends as the other sweep's request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    /// The right to act was withdrawn before it: the controller lost its leadership.
    LeadershipLost,
    /// An earlier DELETE to the same replica got no answer at all; the rest were not sent to it.
    ReplicaStoppedAnswering,
    /// `/-/healthy` never let it through: the replica's write queue stayed full, or the health
    /// check itself failed.
    Unhealthy,
    /// The plan was old, and the re-read that would have renewed it failed.
    ReReadFailed,
    /// Another policy's sweep had sent this very DELETE moments before: this one confirmed it
    /// (its outcome is that confirmation's) and sent nothing, so the request counts once.
    SentByAnother,
}

impl ActionReport {
    /// Did a DELETE (or wipe) request go out for this action, whatever came of it?
    pub fn sent(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Deleted | Outcome::Repushed | Outcome::Unconfirmed | Outcome::Failed
        ) && self.not_sent.is_none()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub replicas: usize,
    pub replicas_failed: usize,
    pub groups_seen: usize,
    pub planned: usize,
    pub deleted: usize,
    pub would_delete: usize,
    pub repushed: usize,
    pub unconfirmed: usize,
    pub failed: usize,
    pub kept: usize,
    /// Candidates discovery refused; see [`SweepReport::refused`].
    pub refused: usize,
    pub guard: Option<GuardReport>,
    /// A failure that stopped the run before any replica was read (discovery).
    pub error: Option<Failure>,
    pub exit_code: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct GuardReport {
    pub limit: &'static str,
    pub planned: u64,
    pub allowed: u64,
    pub message: String,
}

impl ReplicaReport {
    /// A replica read well with `groups` groups and nothing else known, for unit tests to vary
    /// (here and in the crates above, which cannot see the core's `cfg(test)` items).
    pub fn for_test(url: &str, state: ReplicaState, groups: usize) -> ReplicaReport {
        ReplicaReport {
            url: url.into(),
            state,
            error: None,
            groups: Some(groups),
            unkeyed_groups: 0,
            version: None,
            admin_api: None,
            admin_wipe: false,
            replanned: false,
            read_seconds: None,
            max_delete_window_seconds: None,
            delete_seconds: None,
            start_time: None,
            restarted: None,
        }
    }
}

impl SweepReport {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.actions.iter().filter(|a| a.outcome == outcome).count()
    }

    /// DELETE (or wipe) requests sent: every action that reached the gateway, confirmed or not.
    pub fn delete_requests(&self) -> usize {
        self.actions.iter().filter(|a| a.sent()).count()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// The table people read: one line per action, then one per replica, then the summary.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        if self.actions.is_empty() {
            out.push_str("No group to delete.\n");
        } else {
            let rows: Vec<[String; 5]> = self
                .actions
                .iter()
                .map(|a| {
                    [
                        a.gateway.clone(),
                        format_labels(&a.labels),
                        a.age_seconds.map(format_age).unwrap_or_else(|| "-".into()),
                        a.reason.to_string(),
                        match &a.error {
                            Some(e) => format!("{} ({e})", a.outcome.as_str()),
                            None => a.outcome.as_str().to_string(),
                        },
                    ]
                })
                .collect();
            write_table(
                &mut out,
                ["REPLICA", "GROUP", "AGE", "REASON", "OUTCOME"],
                &rows,
            );
        }
        out.push('\n');
        let rows: Vec<[String; 5]> = self
            .replicas
            .iter()
            .map(|r| {
                [
                    r.url.clone(),
                    match r.state {
                        ReplicaState::Ok => "ok".into(),
                        ReplicaState::Failed => "FAILED".into(),
                    },
                    r.groups
                        .map(|g| g.to_string())
                        .unwrap_or_else(|| "?".into()),
                    r.version.clone().unwrap_or_else(|| "-".into()),
                    r.error.as_deref().unwrap_or_default().to_string(),
                ]
            })
            .collect();
        write_table(
            &mut out,
            ["REPLICA", "STATE", "GROUPS", "VERSION", "ERROR"],
            &rows,
        );
        out.push('\n');
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        for r in &self.refused {
            let _ = writeln!(
                out,
                "refused: instance {:?}{}: {} (never contacted)",
                r.instance,
                r.url
                    .as_ref()
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default(),
                r.why
            );
        }
        let s = &self.summary;
        if let Some(error) = &s.error {
            let _ = writeln!(out, "error: {error}");
        }
        if let Some(guard) = &s.guard {
            let _ = writeln!(out, "ABORTED by guard: {}", guard.message);
        }
        let _ = writeln!(
            out,
            "{} replicas ({} failed), {} groups seen, {} planned: {} deleted, {} would delete, {} repushed, {} unconfirmed, {} failed, {} kept{}",
            s.replicas,
            s.replicas_failed,
            s.groups_seen,
            s.planned,
            s.deleted,
            s.would_delete,
            s.repushed,
            s.unconfirmed,
            s.failed,
            s.kept,
            if self.dry_run { " (dry run)" } else { "" }
        );
        out
    }
}

/// Rows under a header, each column as wide as its widest cell (reports, `inspect`).
pub fn write_table<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(out, header.to_vec());
    for row in rows {
        line(out, row.iter().map(String::as_str).collect());
    }
}

/// A compact age: `42s`, `7m05s`, `3h02m`, `2d04h`.
pub fn format_age(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".into();
    }
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_compact() {
        assert_eq!(format_age(42.4), "42s");
        assert_eq!(format_age(425.0), "7m05s");
        assert_eq!(format_age(3.0 * 3600.0 + 120.0), "3h02m");
        assert_eq!(format_age(2.0 * 86_400.0 + 4.0 * 3600.0), "2d04h");
    }
}
