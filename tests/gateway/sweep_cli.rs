//! The `sweep` command end to end against real Pushgateway replicas (Debian's
//! `prometheus-pushgateway`) and a real Prometheus, started on loopback ports by the harness.
//!
//! Ages: the gateway stamps `push_time_seconds` with its own clock and nothing can backdate it, so
//! these tests use TTLs of a few seconds (with `--min-ttl 1s`) and sleep past them. Every run goes
//! through the shared bounded `common::sweep_json`; what each module proves is said at its top.

use crate::common;

use serde_json::Value;

/// One bounded `sweep --output json` run: exit code, report, stderr.
fn run(args: &[&str]) -> (i32, Value, String) {
    common::sweep_json(args)
}

/// Each action of a report as `(labels, reason, outcome)`.
fn outcomes(report: &Value) -> Vec<(String, String, String)> {
    report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"].to_string(),
                a["reason"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

mod deletes;
mod replicas;
mod report;
