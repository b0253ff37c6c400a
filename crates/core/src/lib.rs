#![forbid(unsafe_code)]
//! The janitor's core: what it decides, with no IO. Policy fields and how each front door names
//! them, errors and exit codes, the model of a replica's groups, selectors, durations, schedules,
//! where a policy's replicas are, the planner, the guard, a sweep's configuration and the
//! report's data. It knows no tokio, reqwest or kube: the compiler refuses an import from the
//! gateway client, the engine or Kubernetes, which all build on it.

pub mod config;
pub mod duration;
pub mod error;
pub mod exit;
pub mod field;
pub mod guard;
pub mod model;
pub mod plan;
pub mod policy;
pub mod report;
pub mod schedule;
pub mod selector;
pub mod source;
pub mod tuning;

pub use error::{Error, Result};
