#![forbid(unsafe_code)]
//! pushgateway-janitor: a TTL for the Prometheus Pushgateway.
//!
//! Data flows one way: discover replicas → read each replica → plan (pure) → guard → act → report.

pub mod cli;
pub mod controller;
pub mod crd;
pub mod discover;
pub mod engine;
pub mod error;
pub mod gateway;
pub mod http;
pub mod inspect;
pub mod k8s;
pub mod metrics;
pub mod policy;
pub mod prepare;
pub mod progress;
pub mod runner;
pub mod secrets;
pub mod server;
pub mod sweep;
pub mod telemetry;
pub mod validate;

#[cfg(test)]
mod layers_tests;

// The core's modules under their old paths: `crate::plan`, `pushgateway_janitor::model`, ...
pub use pushgateway_janitor_core::{
    config, duration, exit, field, guard, model, plan, report, schedule, selector, source, tuning,
};

pub use error::{Error, Result};
