//! `pushgateway-janitor sweep`: what a CronJob runs, and what replaces `pushgateway-wipe.sh`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::discover::{self, AllowList, Discovered, InstanceUrl, ViaPrometheus};
use crate::duration::parse_duration;
use crate::guard::Limits;
use crate::http::{build_client, HttpAuthFiles};
use crate::plan::{Action, Policy};
use crate::policy::SourceSpec;
use crate::report::{exit, SweepReport};
use crate::selector::Selector;
use crate::sweep::{self, Sweep, Tuning};
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
pub enum DiscoveryArg {
    /// The job's active scrape targets (Prometheus' targets API), at their scrape URLs; `up`
    /// series with no target behind them are refused.
    Targets,
    /// Only the `up{job=...}` query, for servers without a targets API; needs an allow-list.
    Up,
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

/// Which replicas: the flags `sweep` and `inspect` share.
#[derive(Debug, Args)]
pub struct ReplicaArgs {
    /// Prometheus base URL; the replicas are the targets of `up{job="<--job>"}`, whatever their `up`.
    #[arg(
        long,
        env = "PGW_JANITOR_PROMETHEUS",
        conflicts_with = "gateway",
        requires = "job",
        help_heading = "Replicas"
    )]
    pub prometheus: Option<String>,
    /// Prometheus scrape job whose targets are the gateway replicas.
    #[arg(
        long,
        env = "PGW_JANITOR_JOB",
        requires = "prometheus",
        help_heading = "Replicas"
    )]
    pub job: Option<String>,
    /// How Prometheus tells the replicas: its scrape targets, or (for Thanos Query, Mimir,
    /// VictoriaMetrics) only the `up` query, limited to the `--allow-replica-*` addresses.
    #[arg(
        long,
        value_enum,
        default_value = "targets",
        env = "PGW_JANITOR_DISCOVERY",
        requires = "prometheus",
        help_heading = "Replicas"
    )]
    pub discovery: DiscoveryArg,
    /// A host a replica may have, `host` or `host:port` (repeatable; comma-separated in the
    /// environment variable).
    #[arg(
        long,
        env = "PGW_JANITOR_ALLOW_REPLICA_HOST",
        value_delimiter = ',',
        requires = "prometheus",
        help_heading = "Replicas"
    )]
    pub allow_replica_host: Vec<String>,
    /// An IP range a replica's address may be in, e.g. `10.42.0.0/16` (repeatable).
    #[arg(
        long,
        env = "PGW_JANITOR_ALLOW_REPLICA_CIDR",
        value_delimiter = ',',
        requires = "prometheus",
        help_heading = "Replicas"
    )]
    pub allow_replica_cidr: Vec<String>,
    /// A regex a replica's `host:port` must match, anchored.
    #[arg(
        long,
        env = "PGW_JANITOR_ALLOW_REPLICA_REGEX",
        requires = "prometheus",
        help_heading = "Replicas"
    )]
    pub allow_replica_regex: Option<String>,
    /// With `--discovery up`: the scheme for turning an `instance` label into a gateway URL
    /// (scrape targets carry their own).
    #[arg(
        long,
        default_value = "http",
        env = "PGW_JANITOR_GATEWAY_SCHEME",
        help_heading = "Replicas"
    )]
    pub gateway_scheme: String,
    /// The gateways' `--web.route-prefix`, e.g. `/pushgateway`; by default taken from the scrape
    /// URL (its path before `metrics`).
    #[arg(
        long,
        default_value = "",
        env = "PGW_JANITOR_GATEWAY_PATH_PREFIX",
        help_heading = "Replicas"
    )]
    pub gateway_path_prefix: String,
    /// A gateway replica's base URL (repeatable; comma-separated in the environment variable).
    #[arg(
        long,
        env = "PGW_JANITOR_GATEWAYS",
        value_delimiter = ',',
        help_heading = "Replicas"
    )]
    pub gateway: Vec<String>,
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

