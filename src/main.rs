#![forbid(unsafe_code)]

use clap::Parser;

use pushgateway_janitor::cli::{Cli, Command};
use pushgateway_janitor::report::exit;
use pushgateway_janitor::telemetry;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // One TLS provider for the whole process (kube and reqwest both use aws-lc-rs); installing it
    // explicitly means no client can panic for want of one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    pushgateway_janitor::progress::set_log_interval(cli.progress_interval);
    if let Err(e) = telemetry::init(cli.log_format, &cli.log_level, cli.quiet) {
        eprintln!("error: {e}");
        std::process::exit(exit::USAGE);
    }
    let code = match &cli.command {
        Command::Sweep(args) => pushgateway_janitor::cli::sweep::main(args).await,
        Command::Run(args) => pushgateway_janitor::cli::run::main(args).await,
        Command::Inspect(args) => pushgateway_janitor::cli::inspect::main(args).await,
        Command::Validate(args) => pushgateway_janitor::cli::validate::main(args),
        Command::Crd => {
            print!("{}", pushgateway_janitor::cli::crd::yaml());
            exit::OK
        }
        Command::Controller(args) => pushgateway_janitor::cli::controller::main(args).await,
    };
    std::process::exit(code);
}
