//! One error type for the crate, sorted by who is at fault: the user's input, a remote's answer
//! (a gateway, Prometheus, the Kubernetes API), or the janitor's own start-up. Each has its exit
//! code and its condition reason; `category()` is the bounded label for metrics and events.

use std::path::PathBuf;

mod public;

pub use public::{public_reason, NotAllowed};

// From the core itself, not through the crate root, which re-exports this module.
use pushgateway_janitor_core::exit;
use pushgateway_janitor_core::field::{Door, Field};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or file the user gave is wrong, outside any policy field (`--log-level`,
    /// `--lease-duration`, a `--policies` directory with no YAML). Nothing has been touched.
    #[error("invalid {what}: {message}")]
    Config { what: String, message: String },

    /// A policy field is wrong, whether it came as a flag or in a spec. `door` says in whose
    /// words to name it (`--ttl`, `spec.ttl`); `None` for an engine check no front door named yet.
    #[error("invalid {}: {message}", Field::name_in(*field, *door))]
    Invalid {
        field: Field,
        door: Option<Door>,
        message: String,
    },

    /// A credential the user pointed at cannot be had: a missing or unreadable file, a Secret (or
    /// its key) that does not exist, a value that is not UTF-8. The same failure from every
    /// front door; the input may be right and the Secret still to come, so it is retried.
    #[error("{}: {message}", Field::name_in(*field, Some(*door)))]
    Secret {
        field: Field,
        door: Door,
        message: String,
    },

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

    /// A remote answered with an error status. Said in the janitor's words first (`HTTP 404:
    /// not a Pushgateway (no /api/v1/status)`, the same as the public form), then the start of
    /// what it answered, where that is text: an HTML page is named as one, not printed.
    #[error("{url}: {}{}", public::status_reason(url, *status), answered(body))]
    Status {
        url: String,
        status: u16,
        body: String,
    },

    #[error("{url}: {message}")]
    BadResponse { url: String, message: String },

    #[error("{url}: timed out: no answer within {timeout:?}")]
    Timeout {
        url: String,
        timeout: std::time::Duration,
    },

    /// `message` is the janitor's own words (safe for a policy's status); `detail`, possibly
    /// empty, what the remote or a library said, for the CLI and the logs only.
    #[error("prometheus {url}: {message}{}", colon(detail))]
    Prometheus {
        url: String,
        message: String,
        detail: String,
    },

    /// The admin's allow-list refuses the address a policy field names: nothing was sent to it.
    #[error("{}: {what} is not allowed: {why}", Field::name_in(*field, Some(*door)))]
    NotAllowed {
        field: Field,
        door: Door,
        /// The URL (credentials redacted) or the Service refused.
        what: String,
        why: String,
    },

    #[error("discovery: {0}")]
    Discovery(String),

    /// The Kubernetes API refused or failed a request.
    #[error("kubernetes API: {}", chain(.0))]
    Kube(#[source] kube::Error),

    /// Leader election could not start or keep its Lease.
    #[error("leader election: {}", chain(.0))]
    Lease(#[source] kube_lease_manager::LeaseManagerError),

    /// The janitor itself cannot start: it cannot listen on its address, install a signal
    /// handler, or build its Kubernetes client.
    #[error("cannot {what}: {}", chain(source.as_ref()))]
    Startup {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The core's errors are the user's input, and keep their words: `Config` stays `Config`,
/// `Invalid` stays `Invalid` (same message, same exit code, same condition reason).
impl From<pushgateway_janitor_core::Error> for Error {
    fn from(error: pushgateway_janitor_core::Error) -> Self {
        match error {
            pushgateway_janitor_core::Error::Config { what, message } => {
                Error::Config { what, message }
            }
            pushgateway_janitor_core::Error::Invalid {
                field,
                door,
                message,
            } => Error::Invalid {
                field,
                door,
                message,
            },
        }
    }
}

fn colon(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// Who is at fault, which decides the exit code and the condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bad flags, a bad spec, a bad or missing file or Secret: the user fixes it.
    Input,
    /// A gateway, Prometheus or the Kubernetes API answered badly or not at all.
    Remote,
    /// The janitor could not start (bind, signals, its own client).
    Startup,
}

impl Error {
    pub fn config(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            what: what.into(),
            message: message.into(),
        }
    }

    /// A policy field's error, named by no front door yet (see [`Error::at`]).
    pub fn invalid(field: Field, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            door: None,
            message: message.into(),
        }
    }

    pub fn startup(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Startup {
            what: what.into(),
            source: source.into(),
        }
    }

    /// The same error, its field named in `door`'s words. Other errors are left as they are.
    pub fn at(self, door: Door) -> Self {
        match self {
            Error::Invalid { field, message, .. } => Error::Invalid {
                field,
                door: Some(door),
                message,
            },
            other => other,
        }
    }

    /// The policy field the error is about, if it is about one.
    pub fn field(&self) -> Option<Field> {
        match self {
            Error::Invalid { field, .. }
            | Error::Secret { field, .. }
            | Error::NotAllowed { field, .. } => Some(*field),
            _ => None,
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            Error::Config { .. }
            | Error::Invalid { .. }
            | Error::Secret { .. }
            | Error::NotAllowed { .. } => Fault::Input,
            Error::File { .. } => Fault::Input,
            Error::Http { .. }
            | Error::Status { .. }
            | Error::BadResponse { .. }
            | Error::Timeout { .. }
            | Error::Prometheus { .. }
            | Error::Discovery(_)
            | Error::Kube(_)
            | Error::Lease(_) => Fault::Remote,
            Error::Startup { .. } => Fault::Startup,
        }
    }

    /// The process exit code when this error ends a run (README, "Exit codes").
    pub fn exit_code(&self) -> i32 {
        match self.fault() {
            Fault::Input => exit::USAGE,
            Fault::Remote => exit::REPLICA_FAILED,
            Fault::Startup => exit::STARTUP,
        }
    }

    /// The reason of the condition a policy's status shows for it.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            Error::Secret { .. } => "SecretUnavailable",
            Error::NotAllowed { .. } => "AddressNotAllowed",
            Error::Kube(_) => "KubernetesApiFailed",
            _ => match self.fault() {
                Fault::Input => "InvalidSpec",
                Fault::Remote => "DiscoveryFailed",
                Fault::Startup => "StartupFailed",
            },
        }
    }

    /// A short, bounded name for metric labels and event reasons. Never carries user data.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Config { .. } | Error::Invalid { .. } | Error::File { .. } => "config",
            Error::Secret { .. } => "secret",
            Error::NotAllowed { .. } => "not_allowed",
            Error::Http { .. } => "http",
            Error::Status { .. } => "http_status",
            Error::BadResponse { .. } => "bad_response",
            Error::Timeout { .. } => "timeout",
            Error::Prometheus { .. } => "prometheus",
            Error::Discovery(_) => "discovery",
            Error::Kube(_) => "kube",
            Error::Lease(_) => "lease",
            Error::Startup { .. } => "startup",
        }
    }
}

