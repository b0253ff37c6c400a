//! What a sweep is given: one policy's whole configuration, checked, and the permit its front
//! door holds. Below the policy checker (which builds it) and the sweep (which runs it).

mod permit;

pub use permit::{Permit, NOT_ATTEMPTED};

use crate::guard::Limits;
use crate::plan::Rules;
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
