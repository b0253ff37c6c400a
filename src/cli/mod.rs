//! The command line: thin front doors over the engine.

pub mod controller;
pub mod crd;
pub mod inspect;
pub mod replicas;
pub mod run;
pub mod sweep;
pub mod validate;

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::duration::parse_duration;
use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "pushgateway-janitor",
    version,
    about = "Gives the Prometheus Pushgateway a TTL: finds every replica, deletes exactly the stale groups"
)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "plain",
        env = "PGW_JANITOR_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Log level, as an EnvFilter directive (`info`, `debug`, `pushgateway_janitor=debug,warn`).
    #[arg(
        long,
        global = true,
        default_value = "info",
        env = "PGW_JANITOR_LOG_LEVEL"
    )]
    pub log_level: String,
    /// No progress: neither the bar drawn on a terminal nor the progress log lines.
    #[arg(long, global = true, env = "PGW_JANITOR_QUIET")]
    pub quiet: bool,
    /// How often long work (many deletes, a big replica's read) logs its progress.
    #[arg(long, global = true, value_parser = parse_duration, default_value = "10s", env = "PGW_JANITOR_PROGRESS_INTERVAL")]
    pub progress_interval: Duration,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One run: find the replicas, read them all, decide, guard, act, report, exit.
    Sweep(Box<sweep::SweepArgs>),
    /// Enforce PushgatewayRetention policies from files, without a cluster: a loop per policy
    /// (or one sweep each with `--once`), with /livez, /readyz and /metrics.
    Run(Box<run::RunArgs>),
    /// Show every replica's groups per grouping key: where each is copied, each copy's age, its
    /// series, its last push, and what each policy would do with it. Read-only.
    Inspect(Box<inspect::InspectArgs>),
    /// Check PushgatewayRetention policy files offline (schema, CEL rules, the janitor's own
    /// checks): exit 0 when all are valid, 2 otherwise. No cluster, no network.
    Validate(validate::ValidateArgs),
    /// Print the PushgatewayRetention CustomResourceDefinition (YAML).
    Crd,
    /// Run the Kubernetes controller: sweep every PushgatewayRetention on its cadence.
    Controller(Box<controller::ControllerArgs>),
}

#[cfg(test)]
mod doors_tests;

/// The front doors sit on the engine, never the other way round: no module outside `cli` (and
/// the binary) may use it, so `cli` can never be half of an import cycle.
#[cfg(test)]
mod layering_tests {
    use std::path::Path;

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn nothing_outside_the_front_doors_imports_cli() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        assert!(files.len() > 20, "the walk finds the sources: {files:?}");
        let mut offenders = Vec::new();
        for file in files {
            let rel = file.strip_prefix(&src).unwrap();
            if rel.starts_with("cli") || rel == Path::new("main.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.contains("crate::cli") || line.contains("super::cli") {
                    offenders.push(format!("src/{}:{}: {}", rel.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "imports of cli outside src/cli: {offenders:#?}"
        );
    }
}
