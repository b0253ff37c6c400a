#![forbid(unsafe_code)]
//! pushgateway-janitor: a TTL for the Prometheus Pushgateway.
//!
//! Data flows one way: discover replicas → read each replica → plan (pure) → guard → act → report.

pub mod cli;
pub mod config;
pub mod controller;
pub mod crd;
pub mod discover;
pub mod duration;
pub mod engine;
pub mod error;
pub mod exit;
pub mod field;
pub mod gateway;
pub mod guard;
pub mod http;
pub mod inspect;
pub mod k8s;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod policy;
pub mod prepare;
pub mod progress;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod secrets;
pub mod selector;
pub mod server;
pub mod sweep;
pub mod telemetry;
pub mod tuning;
pub mod validate;

pub use error::{Error, Result};