#[derive(Debug, Args)]
#[command(next_help_heading = "Prometheus auth and TLS")]
pub struct PrometheusAuthArgs {
    #[arg(long, env = "PGW_JANITOR_PROMETHEUS_BASIC_USER")]
    pub prometheus_basic_user: Option<String>,
    /// File holding the basic auth password.
    #[arg(long, env = "PGW_JANITOR_PROMETHEUS_PASSWORD_FILE")]
    pub prometheus_password_file: Option<PathBuf>,
    /// File holding a bearer token.
    #[arg(long, env = "PGW_JANITOR_PROMETHEUS_BEARER_TOKEN_FILE")]
    pub prometheus_bearer_token_file: Option<PathBuf>,
    /// PEM file of CAs to trust.
    #[arg(long, env = "PGW_JANITOR_PROMETHEUS_CA_FILE")]
    pub prometheus_ca_file: Option<PathBuf>,
    /// PEM client certificate.
    #[arg(long, env = "PGW_JANITOR_PROMETHEUS_CERT_FILE")]
    pub prometheus_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, env = "PGW_JANITOR_PROMETHEUS_KEY_FILE")]
    pub prometheus_key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Gateway auth and TLS")]
pub struct GatewayAuthArgs {
    #[arg(long, env = "PGW_JANITOR_GATEWAY_BASIC_USER")]
    pub gateway_basic_user: Option<String>,
    /// File holding the basic auth password.
    #[arg(long, env = "PGW_JANITOR_GATEWAY_PASSWORD_FILE")]
    pub gateway_password_file: Option<PathBuf>,
    /// File holding a bearer token.
    #[arg(long, env = "PGW_JANITOR_GATEWAY_BEARER_TOKEN_FILE")]
    pub gateway_bearer_token_file: Option<PathBuf>,
    /// PEM file of CAs to trust.
    #[arg(long, env = "PGW_JANITOR_GATEWAY_CA_FILE")]
    pub gateway_ca_file: Option<PathBuf>,
    /// PEM client certificate.
    #[arg(long, env = "PGW_JANITOR_GATEWAY_CERT_FILE")]
    pub gateway_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, env = "PGW_JANITOR_GATEWAY_KEY_FILE")]
    pub gateway_key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Tuning")]
pub struct TuningArgs {
    /// Replicas read at once.
    #[arg(long, env = "PGW_JANITOR_READ_CONCURRENCY", default_value_t = 8)]
    pub read_concurrency: usize,
    /// Bound on each call to a replica, a whole streamed read included.
    #[arg(long, env = "PGW_JANITOR_REQUEST_TIMEOUT", value_parser = parse_duration, default_value = "60s")]
    pub request_timeout: Duration,
    /// Bound on the query to Prometheus.
    #[arg(long, env = "PGW_JANITOR_PROMETHEUS_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub prometheus_timeout: Duration,
    /// DELETEs in flight at once per replica.
    #[arg(long, env = "PGW_JANITOR_DELETE_CONCURRENCY", default_value_t = 4)]
    pub delete_concurrency: usize,
    /// DELETEs per second per replica.
    #[arg(long, env = "PGW_JANITOR_DELETE_RATE", default_value_t = 200.0)]
    pub delete_rate: f64,
    /// Re-read a replica and re-plan before deleting when the plan is older than this.
    #[arg(long, env = "PGW_JANITOR_REPLAN_AFTER", value_parser = parse_duration, default_value = "30s")]
    pub replan_after: Duration,
    /// How long to keep re-reading a replica to confirm its deletes.
    #[arg(long, env = "PGW_JANITOR_CONFIRM_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub confirm_timeout: Duration,
    /// How long to back off while a replica's write queue is full before giving up on it.
    #[arg(long, env = "PGW_JANITOR_UNHEALTHY_WAIT", value_parser = parse_duration, default_value = "60s")]
    pub unhealthy_wait: Duration,
}

impl TuningArgs {
    /// The engine's tuning: the one conversion every front door uses.
    pub fn to_tuning(&self) -> Tuning {
        Tuning {
            read_concurrency: self.read_concurrency,
            request_timeout: self.request_timeout,
            delete_concurrency: self.delete_concurrency,
            delete_rate: self.delete_rate,
            replan_after: self.replan_after,
            confirm_timeout: self.confirm_timeout,
            unhealthy_wait: self.unhealthy_wait,
        }
    }
}

/// The replicas and the clients to reach them, checked: building it touches nothing remote.
pub struct ReplicaAccess {
    pub source: SourceSpec,
    pub prometheus_http: reqwest::Client,
    pub gateway_http: reqwest::Client,
    pub prometheus_timeout: Duration,
}

