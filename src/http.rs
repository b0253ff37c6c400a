//! HTTP clients for Prometheus and for the gateways, each with its own credentials and TLS.
//!
//! Secrets are loaded once, kept out of `Debug` output and marked sensitive in headers, so no log
//! or report can carry them.

mod egress;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use crate::{Error, Result};

pub use egress::{Egress, EgressInput, Resolver};
// A refused address and the public words for a failed request belong to the error they end in.
pub use crate::error::{public_reason, NotAllowed};

/// How to authenticate to one outside system, with the secret values already resolved
/// (from files on the command line, from Secrets in a cluster).
#[derive(Clone, Default)]
pub struct HttpAuth {
    pub credentials: Credentials,
    /// PEM bundle of CAs to trust in addition to the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM with a client certificate chain and its private key.
    pub identity_pem: Option<Vec<u8>>,
}

#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    Bearer(String),
}

impl fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = match &self.credentials {
            Credentials::None => "none".to_string(),
            Credentials::Basic { username, .. } => format!("basic({username}, password redacted)"),
            Credentials::Bearer(_) => "bearer(redacted)".to_string(),
        };
        f.debug_struct("HttpAuth")
            .field("credentials", &credentials)
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity_pem.is_some())
            .finish()
    }
}

/// Builds a client for one outside system. `what` names it in errors (`prometheus`, `gateway`).
/// `connect_timeout` bounds connecting only; callers bound whole operations themselves. A
/// guarded `egress` resolves names through its [`Resolver`], and takes no proxy from the
/// environment: through a proxy the address checked would be the proxy's, not the target's.
pub fn build_client(
    what: &str,
    auth: &HttpAuth,
    connect_timeout: Duration,
    egress: &Arc<Egress>,
) -> Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    let authorization = match &auth.credentials {
        Credentials::None => None,
        Credentials::Basic { username, password } => {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            Some(format!("Basic {token}"))
        }
        Credentials::Bearer(token) => Some(format!("Bearer {token}")),
    };
    if let Some(value) = authorization {
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            Error::config(
                format!("{what} credentials"),
                "contain characters not allowed in an HTTP header".to_string(),
            )
        })?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(same_origin_redirects())
        .connect_timeout(connect_timeout)
        .user_agent(concat!("pushgateway-janitor/", env!("CARGO_PKG_VERSION")));
    if egress.is_guarded() {
        builder = builder
            .dns_resolver(Arc::new(Resolver(egress.clone())))
            .no_proxy();
    }
    if let Some(pem) = &auth.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::config(format!("{what} CA"), format!("not a PEM bundle: {e}")))?;
        if certs.is_empty() {
            return Err(Error::config(format!("{what} CA"), "holds no certificate"));
        }
        builder = builder.tls_certs_merge(certs);
    }
    if let Some(pem) = &auth.identity_pem {
        let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
            Error::config(
                format!("{what} client certificate"),
                format!("not a PEM certificate and key: {e}"),
            )
        })?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| Error::config(format!("{what} HTTP client"), e.to_string()))
}

/// Redirects are followed only to the same scheme, host and port. Credentials (a header, a client
/// certificate) go only where they were configured to go, and a replica can never send the janitor
/// to another host.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = &attempt.previous()[0];
        let next = attempt.url();
        if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else if next.origin() == first.origin() {
            attempt.follow()
        } else {
            let message = format!(
                "redirected to another host ({}), not followed: credentials go only where they \
                 were configured to go",
                redact_url(next)
            );
            attempt.error(message)
        }
    })
}

/// A URL as it may appear in logs and reports: any userinfo is removed.
pub fn redact_url(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let auth = HttpAuth {
            credentials: Credentials::Basic {
                username: "ops".into(),
                password: "hunter2".into(),
            },
            ..Default::default()
        };
        let text = format!("{auth:?}");
        assert!(text.contains("ops"));
        assert!(!text.contains("hunter2"));
        let auth = HttpAuth {
            credentials: Credentials::Bearer("tok-123".into()),
            ..Default::default()
        };
        assert!(!format!("{auth:?}").contains("tok-123"));
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused() {
        let auth = HttpAuth {
            ca_pem: Some(b"not a certificate".to_vec()),
            ..Default::default()
        };
        let open = Arc::new(Egress::open());
        let err = build_client("gateway", &auth, Duration::from_secs(1), &open).unwrap_err();
        assert!(err.to_string().contains("gateway CA"), "{err}");
    }

    #[test]
    fn redacted_urls_lose_userinfo() {
        let url = url::Url::parse("http://ops:hunter2@pgw-0:9091/x/").unwrap();
        assert_eq!(redact_url(&url), "http://pgw-0:9091/x/");
    }
}
