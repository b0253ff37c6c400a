//! The flags that say which replicas and how to reach them, shared by `sweep` and `inspect`
//! (and the tuning `run` and `controller` share too), as parts of the one policy input.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::duration::parse_duration;
use crate::policy::{AuthInput, PolicyInput, PrometheusInput, SecretRef};
use crate::prepare::Timeouts;
use crate::tuning::Tuning;

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
    /// DELETEs in flight at once per replica, for all policies together.
    #[arg(long, env = "PGW_JANITOR_DELETE_CONCURRENCY", default_value_t = 16)]
    pub delete_concurrency: usize,
    /// The most DELETEs per second per replica, for all policies together. The pace adapts
    /// below it: it rises while DELETE latency stays flat and `/-/healthy` answers quickly, and
    /// halves on a 5xx, a full write queue or rising latency.
    #[arg(long, env = "PGW_JANITOR_DELETE_RATE", default_value_t = 50_000.0)]
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

impl ReplicaArgs {
    /// The flags' source, as the one input takes it; `check` says what is wrong with it.
    pub fn fill(&self, input: &mut PolicyInput) {
        input.prometheus = self.prometheus.as_ref().map(|url| PrometheusInput {
            url: url.clone(),
            job: self.job.clone().unwrap_or_default(),
            up: self.discovery == DiscoveryArg::Up,
            allowed_hosts: self.allow_replica_host.clone(),
            allowed_cidrs: self.allow_replica_cidr.clone(),
            allowed_regex: self.allow_replica_regex.clone(),
            scheme: self.gateway_scheme.clone(),
            path_prefix: self.gateway_path_prefix.clone(),
        });
        input.static_urls = (!self.gateway.is_empty()).then(|| self.gateway.clone());
    }
}

impl PrometheusAuthArgs {
    pub fn input(&self) -> AuthInput {
        auth_input(
            &self.prometheus_basic_user,
            [
                &self.prometheus_password_file,
                &self.prometheus_bearer_token_file,
                &self.prometheus_ca_file,
                &self.prometheus_cert_file,
                &self.prometheus_key_file,
            ],
        )
    }
}

impl GatewayAuthArgs {
    pub fn input(&self) -> AuthInput {
        auth_input(
            &self.gateway_basic_user,
            [
                &self.gateway_password_file,
                &self.gateway_bearer_token_file,
                &self.gateway_ca_file,
                &self.gateway_cert_file,
                &self.gateway_key_file,
            ],
        )
    }
}

/// `[password, bearer token, CA, certificate, key]` files as secret references.
fn auth_input(user: &Option<String>, files: [&Option<PathBuf>; 5]) -> AuthInput {
    let [password, token, ca, cert, key] = files.map(|f| f.clone().map(SecretRef::File));
    AuthInput {
        basic_user: user.clone(),
        basic_password: password,
        bearer_token: token,
        ca,
        client_certificate: cert,
        client_key: key,
    }
}

impl TuningArgs {
    pub fn timeouts(&self) -> Timeouts {
        Timeouts::new(self.request_timeout, self.prometheus_timeout)
    }
}
