//! `pushgateway-janitor sweep`: what a CronJob runs, and what replaces `pushgateway-wipe.sh`.

use std::time::Duration;

use clap::{Args, ValueEnum};

pub use crate::cli::replicas::{
    DiscoveryArg, GatewayAuthArgs, PrometheusAuthArgs, ReplicaAccess, ReplicaArgs, TuningArgs,
};
use crate::discover::Discovered;
use crate::duration::parse_duration;
use crate::engine::{Engine, Settings};
use crate::guard::Limits;
use crate::plan::{Action, Policy};
use crate::report::{exit, SweepReport};
use crate::selector::Selector;
use crate::sweep::{self, Sweep};
use crate::{Error, Result};

/// A TTL so long it never expires anything: used by a plain wipe, which needs no TTL.
const NO_TTL: Duration = Duration::from_secs(100 * 365 * 86_400);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionArg {
    /// Delete the stale groups.
    Delete,
    /// Wipe each replica (admin API when on and no selector is given, else group by group).
    Wipe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub replicas: ReplicaArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Delete nothing; report what would go.
    #[arg(long, env = "PGW_JANITOR_DRY_RUN", help_heading = "Guards")]
    pub dry_run: bool,
    /// Abort before the first delete when the plan deletes more groups than this.
    #[arg(long, env = "PGW_JANITOR_MAX_DELETIONS", help_heading = "Guards")]
    pub max_deletions: Option<u64>,
    /// Abort before the first delete when the plan deletes more than this percent of the groups seen.
    #[arg(
        long,
        env = "PGW_JANITOR_MAX_DELETIONS_PERCENT",
        help_heading = "Guards"
    )]
    pub max_deletions_percent: Option<f64>,

    /// Report format on stdout.
    #[arg(
        long,
        env = "PGW_JANITOR_OUTPUT",
        value_enum,
        default_value = "table",
        help_heading = "Output"
    )]
    pub output: OutputFormat,

    #[command(flatten)]
    pub prometheus_auth: PrometheusAuthArgs,
    #[command(flatten)]
    pub gateway_auth: GatewayAuthArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
}

/// A policy given as flags: `sweep`'s, and `inspect`'s "what would it do".
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Delete groups older than this on their own replica's clock (`90s`, `1h30m`, `7d`).
    #[arg(long, env = "PGW_JANITOR_TTL", value_parser = parse_duration, help_heading = "Policy")]
    pub ttl: Option<Duration>,
    /// Only groups whose grouping labels match these Prometheus label matchers, e.g. `{job=~"nightly-.*"}`.
    #[arg(
        long,
        env = "PGW_JANITOR_SELECTOR",
        default_value = "",
        help_heading = "Policy"
    )]
    pub selector: Selector,
    /// A copy of a group is stale when another replica holds one pushed more than this later.
    #[arg(long, env = "PGW_JANITOR_SUPERSEDED_GRACE", value_parser = parse_duration, default_value = "1m", help_heading = "Policy")]
    pub superseded_grace: Duration,
    /// Never delete a copy for being superseded by a newer one on another replica.
    #[arg(
        long,
        env = "PGW_JANITOR_NO_SUPERSEDED",
        conflicts_with = "superseded_grace",
        help_heading = "Policy"
    )]
    pub no_superseded: bool,
    /// A gauge a pusher may put in its group to declare its own TTL in seconds.
    #[arg(long, env = "PGW_JANITOR_TTL_FROM_METRIC", help_heading = "Policy")]
    pub ttl_from_metric: Option<String>,
    /// The shortest TTL accepted, from flags or declared by a pusher.
    #[arg(long, env = "PGW_JANITOR_MIN_TTL", value_parser = parse_duration, default_value = "1m", help_heading = "Policy")]
    pub min_ttl: Duration,
    /// The longest TTL a pusher may declare.
    #[arg(long, env = "PGW_JANITOR_MAX_TTL", value_parser = parse_duration, help_heading = "Policy")]
    pub max_ttl: Option<Duration>,
    /// What to do.
    #[arg(
        long,
        env = "PGW_JANITOR_ACTION",
        value_enum,
        default_value = "delete",
        help_heading = "Policy"
    )]
    pub action: ActionArg,
    /// With `--action wipe`: wipe a replica only when every selected group on it is stale.
    #[arg(long, env = "PGW_JANITOR_ONLY_IF_ALL_STALE", help_heading = "Policy")]
    pub only_if_all_stale: bool,
}

