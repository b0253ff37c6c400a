#![forbid(unsafe_code)]
//! The janitor's core: what it decides, with no IO. Policy fields and how each front door names
//! them, errors and exit codes, the model of a replica's groups, selectors, durations, schedules,
//! the planner, the guard and the report's data. It knows no tokio, reqwest or kube: the compiler
//! refuses an import from the gateway client, the engine or Kubernetes, which all build on it.

pub mod config;
pub mod duration;
pub mod error;
pub mod exit;
pub mod field;
pub mod guard;
pub mod model;
pub mod plan;
pub mod report;
pub mod schedule;
pub mod selector;
pub mod tuning;

pub use error::{Error, Result};
