//! `pushgateway-janitor sweep`: what a CronJob runs, and what replaces `pushgateway-wipe.sh`.

use std::time::Duration;

use clap::{Args, ValueEnum};

pub use crate::cli::replicas::{
    DiscoveryArg, GatewayAuthArgs, PrometheusAuthArgs, ReplicaArgs, TuningArgs,
};
use crate::duration::parse_duration;
use crate::engine::{Engine, Settings};
use crate::policy::{CheckedPolicy, PolicyInput};
use crate::prepare::{self, Timeouts};
use crate::report::SweepReport;
use crate::secrets::FileSecrets;
use crate::selector::Selector;
use crate::sweep;
use crate::Result;

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

impl PolicyArgs {
    /// The policy flags into the one input; `check` says what is wrong with them.
    pub fn fill(&self, input: &mut PolicyInput) {
        input.ttl = self.ttl;
        input.min_ttl = self.min_ttl;
        input.selector = self.selector.clone();
        input.superseded_grace = (!self.no_superseded).then_some(self.superseded_grace);
        input.ttl_from_metric = self.ttl_from_metric.clone();
        input.max_ttl = self.max_ttl;
        input.wipe = self.action == ActionArg::Wipe;
        input.only_if_all_stale = self.only_if_all_stale;
    }
}

impl SweepArgs {
    /// The flags as the one policy input (the same a spec becomes).
    pub fn input(&self) -> PolicyInput {
        let mut input = PolicyInput {
            max_deletions: self.max_deletions.map(|n| n.min(i64::MAX as u64) as i64),
            max_deletions_percent: self.max_deletions_percent,
            dry_run: self.dry_run,
            prometheus_auth: self.prometheus_auth.input(),
            gateway_auth: self.gateway_auth.input(),
            tuning: self.tuning.to_tuning(),
            ..PolicyInput::flags()
        };
        self.replicas.fill(&mut input);
        self.policy.fill(&mut input);
        input
    }

    /// Turns flags into a checked policy, or says what is wrong and where. Touches nothing.
    pub fn build(&self) -> Result<CheckedPolicy> {
        let mut checked = self.input().check()?;
        checked.sweep.name = "cli".into();
        Ok(checked)
    }
}

/// One sweep: credentials from the files named, replicas, the engine. A failure to find the
/// replicas is the report; bad credentials are the user's error.
pub async fn run(checked: &CheckedPolicy, timeouts: Timeouts) -> Result<SweepReport> {
    // One sweep: nothing to share with, but the same engine the long-running doors use.
    let engine = Engine::new(Settings::from_tuning(&checked.sweep.tuning));
    let clients = prepare::clients(&engine, checked, &FileSecrets, timeouts).await?;
    Ok(
        match prepare::replicas(checked, &clients, timeouts, None).await {
            Ok(found) => {
                tracing::debug!(
                    replicas = found.replicas.len(),
                    refused = found.refused.len(),
                    "replicas found"
                );
                sweep::run(&engine, &checked.sweep, &clients.gateway, found).await
            }
            Err(e) => {
                tracing::error!(error = %e, "discovery failed");
                checked.sweep.failed_discovery(&e)
            }
        },
    )
}

/// Runs `sweep` and returns the process exit code.
pub async fn main(args: &SweepArgs) -> i32 {
    let report = match args.build() {
        Ok(checked) => run(&checked, args.tuning.timeouts()).await,
        Err(e) => Err(e),
    };
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    match args.output {
        OutputFormat::Table => print!("{}", report.to_table()),
        OutputFormat::Json => println!("{}", report.to_json()),
    }
    report.summary.exit_code
}
