//! One error type for the crate, with a bounded category for metric labels and event reasons.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag, policy field or file the user gave is wrong. Nothing has been touched.
    #[error("invalid {what}: {message}")]
    Config { what: String, message: String },

    #[error("cannot read {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The cause chain is part of the message: reqwest's own text is often only "error sending
    /// request", while the cause says "connection refused" or why a redirect was not followed.
    #[error("{url}: {}", chain(source))]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },

    #[error("{url}: {message}")]
    BadResponse { url: String, message: String },

    #[error("{url}: no answer within {timeout:?}")]
    Timeout {
        url: String,
        timeout: std::time::Duration,
    },

    #[error("prometheus {url}: {message}")]
    Prometheus { url: String, message: String },

    #[error("discovery: {0}")]
    Discovery(String),

    /// The Kubernetes API refused or failed a request.
    #[error("kubernetes API: {0}")]
    Kube(#[source] kube::Error),

    /// Leader election could not start or keep its Lease.
    #[error("leader election: {0}")]
    Lease(#[source] kube_lease_manager::LeaseManagerError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            what: what.into(),
            message: message.into(),
        }
    }

    /// A short, bounded name for metric labels and event reasons. Never carries user data.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Config { .. } | Error::File { .. } => "config",
            Error::Http { .. } => "http",
            Error::Status { .. } => "http_status",
            Error::BadResponse { .. } => "bad_response",
            Error::Timeout { .. } => "timeout",
            Error::Prometheus { .. } => "prometheus",
            Error::Discovery(_) => "discovery",
            Error::Kube(_) => "kube",
            Error::Lease(_) => "lease",
        }
    }
}

/// An error with its chain of causes, `outer: inner: innermost`, for messages that must say what
/// really went wrong (a library's top-level text is often just "request failed").
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}
