//! `pushgateway-janitor validate PATH...`: checks policies offline, for CI, before they reach a
//! cluster. No cluster, no network.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::duration::parse_duration;
use crate::report::exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateOutput {
    /// One line per problem, naming file, document, policy and field.
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// PushgatewayRetention YAML files, or directories whose `*.yaml` and `*.yml` files are read
    /// (sorted, not recursive); a file may hold several documents separated by `---`.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The controller's floor: the shortest TTL any policy may use, whatever its `minTtl` says.
    /// Give the value the controller (or `run`) is started with.
    #[arg(long, env = "PGW_JANITOR_MIN_TTL", value_parser = parse_duration, default_value = "1m")]
    pub min_ttl: Duration,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub output: ValidateOutput,
}

/// Runs `validate`: exit 0 when every policy is valid, 2 otherwise.
pub fn main(args: &ValidateArgs) -> i32 {
    let report = crate::validate::validate(&args.paths, args.min_ttl);
    match args.output {
        ValidateOutput::Text => print!("{}", report.to_text()),
        ValidateOutput::Json => println!("{}", report.to_json()),
    }
    if report.valid {
        exit::OK
    } else {
        exit::USAGE
    }
}
