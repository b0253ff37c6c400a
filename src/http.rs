//! HTTP clients for Prometheus and for the gateways, each with its own credentials and TLS.
//!
//! Secrets are loaded once, kept out of `Debug` output and marked sensitive in headers, so no log
//! or report can carry them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use crate::{Error, Result};

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

/// The command-line form of [`HttpAuth`]: paths to files that hold the secrets.
#[derive(Clone, Debug, Default)]
pub struct HttpAuthFiles {
    pub basic_user: Option<String>,
    pub basic_password_file: Option<PathBuf>,
    pub bearer_token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl HttpAuthFiles {
    /// Reads the files. `flag_prefix` (`prometheus` or `gateway`) names the flags in errors.
    pub fn load(&self, flag_prefix: &str) -> Result<HttpAuth> {
        let credentials = match (
            &self.basic_user,
            &self.basic_password_file,
            &self.bearer_token_file,
        ) {
            (None, None, None) => Credentials::None,
            (Some(username), Some(file), None) => Credentials::Basic {
                username: username.clone(),
                password: read_secret(file)?,
            },
            (None, None, Some(file)) => Credentials::Bearer(read_secret(file)?),
            (Some(_), None, None) => {
                return Err(Error::config(
                    format!("--{flag_prefix}-basic-user"),
                    format!("needs --{flag_prefix}-password-file"),
                ))
            }
            (None, Some(_), None) => {
                return Err(Error::config(
                    format!("--{flag_prefix}-password-file"),
                    format!("needs --{flag_prefix}-basic-user"),
                ))
            }
            (_, _, Some(_)) => {
                return Err(Error::config(
                    format!("--{flag_prefix}-bearer-token-file"),
                    "cannot be combined with basic auth".to_string(),
                ))
            }
        };
        let ca_pem = self.ca_file.as_deref().map(read_file).transpose()?;
        let identity_pem = match (&self.cert_file, &self.key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let mut pem = read_file(cert)?;
                pem.push(b'\n');
                pem.extend(read_file(key)?);
                Some(pem)
            }
            _ => {
                return Err(Error::config(
                    format!("--{flag_prefix}-cert-file"),
                    format!("--{flag_prefix}-cert-file and --{flag_prefix}-key-file go together"),
                ))
            }
        };
        Ok(HttpAuth {
            credentials,
            ca_pem,
            identity_pem,
        })
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })
}

/// A secret file's content without the trailing newline editors and `kubectl create secret` leave.
fn read_secret(path: &Path) -> Result<String> {
    let raw = read_file(path)?;
    let text = String::from_utf8(raw).map_err(|_| {
        Error::config(
            format!("secret file {}", path.display()),
            "is not UTF-8".to_string(),
        )
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// Builds a client for one outside system. `what` names it in errors (`prometheus`, `gateway`).
/// `connect_timeout` bounds connecting only; callers bound whole operations themselves.
pub fn build_client(
    what: &str,
    auth: &HttpAuth,
    connect_timeout: Duration,
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

    fn secret_file(content: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), content).unwrap();
        file
    }

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
    fn secret_files_lose_their_trailing_newline() {
        let pw = secret_file("s3cret\n");
        let files = HttpAuthFiles {
            basic_user: Some("ops".into()),
            basic_password_file: Some(pw.path().into()),
            ..Default::default()
        };
        match files.load("gateway").unwrap().credentials {
            Credentials::Basic { username, password } => {
                assert_eq!(username, "ops");
                assert_eq!(password, "s3cret");
            }
            _ => panic!("expected basic credentials"),
        }
    }

    #[test]
    fn contradictory_or_incomplete_auth_flags_are_refused_by_name() {
        let tok = secret_file("t");
        let both = HttpAuthFiles {
            basic_user: Some("ops".into()),
            bearer_token_file: Some(tok.path().into()),
            ..Default::default()
        };
        let err = both.load("prometheus").unwrap_err().to_string();
        assert!(err.contains("--prometheus-bearer-token-file"), "{err}");
        let user_only = HttpAuthFiles {
            basic_user: Some("ops".into()),
            ..Default::default()
        };
        let err = user_only.load("gateway").unwrap_err().to_string();
        assert!(err.contains("--gateway-password-file"), "{err}");
        let cert_only = HttpAuthFiles {
            cert_file: Some(tok.path().into()),
            ..Default::default()
        };
        assert!(cert_only.load("gateway").is_err());
    }

    #[test]
    fn a_missing_secret_file_is_named() {
        let files = HttpAuthFiles {
            bearer_token_file: Some("/nonexistent/token".into()),
            ..Default::default()
        };
        let err = files.load("gateway").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/token"), "{err}");
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused() {
        let auth = HttpAuth {
            ca_pem: Some(b"not a certificate".to_vec()),
            ..Default::default()
        };
        let err = build_client("gateway", &auth, Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("gateway CA"), "{err}");
    }

    #[test]
    fn redacted_urls_lose_userinfo() {
        let url = url::Url::parse("http://ops:hunter2@pgw-0:9091/x/").unwrap();
        assert_eq!(redact_url(&url), "http://pgw-0:9091/x/");
    }
}