/// Everything `sweep` needs, checked: building it touches nothing remote.
pub struct SweepPlan {
    pub sweep: Sweep,
    pub access: ReplicaAccess,
}

impl PolicyArgs {
    /// The policy the flags give, checked.
    pub fn to_policy(&self) -> Result<Policy> {
        let action = match self.action {
            ActionArg::Delete => {
                if self.only_if_all_stale {
                    return Err(Error::config(
                        "--only-if-all-stale",
                        "goes with --action wipe",
                    ));
                }
                Action::DeleteGroups
            }
            ActionArg::Wipe => Action::Wipe {
                only_if_all_stale: self.only_if_all_stale,
            },
        };
        let ttl =
            match (self.action, self.only_if_all_stale, self.ttl) {
                (ActionArg::Delete, _, None) => {
                    return Err(Error::config("--ttl", "is required with --action delete"))
                }
                (ActionArg::Wipe, true, None) => {
                    return Err(Error::config(
                        "--ttl",
                        "is required with --only-if-all-stale",
                    ))
                }
                (ActionArg::Wipe, false, Some(_)) => return Err(Error::config(
                    "--ttl",
                    "has no effect with a plain --action wipe; add --only-if-all-stale or drop it",
                )),
                (_, _, Some(ttl)) => ttl,
                (ActionArg::Wipe, false, None) => NO_TTL,
            };
        if self.max_ttl.is_some() && self.ttl_from_metric.is_none() {
            return Err(Error::config(
                "--max-ttl",
                "only bounds --ttl-from-metric, which is not set",
            ));
        }
        Ok(Policy {
            ttl,
            selector: self.selector.clone(),
            superseded_grace: (!self.no_superseded).then_some(self.superseded_grace),
            ttl_from_metric: self.ttl_from_metric.clone(),
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            action,
        })
    }
}

impl SweepArgs {
    /// Turns flags into a validated configuration, or says what is wrong and where.
    pub fn build(&self) -> Result<SweepPlan> {
        // Replicas first, then the policy: the order the errors came in before the split.
        let source = self.replicas.source()?;
        let policy = self.policy.to_policy()?;
        let t = &self.tuning;
        let sweep = Sweep {
            name: "cli".into(),
            policy,
            limits: Limits {
                max_deletions: self.max_deletions,
                max_deletions_percent: self.max_deletions_percent,
            },
            dry_run: self.dry_run,
            tuning: t.to_tuning(),
            permit: Default::default(),
        };
        sweep.validate()?;
        let access = ReplicaAccess::new(
            source,
            &self.prometheus_auth,
            &self.gateway_auth,
            &self.tuning,
        )?;
        Ok(SweepPlan { sweep, access })
    }
}

impl SweepPlan {
    pub async fn discover(&self) -> Result<Discovered> {
        self.access.discover().await
    }

    pub async fn run(&self) -> SweepReport {
        match self.discover().await {
            Ok(found) => {
                tracing::debug!(
                    replicas = found.replicas.len(),
                    refused = found.refused.len(),
                    "replicas found"
                );
                let engine = Engine::new(Settings::from_tuning(&self.sweep.tuning));
                let access = engine.private_access(self.access.gateway_http.clone());
                sweep::run(&engine, &self.sweep, &access, found).await
            }
            Err(e) => {
                tracing::error!(error = %e, "discovery failed");
                self.sweep.failed_discovery(&e)
            }
        }
    }
}

/// Runs `sweep` and returns the process exit code.
pub async fn main(args: &SweepArgs) -> i32 {
    let plan = match args.build() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let report = plan.run().await;
    match args.output {
        OutputFormat::Table => print!("{}", report.to_table()),
        OutputFormat::Json => println!("{}", report.to_json()),
    }
    report.summary.exit_code
}
