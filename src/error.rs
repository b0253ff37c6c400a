//! One error type for the crate, sorted by who is at fault: the user's input, a remote's answer
//! (a gateway, Prometheus, the Kubernetes API), or the janitor's own start-up. Each has its exit
//! code and its condition reason; `category()` is the bounded label for metrics and events.

use std::path::PathBuf;

use crate::policy::{Door, Field};
use crate::report::exit;

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

    #[error("{url}: HTTP {status}: {body}")]
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

    /// The process exit code when this error ends a run (README, "Report and exit codes").
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

impl Error {
    /// The error as a policy's author may read it (its status, conditions and events): the URL,
    /// the HTTP status and a short reason the janitor wrote, never what a remote sent (a body,
    /// its `error` field, a header, a redirect's target, input quoted by a parser). The full
    /// text (`Display`) is for the CLI's report and the controller's log.
    pub fn public(&self) -> String {
        match self {
            Error::Http { url, source } => format!("{url}: {}", crate::http::public_reason(source)),
            Error::Status { url, status, .. } => format!("{url}: {}", status_reason(url, *status)),
            Error::BadResponse { url, message } => format!("{url}: {}", bad_reason(message)),
            Error::Prometheus { url, message, .. } => format!("prometheus {url}: {message}"),
            // Everything else is the janitor's own words about the user's input, the Kubernetes
            // API's answer about the user's own objects, or the janitor itself.
            other => other.to_string(),
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

/// `HTTP 404: not a Pushgateway (no /api/v1/status)`: the code, and what it means on the path
/// the janitor asked for, or the code's standard name.
fn status_reason(url: &str, status: u16) -> String {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let meaning = match status {
        404 if path.ends_with("/api/v1/status") => "not a Pushgateway (no /api/v1/status)",
        404 if path.ends_with("/api/v1/admin/wipe") => {
            "admin API disabled (needs --web.enable-admin-api)"
        }
        404 if path.ends_with("/api/v1/metrics") => "not a Pushgateway (no /api/v1/metrics)",
        401 | 403 => "the credentials were refused",
        _ => reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("unexpected status"),
    };
    format!("HTTP {status}: {meaning}")
}

/// The janitor's reasons a gateway's answer was unusable, as `gateway` writes them: the public
/// form is the reason alone, matched against this closed list, with a parser's line and column.
/// A message not on the list gets the generic reason, so a new message can never leak.
const BAD_REASONS: [(&str, &str); 8] = [
    ("invalid status body", "invalid JSON in /api/v1/status"),
    ("status ", "the answer's status is not \"success\""),
    (
        "no Date header",
        "no Date header: cannot tell the gateway's clock",
    ),
    ("unreadable Date header", "unreadable Date header"),
    ("Date header before 1970", "Date header before 1970"),
    (
        "invalid /api/v1/metrics body",
        "invalid JSON in /api/v1/metrics",
    ),
    (
        "/api/v1/metrics body ends early",
        "/api/v1/metrics body ends early",
    ),
    ("body broke off", "the answer broke off"),
];

fn bad_reason(message: &str) -> String {
    let reason = BAD_REASONS
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or("not a valid Pushgateway answer", |(_, reason)| reason);
    match json_position(message) {
        Some((line, column)) => format!("{reason} at line {line} column {column}"),
        None => reason.to_string(),
    }
}

/// serde_json ends its messages with `at line L column C`: two numbers, safe to repeat.
fn json_position(message: &str) -> Option<(u64, u64)> {
    let (_, tail) = message.rsplit_once(" at line ")?;
    let (line, column) = tail.split_once(" column ")?;
    let column = column.split(|c: char| !c.is_ascii_digit()).next()?;
    Some((line.parse().ok()?, column.parse().ok()?))
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

    #[test]
    fn the_public_form_keeps_no_word_a_remote_sent() {
        let secret = "AKIA-TOP-SECRET";
        let status = Error::Status {
            url: "http://10.0.0.1:8080/api/v1/status".into(),
            status: 404,
            body: format!("<html>{secret}</html>"),
        };
        assert!(status.to_string().contains(secret), "the CLI keeps it");
        assert_eq!(
            status.public(),
            "http://10.0.0.1:8080/api/v1/status: HTTP 404: not a Pushgateway (no /api/v1/status)"
        );
        let server_error = Error::Status {
            url: "http://10.0.0.1:8080/api/v1/metrics".into(),
            status: 500,
            body: secret.into(),
        };
        assert_eq!(
            server_error.public(),
            "http://10.0.0.1:8080/api/v1/metrics: HTTP 500: Internal Server Error"
        );
        for message in [
            format!("status \"error\", error \"{secret}\""),
            format!("invalid status body: invalid type: string \"{secret}\", expected a map at line 3 column 5"),
            format!("unreadable Date header \"{secret}\""),
            format!("{secret}: a message no one listed"),
        ] {
            let bad = Error::BadResponse {
                url: "http://pgw:9091/api/v1/status".into(),
                message,
            };
            assert!(!bad.public().contains(secret), "{}", bad.public());
        }
        let json = Error::BadResponse {
            url: "http://pgw:9091/api/v1/status".into(),
            message: format!("invalid status body: unknown variant `{secret}` at line 3 column 5"),
        };
        assert_eq!(
            json.public(),
            "http://pgw:9091/api/v1/status: invalid JSON in /api/v1/status at line 3 column 5"
        );
        let prometheus = Error::Prometheus {
            url: "http://prom:9090/".into(),
            message: "targets API answered HTTP 500 with status \"error\"".into(),
            detail: secret.into(),
        };
        assert!(prometheus.to_string().contains(secret));
        assert!(
            !prometheus.public().contains(secret),
            "{}",
            prometheus.public()
        );
    }

    #[test]
    fn a_refused_address_names_its_field_and_reason() {
        let e = Error::NotAllowed {
            field: Field::StaticUrl(1),
            door: Door::Spec,
            what: "http://169.254.169.254/".into(),
            why: "a link-local address".into(),
        };
        assert_eq!(e.condition_reason(), "AddressNotAllowed");
        assert_eq!(e.fault(), Fault::Input);
        let text = e.public();
        assert!(
            text.contains("spec.static.urls[1]") && text.contains("169.254.169.254"),
            "{text}"
        );
    }
}
