//! The standalone front door: policy files in, one loop per policy, the same engine as `sweep`
//! and the controller. It decides nothing itself: `policy::check` turns a spec into a sweep,
//! `Cadence::due` says when, `sweep::run` does the work.

pub mod load;
pub mod reload;
mod serve;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cli::run::RunArgs;
use crate::cli::sweep::OutputFormat;
use crate::crd::PushgatewayRetentionSpec;
use crate::engine::{Access, Engine, Settings};
use crate::http::build_client;
use crate::metrics::{Metrics, PolicyLabels};
use crate::policy::{self, CheckedPolicy, SourceSpec};
use crate::report::{exit, SweepReport};
use crate::secrets::{self, DirSecrets};
use crate::sweep::{self, StartTimes, Tuning};
use crate::{Error, Result};

pub use load::{LoadedPolicy, Origin, Problem};

/// A policy ready to run.
#[derive(Debug, Clone)]
pub struct RunnablePolicy {
    pub origin: Origin,
    pub namespace: String,
    pub name: String,
    pub spec: PushgatewayRetentionSpec,
    pub checked: CheckedPolicy,
}

impl RunnablePolicy {
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

/// What every policy's sweeps share: where secrets are, how hard to press, where to count.
#[derive(Clone)]
pub struct Context {
    pub secrets: DirSecrets,
    pub prometheus_timeout: Duration,
    /// Bounds connecting only; each call is bounded by the tuning's request timeout.
    pub connect_timeout: Duration,
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
) -> Result<(Vec<RunnablePolicy>, Vec<Problem>)> {
    let loaded = load::load(path)?;
    for skipped in &loaded.skipped {
        tracing::warn!("{skipped}");
    }
    let mut problems = loaded.errors;
    let mut runnable = Vec::new();
    for p in loaded.policies {
        let checked = policy::check(&p.spec, floor, tuning).and_then(|c| match &c.source {
            // It can never run here, so it is refused up front instead of failing every sweep.
            SourceSpec::Service { name, .. } => Err(Error::config(
                "spec.service",
                format!(
                    "Service {name:?}: a service source needs a cluster; use prometheus or static without one"
                ),
            )),
            _ => Ok(c),
        });
        match checked {
            Ok(mut checked) => runnable.push(RunnablePolicy {
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
    policy: &RunnablePolicy,
    starts: &mut StartTimes,
) -> SweepReport {
    let sweep = &policy.checked.sweep;
    let report = match prepare(ctx, policy).await {
        Ok((gateway_http, replicas)) => {
            let mut report = sweep::run(&ctx.engine, sweep, &gateway_http, replicas).await;
            starts.observe(&mut report);
            ctx.metrics
                .record_sweep(&policy.labels(), &report, unix_now());
            report
        }
        Err(e) => {
            let report = sweep.failed_discovery(&e);
            if matches!(e, Error::Config { .. }) {
                // A missing or bad secret is the policy's fault, not the gateways'.
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

async fn prepare(
    ctx: &Context,
    policy: &RunnablePolicy,
) -> Result<(Access, crate::discover::Discovered)> {
    let prometheus_refs = policy
        .spec
        .prometheus
        .as_ref()
        .and_then(|p| p.auth.as_ref());
    let prometheus_auth =
        secrets::resolve(prometheus_refs, "spec.prometheus.auth", &ctx.secrets).await?;
    let gateway_auth = secrets::resolve(
        policy.spec.gateway_auth.as_ref(),
        "spec.gatewayAuth",
        &ctx.secrets,
    )
    .await?;
    let prometheus_http = build_client("prometheus", &prometheus_auth, ctx.connect_timeout)?;
    let gateway_http = ctx
        .engine
        .access("gateway", &gateway_auth, ctx.connect_timeout)?;
    let replicas = policy
        .checked
        .source
        .discover_without_cluster(&prometheus_http, ctx.prometheus_timeout)
        .await?;
    Ok((gateway_http, replicas))
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

fn log_summary(policy: &RunnablePolicy, report: &SweepReport) {
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
pub async fn main(args: &RunArgs) -> i32 {
    let tuning = args.engine_tuning();
    if let Err(e) = tuning.validate() {
        eprintln!("error: {e}");
        return exit::USAGE;
    }
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
        },
        prometheus_timeout: args.tuning.prometheus_timeout,
        connect_timeout: tuning.request_timeout.min(Duration::from_secs(10)),
        metrics,
        engine: Engine::new(Settings::from_tuning(&tuning)),
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
/// the worst exit code (0 < 1 < 3, as `sweep`).
async fn run_once(ctx: &Context, policies: &[RunnablePolicy], output: OutputFormat) -> i32 {
    // Once has no previous sweep: the reports give start times, never `restarted`.
    let reports = futures::future::join_all(
        policies
            .iter()
            .map(|p| async move { sweep_policy(ctx, p, &mut StartTimes::default()).await }),
    )
    .await;
    match output {
        OutputFormat::Table => {
            for (p, r) in policies.iter().zip(&reports) {
                println!("== {} ({})", p.id(), p.origin.file.display());
                print!("{}", r.to_table());
                println!();
            }
        }
        OutputFormat::Json => {
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
