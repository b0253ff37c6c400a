//! The flags that say which replicas and how to reach them, shared by `sweep` and `inspect`
//! (and the tuning `run` shares too), and the clients they make.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::discover::{self, AllowList, Discovered, InstanceUrl, ViaPrometheus};
use crate::duration::parse_duration;
use crate::http::{build_client, HttpAuthFiles};
use crate::policy::SourceSpec;
use crate::sweep::Tuning;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiscoveryArg {
    /// The job's active scrape targets (Prometheus' targets API), at their scrape URLs; `up`
    /// series with no target behind them are refused.
    Targets,
    /// Only the `up{job=...}` query, for servers without a targets API; needs an allow-list.
    Up,
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

impl ReplicaAccess {
    pub async fn discover(&self) -> Result<Discovered> {
        self.source
            .discover_without_cluster(&self.prometheus_http, self.prometheus_timeout)
            .await
    }
}
