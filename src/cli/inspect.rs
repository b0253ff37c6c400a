//! `pushgateway-janitor inspect`: a look at every replica, read-only. The same replica flags as
//! `sweep`; policies from `--policies PATH` or from `sweep`'s policy flags.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;

use crate::cli::sweep::{
    ActionArg, GatewayAuthArgs, OutputFormat, PolicyArgs, PrometheusAuthArgs, ReplicaArgs,
    TuningArgs,
};
use crate::engine::{Engine, Settings};
use crate::inspect::{self, Inspection, NamedRules, SortBy};
use crate::policy::{CheckedPolicy, PolicyInput};
use crate::prepare;
use crate::secrets::FileSecrets;
use crate::{Error, Result};

#[derive(Debug, Args)]
#[command(
    after_help = "Reads each replica's JSON API (GET /api/v1/metrics), which alone counts \
    each group's series and gives every key exactly; the gateway builds that answer whole in \
    memory (about twice its resting RSS on a big store). Sweeps, `run` and the controller read the \
    lighter GET /metrics instead."
)]
pub struct InspectArgs {
    #[command(flatten)]
    pub replicas: ReplicaArgs,
    /// Show what these policies would do with each copy: a PushgatewayRetention YAML file, or a
    /// directory of them. Each is planned over the replicas inspected, whatever its own source.
    #[arg(long, conflicts_with_all = ["ttl", "action"], help_heading = "Policy")]
    pub policies: Option<PathBuf>,
    /// Or one policy as `sweep`'s flags (shown as `flags`), given with `--ttl` or `--action wipe`.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Order of the grouping keys.
    #[arg(long, value_enum, default_value = "age", help_heading = "Output")]
    pub sort: SortBy,
    /// Show at most this many grouping keys.
    #[arg(long, help_heading = "Output")]
    pub limit: Option<usize>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "table", help_heading = "Output")]
    pub output: OutputFormat,
    #[command(flatten)]
    pub prometheus_auth: PrometheusAuthArgs,
    #[command(flatten)]
    pub gateway_auth: GatewayAuthArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
}

impl InspectArgs {
    /// The flags as the one input: the replicas, their credentials, the policy flags.
    fn input(&self) -> PolicyInput {
        let mut input = PolicyInput {
            prometheus_auth: self.prometheus_auth.input(),
            gateway_auth: self.gateway_auth.input(),
            tuning: self.tuning.to_tuning(),
            ..PolicyInput::flags()
        };
        self.replicas.fill(&mut input);
        self.policy.fill(&mut input);
        input
    }

    /// Whether the flags give a policy to ask (`--ttl` or `--action wipe`).
    fn flag_policy(&self) -> bool {
        self.policy.ttl.is_some() || self.policy.action == ActionArg::Wipe
    }

    /// The replicas and credentials, checked, with the flags' policy if they give one.
    fn checked(&self) -> Result<CheckedPolicy> {
        let mut input = self.input();
        if !self.flag_policy() {
            // Only the source and the credentials are used: a plain wipe is the one policy
            // that needs no other field, so nothing the user did not give is refused.
            input.wipe = true;
            input.ttl = None;
        }
        Ok(input.check()?)
    }

    /// The policies to ask, checked.
    fn named_policies(&self, flags: &CheckedPolicy) -> Result<Vec<NamedRules>> {
        if let Some(path) = &self.policies {
            // The same loader and checker as `run`, but a `service` source is fine here: the
            // replicas come from the flags, the policy only says what it would do.
            let tuning = self.tuning.to_tuning();
            let loaded = crate::policy::load::load(path)?;
            let mut problems: Vec<String> = loaded.errors.iter().map(|p| p.to_string()).collect();
            let mut named = Vec::new();
            for p in loaded.policies {
                match crate::policy::check(&p.spec, self.policy.min_ttl, &tuning) {
                    Ok(checked) => named.push(NamedRules {
                        name: p.id(),
                        policy: checked.sweep.policy,
                    }),
                    Err(e) => problems.push(format!("{} policy {}: {e}", p.origin, p.id())),
                }
            }
            if let Some(first) = problems.first() {
                return Err(Error::config(
                    "--policies",
                    format!("{first} (and {} more problems)", problems.len() - 1),
                ));
            }
            return Ok(named);
        }
        if self.flag_policy() {
            return Ok(vec![NamedRules {
                name: "flags".into(),
                policy: flags.sweep.policy.clone(),
            }]);
        }
        Ok(vec![])
    }
}

/// The one declared-TTL gauge the policies read: a replica is read once, with one.
fn ttl_metric(policies: &[NamedRules]) -> Result<Option<String>> {
    let metrics: BTreeSet<&str> = policies
        .iter()
        .filter_map(|p| p.policy.ttl_from_metric.as_deref())
        .collect();
    match metrics.len() {
        0 => Ok(None),
        1 => Ok(metrics.first().map(|m| m.to_string())),
        _ => Err(Error::config(
            "--policies",
            format!(
                "the policies read different ttlFromMetric gauges ({}); a replica is read once, \
                 with one: inspect them separately",
                metrics.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// Runs `inspect` and returns the process exit code: 0, 1 when a replica (or discovery) failed,
/// 2 for bad flags, policies or credentials.
pub async fn main(args: &InspectArgs) -> i32 {
    let timeouts = args.tuning.timeouts();
    let engine = Engine::new(Settings::from_tuning(&args.tuning.to_tuning()));
    let prepared = async {
        let checked = args.checked()?;
        let policies = args.named_policies(&checked)?;
        let metric = ttl_metric(&policies)?;
        let clients = prepare::clients(&engine, &checked, &FileSecrets, timeouts).await?;
        Ok::<_, Error>((checked, policies, metric, clients))
    };
    let (checked, policies, metric, clients) = match prepared.await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    let mut inspection = match prepare::replicas(&checked, &clients, timeouts, None).await {
        Ok(found) => {
            inspect::inspect(
                &engine,
                &clients.gateway,
                &checked.sweep.tuning,
                found,
                &policies,
                metric.as_deref(),
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "discovery failed");
            Inspection::failed_discovery(&policies, e.to_string())
        }
    };
    inspection.arrange(args.sort, args.limit);
    match args.output {
        OutputFormat::Table => print!("{}", inspection.to_table()),
        OutputFormat::Json => println!("{}", inspection.to_json()),
    }
    inspection.summary.exit_code
}
