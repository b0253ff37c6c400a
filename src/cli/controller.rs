//! `pushgateway-janitor controller`: the Kubernetes controller for `PushgatewayRetention`s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::sweep::TuningArgs;
use crate::controller::{self, leader, LeaseOptions, Options, Settings, CONTROLLER_NAME};
use crate::duration::parse_duration;
use crate::http::{Egress, EgressInput};
use crate::policy::Door;
use crate::report::exit;
use crate::{Error, Result};

#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Address of the /livez, /readyz and /metrics server.
    #[arg(long, env = "PGW_JANITOR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Watch policies in this namespace only (repeatable; comma-separated in the environment
    /// variable). Default: all namespaces.
    #[arg(long, env = "PGW_JANITOR_NAMESPACE", value_delimiter = ',')]
    pub namespace: Vec<String>,
    /// The shortest TTL any policy gets, whatever its minTtl says.
    #[arg(long, env = "PGW_JANITOR_MIN_TTL", value_parser = parse_duration, default_value = "1m")]
    pub min_ttl: Duration,
    /// Sweep only while holding a Lease (for more than one replica).
    #[arg(
        long,
        env = "PGW_JANITOR_LEADER_ELECTION",
        help_heading = "Leader election"
    )]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(
        long,
        env = "PGW_JANITOR_LEASE_NAME",
        default_value = CONTROLLER_NAME,
        help_heading = "Leader election"
    )]
    pub lease_name: String,
    /// Namespace of the Lease. Default: $POD_NAMESPACE, else `default`.
    #[arg(
        long,
        env = "PGW_JANITOR_LEASE_NAMESPACE",
        help_heading = "Leader election"
    )]
    pub lease_namespace: Option<String>,
    /// How long the Lease holds without renewal: how soon another replica takes over from one
    /// that died.
    #[arg(long, env = "PGW_JANITOR_LEASE_DURATION", value_parser = parse_duration, default_value = "15s", help_heading = "Leader election")]
    pub lease_duration: Duration,
    /// On SIGTERM, how long sweeps in flight may take to finish before they are abandoned.
    #[arg(long, env = "PGW_JANITOR_SHUTDOWN_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub shutdown_timeout: Duration,
    /// First retry of a policy whose reconcile failed (discovery, credentials, the API); the
    /// wait doubles per failure in a row, up to --max-error-backoff.
    #[arg(long, env = "PGW_JANITOR_ERROR_BACKOFF", value_parser = parse_duration, default_value = "5s")]
    pub error_backoff: Duration,
    /// The longest wait between retries of a failing policy.
    #[arg(long, env = "PGW_JANITOR_MAX_ERROR_BACKOFF", value_parser = parse_duration, default_value = "5m")]
    pub max_error_backoff: Duration,
    /// Policies reconciled at once.
    #[arg(
        long,
        env = "PGW_JANITOR_MAX_CONCURRENT_RECONCILES",
        default_value_t = 4
    )]
    pub max_concurrent_reconciles: u16,
    #[command(flatten)]
    pub egress: EgressArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
}

/// The cluster admin's allow-list of where the janitor may connect, whatever a policy names.
/// With none of these set, everything is allowed except link-local addresses (169.254.0.0/16,
/// fe80::/10: cloud metadata) and loopback; in a shared cluster, set them.
#[derive(Debug, Clone, Args)]
pub struct EgressArgs {
    /// Addresses the janitor may connect to, as CIDRs (repeatable; comma-separated in the
    /// environment variable). Checked on the address connected to, after DNS resolution. A CIDR
    /// that covers link-local or loopback addresses admits them.
    #[arg(
        long = "allow-cidr",
        env = "PGW_JANITOR_ALLOW_CIDRS",
        value_delimiter = ',',
        help_heading = "Allowed targets"
    )]
    pub cidrs: Vec<String>,
    /// Host names the janitor may connect to, exactly (repeatable). Never to a link-local or
    /// loopback address, unless --allow-cidr covers it.
    #[arg(
        long = "allow-host",
        env = "PGW_JANITOR_ALLOW_HOSTS",
        value_delimiter = ',',
        help_heading = "Allowed targets"
    )]
    pub hosts: Vec<String>,
    /// Host names the janitor may connect to, as regexes matched against the whole name,
    /// case-insensitively (repeatable; comma-separated in the environment variable).
    #[arg(
        long = "allow-host-regex",
        env = "PGW_JANITOR_ALLOW_HOST_REGEXES",
        value_delimiter = ',',
        help_heading = "Allowed targets"
    )]
    pub host_patterns: Vec<String>,
    /// Namespaces whose policies may use a `service` source (repeatable). Default: all.
    #[arg(
        long = "allow-service-namespace",
        env = "PGW_JANITOR_ALLOW_SERVICE_NAMESPACES",
        value_delimiter = ',',
        help_heading = "Allowed targets"
    )]
    pub service_namespaces: Vec<String>,
}