/// Everything `sweep` needs, checked: building it touches nothing remote.
pub struct SweepPlan {
    pub sweep: Sweep,
    pub access: ReplicaAccess,
}

impl ReplicaArgs {
    /// Where the replicas are, checked.
    pub fn source(&self) -> Result<SourceSpec> {
        Ok(match (&self.prometheus, self.gateway.is_empty()) {
            (Some(url), true) => {
                let job = self.job.clone().unwrap_or_default();
                if job.is_empty() {
                    return Err(Error::config("--job", "must not be empty"));
                }
                let instance_url = InstanceUrl {
                    scheme: self.gateway_scheme.clone(),
                    path_prefix: self.gateway_path_prefix.clone(),
                };
                instance_url.validate()?;
                let allow = AllowList::new(
                    &self.allow_replica_host,
                    &self.allow_replica_cidr,
                    self.allow_replica_regex.as_deref(),
                    |list, _| match list {
                        "hosts" => "--allow-replica-host".into(),
                        "cidrs" => "--allow-replica-cidr".into(),
                        _ => "--allow-replica-regex".into(),
                    },
                )?;
                let mode = match self.discovery {
                    DiscoveryArg::Targets => discover::Mode::Targets,
                    DiscoveryArg::Up if allow.is_empty() => {
                        return Err(Error::config(
                            "--discovery up",
                            "needs --allow-replica-host, --allow-replica-cidr or \
                             --allow-replica-regex: a pushed up sample can name any host",
                        ))
                    }
                    DiscoveryArg::Up => discover::Mode::Up,
                };
                SourceSpec::Prometheus(ViaPrometheus {
                    url: discover::parse_base_url("--prometheus", url)?,
                    job,
                    mode,
                    instance_url,
                    allow,
                })
            }
            (None, false) => SourceSpec::Static(
                self.gateway
                    .iter()
                    .map(|g| discover::parse_base_url("--gateway", g))
                    .collect::<Result<_>>()?,
            ),
            (Some(_), false) => {
                return Err(Error::config(
                    "--prometheus",
                    "cannot be combined with --gateway",
                ))
            }
            (None, true) => {
                return Err(Error::config(
                    "replicas",
                    "give --prometheus URL --job NAME, or --gateway URL (repeatable)",
                ))
            }
        })
    }

    /// The source and its clients, with the auth and tuning flags.
    pub fn access(
        &self,
        p: &PrometheusAuthArgs,
        g: &GatewayAuthArgs,
        t: &TuningArgs,
    ) -> Result<ReplicaAccess> {
        ReplicaAccess::new(self.source()?, p, g, t)
    }
}

impl ReplicaAccess {
    /// `source` with clients built from the auth and tuning flags.
    pub fn new(
        source: SourceSpec,
        p: &PrometheusAuthArgs,
        g: &GatewayAuthArgs,
        t: &TuningArgs,
    ) -> Result<ReplicaAccess> {
        let prometheus_auth = HttpAuthFiles {
            basic_user: p.prometheus_basic_user.clone(),
            basic_password_file: p.prometheus_password_file.clone(),
            bearer_token_file: p.prometheus_bearer_token_file.clone(),
            ca_file: p.prometheus_ca_file.clone(),
            cert_file: p.prometheus_cert_file.clone(),
            key_file: p.prometheus_key_file.clone(),
        }
        .load("prometheus")?;
        let gateway_auth = HttpAuthFiles {
            basic_user: g.gateway_basic_user.clone(),
            basic_password_file: g.gateway_password_file.clone(),
            bearer_token_file: g.gateway_bearer_token_file.clone(),
            ca_file: g.gateway_ca_file.clone(),
            cert_file: g.gateway_cert_file.clone(),
            key_file: g.gateway_key_file.clone(),
        }
        .load("gateway")?;
        let connect = t.request_timeout.min(Duration::from_secs(10));
        Ok(ReplicaAccess {
            source,
            prometheus_http: build_client("prometheus", &prometheus_auth, connect)?,
            gateway_http: build_client("gateway", &gateway_auth, connect)?,
            prometheus_timeout: t.prometheus_timeout,
        })
    }
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

impl ReplicaAccess {
    pub async fn discover(&self) -> Result<Discovered> {
        self.source
            .discover_without_cluster(&self.prometheus_http, self.prometheus_timeout)
            .await
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
                sweep::run(&self.sweep, &self.access.gateway_http, found).await
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
