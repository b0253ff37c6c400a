//! Kubernetes events about a policy: at most one of each kind per sweep, never one per group.

use kube::runtime::events::{Event, EventType};

use super::status::{deleted, failed_replicas, sample};
use crate::report::{Outcome, SweepReport};

/// The API refuses an event note over 1 kB.
const MAX_NOTE: usize = 1000;

fn truncate(mut text: String) -> String {
    if text.len() > MAX_NOTE {
        let mut cut = MAX_NOTE - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

pub fn event(type_: EventType, reason: &str, action: &str, note: String) -> Event {
    Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(note)),
        action: action.into(),
        secondary: None,
    }
}

fn replicas_with(report: &SweepReport, outcomes: &[Outcome]) -> usize {
    let mut urls: Vec<&str> = report
        .actions
        .iter()
        .filter(|a| outcomes.contains(&a.outcome))
        .map(|a| a.gateway.as_str())
        .collect();
    urls.sort_unstable();
    urls.dedup();
    urls.len()
}

fn with_sample(mut note: String, report: &SweepReport) -> String {
    let sample = sample(report);
    if !sample.is_empty() {
        note.push_str(": sample ");
        note.push_str(&sample.join(", "));
    }
    note
}

/// The events one sweep gives: `Swept` when it deleted something, `DryRun` when a dry run would
/// have, `ReplicaFailed`, `ReplicaRefused` and `GuardTripped` as warnings.
pub fn for_sweep(report: &SweepReport) -> Vec<Event> {
    let sum = &report.summary;
    let mut out = Vec::new();
    if let Some(guard) = &sum.guard {
        out.push(event(
            EventType::Warning,
            "GuardTripped",
            "Sweep",
            format!("nothing deleted: {}", guard.message),
        ));
    }
    let n = deleted(report);
    if n > 0 {
        let m = replicas_with(report, &[Outcome::Deleted, Outcome::Repushed]);
        out.push(event(
            EventType::Normal,
            "Swept",
            "Sweep",
            with_sample(format!("deleted {n} groups on {m} replicas"), report),
        ));
    }
    if report.dry_run && sum.would_delete > 0 {
        let m = replicas_with(report, &[Outcome::WouldDelete]);
        out.push(event(
            EventType::Normal,
            "DryRun",
            "Sweep",
            with_sample(
                format!(
                    "dry run: would delete {} groups on {m} replicas",
                    sum.would_delete
                ),
                report,
            ),
        ));
    }
    if !report.refused.is_empty() {
        let names: Vec<String> = report
            .refused
            .iter()
            .take(10)
            .map(|r| format!("{:?}", r.instance))
            .collect();
        out.push(event(
            EventType::Warning,
            "ReplicaRefused",
            "Discover",
            format!(
                "{} replica candidate(s) refused and never contacted (an up series with no scrape \
                 target behind it is a pushed sample; an address outside the controller's \
                 allow-list is the admin's refusal; status.lastSweep.refused says which): {}",
                report.refused.len(),
                names.join(", ")
            ),
        ));
    }
    if sum.replicas_failed > 0 {
        out.push(event(
            EventType::Warning,
            "ReplicaFailed",
            "Sweep",
            format!(
                "{} of {} replicas failed: {}",
                sum.replicas_failed,
                sum.replicas,
                failed_replicas(report)
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let note = truncate("é".repeat(800));
        assert!(note.len() <= MAX_NOTE && note.ends_with("..."));
        assert_eq!(truncate("short".into()), "short");
    }
}
