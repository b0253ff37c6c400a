//! The one way into the engine: every front door turns what its user wrote (`sweep`'s flags, a
//! `PushgatewayRetention` spec) into one [`PolicyInput`], and [`PolicyInput::check`] turns that
//! into a [`CheckedPolicy`] that every later step takes (Stackable's `validate.rs` →
//! `ValidatedCluster`). The same bad input through either door fails the same way, on the same
//! [`Field`], named in that door's words (`--ttl`, `spec.ttl`).
//!
//! The path a policy takes, in order:
//!
//! 1. [`load::PolicyDoc`]: one document of a policy file, parsed, not checked (`run`,
//!    `validate`); the controller has the `PushgatewayRetention` itself, and `sweep` its flags.
//! 2. [`PolicyInput`]: what a front door received, durations and the selector parsed.
//! 3. [`CheckedPolicy`]: every rule met. It holds the sweep's [`SweepConfig`], whose
//!    [`Rules`](crate::plan::Rules) are what the planner applies, and where the replicas are.
//! 4. `runner::CheckedDoc`: the policy-file loop keeps a document with its checked policy, to
//!    tell on a reload what changed. `inspect` shows one policy's `plan::Rules` by name
//!    (`inspect::NamedRules`).
//! 5. `sweep::run` takes the `SweepConfig`.

pub mod load;
mod spec;
#[cfg(test)]
pub(crate) mod tests;

use std::time::Duration;

pub use crate::field::{AuthPart, Door, Field, FieldName, Remote};
// The input, the checked policy and the one checker are the core's; the spec door, the policy
// files and the doors' own words are here.
pub use pushgateway_janitor_core::policy::{
    AuthInput, CadenceInput, CheckedPolicy, PolicyInput, PrometheusInput, SecretRef, ServiceInput,
    SourceSpec, NO_TTL,
};
pub use spec::from_spec;

use crate::crd::PushgatewayRetentionSpec;
use crate::tuning::Tuning;
use crate::Result;

/// Checks a spec: the spec door of [`PolicyInput::check`]. `floor` is the front door's own
/// minimum TTL, which no policy goes under.
pub fn check(
    spec: &PushgatewayRetentionSpec,
    floor: Duration,
    tuning: &Tuning,
) -> Result<CheckedPolicy> {
    Ok(from_spec(spec, floor, tuning)?.check()?)
}
