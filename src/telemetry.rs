//! Logs through `tracing`, to stderr (stdout carries the report), json or plain.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

/// `level` is an `EnvFilter` directive such as `info` or `pushgateway_janitor=debug,warn`.
pub fn init(format: LogFormat, level: &str) -> crate::Result<()> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| crate::Error::config("--log-level", format!("{level:?}: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
    Ok(())
}
