//! Inspect's two shapes: a table for people, JSON for scripts; and the order of the keys.

use std::cmp::Ordering;
use std::fmt::Write as _;

use clap::ValueEnum;

use super::{Inspection, KeyView, Would};
use crate::report::{format_age, write_table};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    /// Newest first, by each key's newest copy (keys whose age is unknown last).
    Age,
    /// By grouping key, as printed.
    Key,
    /// Most replicas first (the copied keys), then newest first.
    Replicas,
}

/// Smaller age first; an unknown age last.
pub(super) fn newest_first(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn newest(k: &KeyView) -> Option<f64> {
    k.copies
        .iter()
        .filter_map(|c| c.age_seconds)
        .min_by(f64::total_cmp)
}

impl Inspection {
    /// Orders the keys and keeps the first `limit`.
    pub fn arrange(&mut self, sort: SortBy, limit: Option<usize>) {
        let by_key = |a: &KeyView, b: &KeyView| a.key.cmp(&b.key);
        match sort {
            SortBy::Age => self
                .keys
                .sort_by(|a, b| newest_first(newest(a), newest(b)).then_with(|| by_key(a, b))),
            SortBy::Key => self.keys.sort_by(by_key),
            SortBy::Replicas => self.keys.sort_by(|a, b| {
                b.replicas
                    .cmp(&a.replicas)
                    .then_with(|| newest_first(newest(a), newest(b)))
                    .then_with(|| by_key(a, b))
            }),
        }
        if let Some(n) = limit {
            self.keys.truncate(n);
        }
        self.summary.shown = self.keys.len();
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the inspection serialises")
    }

    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let rows: Vec<[String; 4]> = self
            .replicas
            .iter()
            .map(|r| {
                [
                    r.url.clone(),
                    match r.state {
                        crate::report::ReplicaState::Ok => "ok".into(),
                        crate::report::ReplicaState::Failed => "FAILED".into(),
                    },
                    r.groups.map_or("-".into(), |g| g.to_string()),
                    r.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        write_table(&mut out, ["REPLICA", "STATE", "GROUPS", "ERROR"], &rows);
        for r in &self.refused {
            let _ = writeln!(out, "refused: {} ({})", r.instance, r.why);
        }
        out.push('\n');
        let mut rows: Vec<[String; 6]> = Vec::new();
        for k in &self.keys {
            for (i, c) in k.copies.iter().enumerate() {
                let would: Vec<String> = c
                    .policies
                    .iter()
                    .filter(|v| v.would == Would::Delete)
                    .map(|v| {
                        let reason = v.reason.map(|r| r.as_str()).unwrap_or_default();
                        format!("{}: {reason}", v.policy)
                    })
                    .collect();
                rows.push([
                    if i == 0 { k.key.clone() } else { String::new() },
                    c.replica.clone(),
                    c.age_seconds.map_or("-".into(), format_age),
                    c.series.to_string(),
                    if c.last_push_successful {
                        "ok"
                    } else {
                        "FAILED"
                    }
                    .into(),
                    if self.policies.is_empty() {
                        String::new()
                    } else if would.is_empty() {
                        "keep".into()
                    } else {
                        format!("delete ({})", would.join(", "))
                    },
                ]);
            }
        }
        write_table(
            &mut out,
            [
                "GROUPING KEY",
                "REPLICA",
                "AGE",
                "SERIES",
                "LAST PUSH",
                "POLICIES",
            ],
            &rows,
        );
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let s = &self.summary;
        if let Some(e) = &s.error {
            let _ = writeln!(out, "error: {e}");
        }
        let _ = writeln!(
            out,
            "\n{} replicas ({} failed), {} keys ({} shown), {} copies, {} a policy would delete; nothing was deleted",
            s.replicas, s.replicas_failed, s.keys, s.shown, s.copies, s.would_delete
        );
        out
    }
}
