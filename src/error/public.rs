//! The error as a policy's author may read it: only what the janitor wrote. In a shared cluster
//! the author chooses the URLs, so whatever a remote answers (a body, its `error` field, a
//! header, a redirect's target, input a parser quotes) would be a read channel into the cluster.

use super::Error;
use pushgateway_janitor_core::report::{Failure, Public};

impl Public for Error {
    fn public(&self) -> String {
        Error::public(self)
    }
}

/// A failure as a report carries it: the whole text, and the public form.
impl From<&Error> for Failure {
    fn from(error: &Error) -> Failure {
        Failure::both(error.to_string(), error.public())
    }
}

impl Error {
    /// The error as a policy's author may read it (its status, conditions and events): the URL,
    /// the HTTP status and a short reason the janitor wrote, never what a remote sent (a body,
    /// its `error` field, a header, a redirect's target, input quoted by a parser). The full
    /// text (`Display`) is for the CLI's report and the controller's log.
    pub fn public(&self) -> String {
        match self {
            Error::Http { url, source } => format!("{url}: {}", public_reason(source)),
            Error::Status { url, status, .. } => format!("{url}: {}", status_reason(url, *status)),
            Error::BadResponse { url, message } => format!("{url}: {}", bad_reason(message)),
            Error::Prometheus { url, message, .. } => format!("prometheus {url}: {message}"),
            // Everything else is the janitor's own words about the user's input, the Kubernetes
            // API's answer about the user's own objects, or the janitor itself.
            other => other.to_string(),
        }
    }
}

/// Why an address was refused: written by the janitor, safe to show a policy's author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotAllowed(pub String);

/// What went wrong with a request, in the janitor's own fixed words: nothing a remote sent (a
/// redirect's target, a certificate's names, a body) is in it. For a policy's status and events.
pub fn public_reason(error: &reqwest::Error) -> String {
    let causes = || {
        std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        })
    };
    // The allow-list's refusal first: it hides under a lookup error.
    if let Some(refused) = causes().find_map(|c| c.downcast_ref::<NotAllowed>()) {
        return format!("address not allowed: {refused}");
    }
    for cause in causes() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => return "connection refused".into(),
                ConnectionReset | ConnectionAborted | BrokenPipe => {
                    return "connection reset".into()
                }
                TimedOut => return "timed out".into(),
                _ => {}
            }
        }
        if cause.downcast_ref::<rustls::Error>().is_some() {
            return "TLS handshake failed".into();
        }
        // hyper-util's own words for a failed lookup, not a remote's.
        if cause.to_string() == "dns error" {
            return "cannot resolve the host name".into();
        }
    }
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_redirect() {
        "redirect not followed (only same-origin redirects are)".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else if error.is_body() || error.is_decode() {
        "the answer broke off or could not be decoded".into()
    } else {
        "request failed".into()
    }
}

/// `HTTP 404: not a Pushgateway (no /api/v1/status)`: the code, and what it means on the path
/// the janitor asked for, or the code's standard name.
pub(super) fn status_reason(url: &str, status: u16) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Fault;
    use pushgateway_janitor_core::field::{Door, Field};

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
