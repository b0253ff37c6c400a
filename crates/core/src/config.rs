//! What a sweep is given: one policy's whole configuration, checked, and the permit its front
//! door holds. Below the policy checker (which builds it) and the sweep (which runs it).

mod permit;

pub use permit::{MayAct, Permit, NOT_ATTEMPTED};

use crate::exit;
use crate::guard::Limits;
use crate::plan::{Action, Rules};
use crate::report::{Failure, Public, Summary, SweepReport};
use crate::tuning::Tuning;

/// One sweep's whole configuration, already validated: what a sweep's `run` is given, not a
/// run itself.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Whose sweep this is, for the delete log: a policy's `namespace/name`, or `cli`.
    pub name: String,
    pub policy: Rules,
    pub limits: Limits,
    pub dry_run: bool,
    pub tuning: Tuning,
    /// Asked right before every DELETE and wipe: a sweep whose right to act was withdrawn
    /// (leadership lost) stops there.
    pub permit: Permit,
}

impl SweepConfig {
    /// `delete` or `wipe`, as reports name the action.
    pub fn action_name(&self) -> &'static str {
        match self.policy.action {
            Action::DeleteGroups => "delete",
            Action::Wipe { .. } => "wipe",
        }
    }

    /// The report of a sweep that could not even find its replicas.
    pub fn failed_discovery<E: Public + ?Sized>(&self, error: &E) -> SweepReport {
        let failure = Failure::both(error.to_string(), error.public());
        self.empty_report(jiff::Timestamp::now(), 0.0, failure)
    }

    /// A report with no replica in it, ended by `error`.
    pub fn empty_report(&self, started: jiff::Timestamp, secs: f64, error: Failure) -> SweepReport {
        SweepReport {
            started_at: started.to_string(),
            duration_seconds: secs,
            dry_run: self.dry_run,
            action: self.action_name(),
            replicas: vec![],
            actions: vec![],
            notes: vec![],
            refused: vec![],
            summary: Summary {
                error: Some(error),
                exit_code: exit::REPLICA_FAILED,
                ..Default::default()
            },
        }
    }
}
