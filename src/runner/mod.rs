//! The standalone front door: policy files in, one loop per policy, the same engine as `sweep`
//! and the controller. It decides nothing itself: `policy::check` turns a spec into a sweep,
//! `Cadence::due` says when, `sweep::run` does the work.

pub mod reload;
mod serve;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::crd::PushgatewayRetentionSpec;
use crate::engine::{Engine, Settings};
use crate::error::Fault;
use crate::metrics::{Metrics, PolicyLabels};
use crate::policy::{self, CheckedPolicy, SourceSpec};
use crate::prepare::{self, Timeouts};
use crate::report::{exit, SweepReport};
use crate::secrets::DirSecrets;
use crate::sweep::{self, StartTimes, Tuning};
use crate::Result;

/// How `run` runs, from its flags (`cli::run` makes it; the runner knows no flags).
#[derive(Debug, Clone)]
pub struct Options {
    pub policies: PathBuf,
    pub listen: SocketAddr,
    pub secrets_dir: Option<PathBuf>,
    /// Secrets under `DIR/<namespace>/`, each policy only its own namespace's.
    pub secrets_by_namespace: bool,
    /// The shortest TTL any policy gets, whatever its `minTtl` says.
    pub min_ttl: Duration,
    pub once: bool,
    pub output: Format,
    /// `ZERO`: no polling of the files.
    pub reload_check_interval: Duration,
    pub shutdown_timeout: Duration,
    pub tuning: Tuning,
    pub timeouts: Timeouts,
    /// The admin's allow-list of where policies' requests may go.
    pub egress: Arc<crate::http::Egress>,
}

/// How `--once` prints its reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

// Policy files are read below both `run` and `validate`: `policy::load`.
pub use crate::policy::load::{self, Origin, PolicyDoc, Problem};

/// A policy ready to run.
#[derive(Debug, Clone)]
pub struct CheckedDoc {
    pub origin: Origin,
    pub namespace: String,
    pub name: String,
    pub spec: PushgatewayRetentionSpec,
    pub checked: CheckedPolicy,
}

impl CheckedDoc {
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn labels(&self) -> PolicyLabels {
        PolicyLabels {
            namespace: self.namespace.clone(),
            policy: self.name.clone(),
        }
    }
}

/// What every policy's sweeps share: where secrets are, how long to wait, where to count.
#[derive(Clone)]
pub struct Context {
    pub secrets: DirSecrets,
    /// Each policy reads only `DIR/<its namespace>/<secret>/<key>`.
    pub secrets_by_namespace: bool,
    pub timeouts: Timeouts,
    pub metrics: Arc<Metrics>,
    /// One engine for every policy: shared reads and one delete budget per replica.
    pub engine: Engine,
}

/// The policies under `path`, checked: the runnable ones, and every problem (file, document,
/// field) with the ones that are not.
pub fn load_policies(
    path: &Path,
    floor: Duration,
    tuning: &Tuning,
) -> Result<(Vec<CheckedDoc>, Vec<Problem>)> {
    let loaded = load::load(path)?;
    for skipped in &loaded.skipped {
        tracing::warn!("{skipped}");
    }
    let mut problems = loaded.errors;
    let mut runnable = Vec::new();
    for p in loaded.policies {
        let checked = policy::check(&p.spec, floor, tuning).and_then(|c| match &c.source {
            // It can never run here, so it is refused up front instead of failing every sweep.
            SourceSpec::Service { name, .. } => Err(prepare::needs_cluster(name, c.door)),
            _ => Ok(c),
        });
        match checked {
            Ok(mut checked) => runnable.push(CheckedDoc {
                checked: {
                    checked.sweep.name = p.id();
                    checked
                },
                origin: p.origin,
                namespace: p.namespace,
                name: p.name,
                spec: p.spec,
            }),
            Err(e) => problems.push(Problem {
                file: p.origin.file.clone(),
                policy: Some(format!("{}/{}", p.namespace, p.name)),
                origin: Some(p.origin),
                message: e.to_string(),
            }),
        }
    }
    Ok((runnable, problems))
}

/// One sweep of one policy: credentials (read fresh, so a rotated Secret is picked up), clients,
/// replicas, then the engine. Never fails: a failure before the engine becomes the report.
/// `starts` is this policy's memory of its replicas' start times, so a restart is reported.
pub async fn sweep_policy(
    ctx: &Context,
    policy: &CheckedDoc,
    starts: &mut StartTimes,
) -> SweepReport {
    let sweep = &policy.checked.sweep;
    let secrets = ctx
        .secrets
        .for_namespace(&policy.namespace, ctx.secrets_by_namespace);
    let prepared = prepare::prepare(&ctx.engine, &policy.checked, &secrets, ctx.timeouts, None);
    let report = match prepared.await {
        Ok(prepared) => {
            let mut report =
                sweep::run(&ctx.engine, sweep, &prepared.gateway, prepared.found).await;
            starts.observe(&mut report);
            ctx.metrics
                .record_sweep(&policy.labels(), &report, unix_now());
            report
        }
        Err(e) => {
            let mut report = sweep.failed_discovery(&e);
            // Whose fault it is decides the exit code: a missing Secret is the user's, as the
            // same missing file is for `sweep`.
            report.summary.exit_code = e.exit_code();
            if e.fault() == Fault::Input {
                ctx.metrics.record_spec_invalid(&policy.labels());
            } else {
                ctx.metrics
                    .record_sweep(&policy.labels(), &report, unix_now());
            }
            report
        }
    };
    log_summary(policy, &report);
    report
}

