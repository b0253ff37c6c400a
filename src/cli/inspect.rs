//! `pushgateway-janitor inspect`: a look at every replica, read-only. The same replica flags as
//! `sweep`; policies from `--policies PATH` or from `sweep`'s policy flags.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;

use crate::cli::sweep::{
    ActionArg, GatewayAuthArgs, OutputFormat, PolicyArgs, PrometheusAuthArgs, ReplicaAccess,
    ReplicaArgs, TuningArgs,
};
use crate::inspect::{self, Inspection, NamedPolicy, SortBy};
use crate::report::exit;
use crate::{Error, Result};

#[derive(Debug, Args)]
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
    /// The policies to ask, checked.
    fn named_policies(&self) -> Result<Vec<NamedPolicy>> {
        if let Some(path) = &self.policies {
            // The same loader and checker as `run`, but a `service` source is fine here: the
            // replicas come from the flags, the policy only says what it would do.
            let tuning = self.tuning.to_tuning();
            let loaded = crate::runner::load::load(path)?;
            let mut problems: Vec<String> = loaded.errors.iter().map(|p| p.to_string()).collect();
            let mut named = Vec::new();
            for p in loaded.policies {
                match crate::policy::check(&p.spec, self.policy.min_ttl, &tuning) {
                    Ok(checked) => named.push(NamedPolicy {
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
        if self.policy.ttl.is_some() || self.policy.action == ActionArg::Wipe {
            let policy = self.policy.to_policy()?;
            policy.validate()?;
            return Ok(vec![NamedPolicy {
                name: "flags".into(),
                policy,
            }]);
        }
        Ok(vec![])
    }
}

/// The one declared-TTL gauge the policies read: a replica is read once, with one.
fn ttl_metric(policies: &[NamedPolicy]) -> Result<Option<String>> {
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
/// 2 for bad flags or policies.
pub async fn main(args: &InspectArgs) -> i32 {
    let prepared = args.named_policies().and_then(|policies| {
        let metric = ttl_metric(&policies)?;
        let access =
            args.replicas
                .access(&args.prometheus_auth, &args.gateway_auth, &args.tuning)?;
        let tuning = args.tuning.to_tuning();
        tuning.validate()?;
        Ok((policies, metric, access, tuning))
    });
    let (policies, metric, access, tuning): (Vec<NamedPolicy>, Option<String>, ReplicaAccess, _) =
        match prepared {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        };
    let mut inspection = match access.discover().await {
        Ok(found) => {
            inspect::inspect(
                &access.gateway_http,
                &tuning,
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
