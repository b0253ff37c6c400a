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

    #[error("{url}: {source}")]
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