/// Counts each refused policy (those whose document got as far as a name) as `spec_invalid`.
fn record_problems(metrics: &Metrics, problems: &[Problem]) {
    for problem in problems {
        if let Some((namespace, name)) = problem.policy.as_deref().and_then(|p| p.split_once('/')) {
            metrics.record_spec_invalid(&PolicyLabels {
                namespace: namespace.into(),
                policy: name.into(),
            });
        }
    }
}

fn unix_now() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

fn log_summary(policy: &CheckedDoc, report: &SweepReport) {
    let s = &report.summary;
    let id = policy.id();
    let acted = s.deleted + s.would_delete + s.repushed + s.unconfirmed + s.failed > 0;
    if s.exit_code == exit::OK && !acted {
        // Nothing to do: at 100 policies every 30s, an info line here is 200 lines a minute.
        tracing::debug!(policy = %id, replicas = s.replicas, "sweep done: nothing to do");
    } else if s.exit_code == exit::OK {
        tracing::info!(
            policy = %id,
            replicas = s.replicas,
            deleted = s.deleted,
            would_delete = s.would_delete,
            failed = s.failed,
            exit = s.exit_code,
            "sweep done"
        );
    } else {
        tracing::warn!(
            policy = %id,
            replicas = s.replicas,
            deleted = s.deleted,
            would_delete = s.would_delete,
            failed = s.failed,
            exit = s.exit_code,
            error = s.error.as_deref().unwrap_or(""),
            guard = s.guard.as_ref().map(|g| g.message.as_str()).unwrap_or(""),
            "sweep done with trouble"
        );
    }
}

/// One entry of `--once --output json`.
#[derive(Serialize)]
struct PolicyReport<'a> {
    namespace: &'a str,
    name: &'a str,
    report: &'a SweepReport,
}

/// `run` as a process: load, then once or forever. Returns the exit code.
pub async fn main(args: &Options) -> i32 {
    let tuning = args.tuning.clone();
    let metrics = Arc::new(Metrics::new());
    let (policies, problems) = match load_policies(&args.policies, args.min_ttl, &tuning) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    for problem in &problems {
        tracing::error!("invalid policy, not run: {problem}");
    }
    record_problems(&metrics, &problems);
    metrics.record_reload(problems.is_empty(), unix_now());
    if policies.is_empty() {
        eprintln!(
            "error: no valid PushgatewayRetention policy in {} ({} invalid)",
            args.policies.display(),
            problems.len()
        );
        return exit::USAGE;
    }
    let ctx = Context {
        secrets: DirSecrets {
            dir: args.secrets_dir.clone(),
            namespace: None,
        },
        secrets_by_namespace: args.secrets_by_namespace,
        timeouts: args.timeouts,
        metrics,
        engine: Engine::new(Settings {
            egress: args.egress.clone(),
            ..Settings::from_tuning(&tuning)
        }),
    };
    if args.once {
        let (active, suspended): (Vec<_>, Vec<_>) =
            policies.into_iter().partition(|p| !p.checked.suspend);
        for p in &suspended {
            tracing::info!(policy = %p.id(), origin = %p.origin, "suspended: not run");
        }
        let worst = run_once(&ctx, &active, args.output).await;
        // A CronJob must show a policy that was refused, even when the valid ones went well.
        if problems.is_empty() {
            worst
        } else {
            worst.max(exit::USAGE)
        }
    } else {
        serve::run_forever(ctx, reload::PolicySet::from_policies(policies), args).await
    }
}

/// Sweeps each policy once, all at the same time, prints the reports in file order and returns
/// the worst exit code (0 < 1 < 2 < 3, as `sweep`).
async fn run_once(ctx: &Context, policies: &[CheckedDoc], output: Format) -> i32 {
    // Once has no previous sweep: the reports give start times, never `restarted`.
    let reports = futures::future::join_all(
        policies
            .iter()
            .map(|p| async move { sweep_policy(ctx, p, &mut StartTimes::default()).await }),
    )
    .await;
    match output {
        Format::Table => {
            for (p, r) in policies.iter().zip(&reports) {
                println!("== {} ({})", p.id(), p.origin.file.display());
                print!("{}", r.to_table());
                println!();
            }
        }
        Format::Json => {
            let entries: Vec<PolicyReport<'_>> = policies
                .iter()
                .zip(&reports)
                .map(|(p, r)| PolicyReport {
                    namespace: &p.namespace,
                    name: &p.name,
                    report: r,
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&entries).expect("reports always serialise")
            );
        }
    }
    reports
        .iter()
        .map(|r| r.summary.exit_code)
        .max()
        .unwrap_or(exit::OK)
}

#[cfg(test)]
mod tests;
