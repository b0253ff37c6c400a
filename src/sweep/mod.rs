//! A sweep: read every replica, plan, guard, act, report, for one policy's [`SweepConfig`], on
//! the shared [`Engine`] (which owns the replicas and their IO). The three front doors (the
//! one-shot CLI, the policy-file loop, the controller) all run this and decide nothing themselves.

mod act;
mod acted;
mod confirm;
mod delete;
mod flow;
mod remote;
mod replan;
mod restarts;
mod tally;
mod wipe;

#[cfg(test)]
mod act_tests;
#[cfg(test)]
mod confirm_tests;
#[cfg(test)]
mod delete_tests;
#[cfg(test)]
mod fake;
#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod replan_tests;
#[cfg(test)]
mod wipe_tests;

pub use crate::config::{Permit, SweepConfig, NOT_ATTEMPTED};
pub use crate::tuning::Tuning;
pub use flow::run;
pub use restarts::StartTimes;

pub(crate) use crate::engine::{plan_inputs, Read};