impl EgressArgs {
    pub fn egress(&self) -> Result<Arc<Egress>> {
        Egress::new(&EgressInput {
            cidrs: self.cidrs.clone(),
            hosts: self.hosts.clone(),
            host_patterns: self.host_patterns.clone(),
            service_namespaces: self.service_namespaces.clone(),
        })
        .map(Arc::new)
    }
}

impl ControllerArgs {
    /// Turns flags into options, or says which flag is wrong.
    pub fn options(&self) -> Result<Options> {
        let tuning = self.tuning.to_tuning();
        tuning.validate().map_err(|e| e.at(Door::Flags))?;
        if self.max_concurrent_reconciles == 0 {
            return Err(Error::config(
                "--max-concurrent-reconciles",
                "must be greater than zero",
            ));
        }
        if self.error_backoff.is_zero() || self.max_error_backoff < self.error_backoff {
            return Err(Error::config(
                "--error-backoff",
                "must be greater than zero and at most --max-error-backoff",
            ));
        }
        if self.min_ttl.is_zero() {
            return Err(Error::config("--min-ttl", "must be greater than zero"));
        }
        let egress = self.egress.egress()?;
        let identity = leader::default_identity();
        let leader_election = self.leader_election.then(|| LeaseOptions {
            name: self.lease_name.clone(),
            namespace: self.lease_namespace.clone().unwrap_or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "default".into())
            }),
            identity: identity.clone(),
            duration: self.lease_duration,
        });
        Ok(Options {
            listen: self.listen,
            namespaces: self.namespace.clone(),
            settings: Settings {
                tuning,
                prometheus_timeout: self.tuning.prometheus_timeout,
                floor: self.min_ttl,
                // A follower looks again about when a dead leader's Lease would expire.
                not_leader_requeue: self.lease_duration,
                min_backoff: self.error_backoff,
                max_backoff: self.max_error_backoff,
                egress,
            },
            leader_election,
            identity,
            shutdown_timeout: self.shutdown_timeout,
            max_concurrent_reconciles: self.max_concurrent_reconciles,
        })
    }
}

/// Runs the controller and returns the process exit code.
pub async fn main(args: &ControllerArgs) -> i32 {
    let options = match args.options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    match controller::run(options).await {
        Ok(()) => exit::OK,
        Err(e) => {
            tracing::error!(error = %e, "controller failed");
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn controller(args: &[&str]) -> crate::Result<crate::controller::Options> {
        let cli = Cli::try_parse_from(["pushgateway-janitor", "controller"].iter().chain(args))
            .expect("flags parse");
        match cli.command {
            Command::Controller(args) => args.options(),
            other => panic!("not the controller: {other:?}"),
        }
    }

    #[test]
    fn the_allow_list_flags_become_the_controllers_rule() {
        let options = controller(&[
            "--allow-cidr=10.42.0.0/16",
            "--allow-host=prometheus-operated.monitoring.svc",
            "--allow-host-regex=[a-z0-9-]+\\.pgw\\.monitoring\\.svc",
            "--allow-service-namespace=monitoring",
        ])
        .unwrap();
        let egress = &options.settings.egress;
        let ip = |t: &str| t.parse().unwrap();
        assert!(egress.allows(None, ip("10.42.1.2")).is_ok());
        assert!(egress.allows(None, ip("10.43.1.2")).is_err());
        assert!(egress
            .allows(Some("pgw-0.pgw.monitoring.svc"), ip("10.9.0.1"))
            .is_ok());
        assert!(egress
            .allows(Some("prometheus-operated.monitoring.svc"), ip("10.9.0.2"))
            .is_ok());
        assert!(egress.allows_namespace("monitoring") && !egress.allows_namespace("team-a"));
        let err = controller(&["--allow-cidr=10.0.0.0/40"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--allow-cidr"), "{err}");
    }

    #[test]
    fn without_flags_the_controller_refuses_link_local_and_loopback() {
        let options = controller(&[]).unwrap();
        let egress = &options.settings.egress;
        assert!(egress.is_guarded());
        assert!(egress
            .allows(None, "169.254.169.254".parse().unwrap())
            .is_err());
        assert!(egress.allows(None, "127.0.0.1".parse().unwrap()).is_err());
        assert!(egress.allows(None, "10.0.0.1".parse().unwrap()).is_ok());
    }
}