/// An error with its chain of causes, `outer: inner: innermost`, for messages that must say what
/// really went wrong (a library's top-level text is often just "request failed").
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
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

/// `; it answered: <the body's start>` after an error status, or nothing for an empty body.
fn answered(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!("; it answered: {body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_has_its_own_exit_code() {
        let input = Error::invalid(Field::Ttl, "must be greater than zero").at(Door::Flags);
        let remote = Error::Discovery("no replica".into());
        let startup = Error::startup(
            "listen on 127.0.0.1:1",
            std::io::Error::from(std::io::ErrorKind::AddrInUse),
        );
        assert_eq!(
            [input.exit_code(), remote.exit_code(), startup.exit_code()],
            [exit::USAGE, exit::REPLICA_FAILED, exit::STARTUP]
        );
        assert_eq!(
            [
                input.condition_reason(),
                remote.condition_reason(),
                startup.condition_reason()
            ],
            ["InvalidSpec", "DiscoveryFailed", "StartupFailed"]
        );
    }

    #[test]
    fn a_start_up_error_names_its_cause() {
        let e = Error::startup(
            "listen on 127.0.0.1:80",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied"),
        );
        assert_eq!(
            e.to_string(),
            "cannot listen on 127.0.0.1:80: permission denied"
        );
    }

    #[test]
    fn a_timeout_says_how_long_it_waited() {
        let e = Error::Timeout {
            url: "http://pgw:9091/api/v1/metrics".into(),
            timeout: std::time::Duration::from_secs(60),
        };
        assert_eq!(
            e.to_string(),
            "http://pgw:9091/api/v1/metrics: timed out: no answer within 60s"
        );
    }
}
