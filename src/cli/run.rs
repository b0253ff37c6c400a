//! `pushgateway-janitor run --policies PATH`: the policies users `kubectl apply`, enforced without
//! a cluster, in a loop (or once, with `--once`, for a CronJob).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::controller::EgressArgs;
use crate::cli::sweep::{OutputFormat, TuningArgs};
use crate::duration::parse_duration;
use crate::policy::Door;
use crate::runner::{Format, Options};
use crate::Result;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A PushgatewayRetention YAML file, or a directory whose `*.yaml` and `*.yml` files are read
    /// (sorted, not recursive). A file may hold several documents separated by `---`.
    #[arg(long, env = "PGW_JANITOR_POLICIES")]
    pub policies: PathBuf,
    /// Address for `/livez`, `/readyz` and `/metrics` (not served with `--once`).
    #[arg(long, env = "PGW_JANITOR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Directory of Secrets mounted as files, `DIR/<secret name>/<key>`, for the policies' auth
    /// references.
    #[arg(long, env = "PGW_JANITOR_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Secrets laid out per namespace, `DIR/<namespace>/<secret name>/<key>`: each policy reads
    /// only its own namespace's, as in a cluster (for policy files from many teams).
    #[arg(long, env = "PGW_JANITOR_SECRETS_BY_NAMESPACE")]
    pub secrets_by_namespace: bool,
    /// The shortest TTL any policy may use, whatever its `minTtl` says.
    #[arg(long, env = "PGW_JANITOR_MIN_TTL", value_parser = parse_duration, default_value = "1m")]
    pub min_ttl: Duration,
    /// Sweep every valid policy once, print the reports and exit with the worst exit code.
    #[arg(long, env = "PGW_JANITOR_ONCE")]
    pub once: bool,
    /// Report format on stdout, with `--once`.
    #[arg(long, env = "PGW_JANITOR_OUTPUT", value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// How often to look for changed policy files (a mounted ConfigMap swapping its symlink);
    /// `0s` turns it off. `SIGHUP` and `POST /-/reload` reload at any time.
    #[arg(long, env = "PGW_JANITOR_RELOAD_CHECK_INTERVAL", value_parser = parse_duration, default_value = "10s")]
    pub reload_check_interval: Duration,
    /// On SIGTERM or SIGINT, how long to let sweeps in flight finish before exiting.
    #[arg(long, env = "PGW_JANITOR_SHUTDOWN_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub shutdown_timeout: Duration,
    /// The same allow-list as the controller's: the policy files may come from many teams.
    #[command(flatten)]
    pub egress: EgressArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
}

impl RunArgs {
    /// The runner's options, the tuning checked (named as flags).
    pub fn options(&self) -> Result<Options> {
        let tuning = self.tuning.to_tuning();
        tuning.validate().map_err(|e| e.at(Door::Flags))?;
        Ok(Options {
            policies: self.policies.clone(),
            listen: self.listen,
            secrets_dir: self.secrets_dir.clone(),
            secrets_by_namespace: self.secrets_by_namespace,
            min_ttl: self.min_ttl,
            once: self.once,
            output: match self.output {
                OutputFormat::Table => Format::Table,
                OutputFormat::Json => Format::Json,
            },
            reload_check_interval: self.reload_check_interval,
            shutdown_timeout: self.shutdown_timeout,
            tuning,
            timeouts: self.tuning.timeouts(),
            egress: self.egress.egress()?,
        })
    }
}

/// Runs `run` and returns the process exit code.
pub async fn main(args: &RunArgs) -> i32 {
    match args.options() {
        Ok(options) => crate::runner::main(&options).await,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
