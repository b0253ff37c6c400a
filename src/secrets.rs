//! Resolving a policy's credentials: references to keys of Secrets in its namespace.
//!
//! In a cluster they are read from the API (the controller); without one (`run --policies`) they
//! are read from a directory laid out as Kubernetes mounts Secrets: `DIR/<secret>/<key>`.

use std::future::Future;
use std::path::PathBuf;

use crate::crd::{HttpAuthRefs, SecretKeyRef};
use crate::http::{Credentials, HttpAuth};
use crate::{Error, Result};

/// Where secret values come from.
pub trait SecretSource {
    /// The value of `reference`; `field` names the policy field in errors.
    fn get(
        &self,
        reference: &SecretKeyRef,
        field: &str,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;
}

/// Secrets mounted as files: `DIR/<secret name>/<key>`.
#[derive(Debug, Clone)]
pub struct DirSecrets {
    pub dir: Option<PathBuf>,
}

impl SecretSource for DirSecrets {
    async fn get(&self, reference: &SecretKeyRef, field: &str) -> Result<Vec<u8>> {
        let Some(dir) = &self.dir else {
            return Err(Error::config(
                field,
                format!(
                    "refers to Secret {:?}, but without a cluster secrets are read from files: pass --secrets-dir",
                    reference.name
                ),
            ));
        };
        for part in [&reference.name, &reference.key] {
            if part.is_empty() || part.contains('/') || part == ".." || part == "." {
                return Err(Error::config(
                    field,
                    format!("{part:?} is not a Secret name or key"),
                ));
            }
        }
        let path = dir.join(&reference.name).join(&reference.key);
        tokio::fs::read(&path)
            .await
            .map_err(|e| Error::config(field, format!("cannot read {}: {e}", path.display())))
    }
}

fn utf8(field: &str, bytes: Vec<u8>) -> Result<String> {
    let text =
        String::from_utf8(bytes).map_err(|_| Error::config(field, "secret value is not UTF-8"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// Resolves `refs` (at policy field `field`) into credentials and TLS material.
pub async fn resolve(
    refs: Option<&HttpAuthRefs>,
    field: &str,
    secrets: &impl SecretSource,
) -> Result<HttpAuth> {
    let Some(refs) = refs else {
        return Ok(HttpAuth::default());
    };
    let credentials = match (
        &refs.basic_username,
        &refs.basic_password,
        &refs.bearer_token,
    ) {
        (None, None, None) => Credentials::None,
        (Some(username), Some(password), None) => {
            let f = format!("{field}.basicPassword");
            Credentials::Basic {
                username: username.clone(),
                password: utf8(&f, secrets.get(password, &f).await?)?,
            }
        }
        (None, None, Some(token)) => {
            let f = format!("{field}.bearerToken");
            Credentials::Bearer(utf8(&f, secrets.get(token, &f).await?)?)
        }
        (_, _, Some(_)) => {
            return Err(Error::config(
                format!("{field}.bearerToken"),
                "cannot be combined with basic auth",
            ))
        }
        _ => {
            return Err(Error::config(
                format!("{field}.basicUsername"),
                "basicUsername and basicPassword go together",
            ))
        }
    };
    let mut auth = HttpAuth {
        credentials,
        ..Default::default()
    };
    if let Some(ca) = &refs.ca {
        auth.ca_pem = Some(secrets.get(ca, &format!("{field}.ca")).await?);
    }
    match (&refs.client_certificate, &refs.client_key) {
        (None, None) => {}
        (Some(cert), Some(key)) => {
            let mut pem = secrets
                .get(cert, &format!("{field}.clientCertificate"))
                .await?;
            pem.push(b'\n');
            pem.extend(secrets.get(key, &format!("{field}.clientKey")).await?);
            auth.identity_pem = Some(pem);
        }
        _ => {
            return Err(Error::config(
                format!("{field}.clientCertificate"),
                "clientCertificate and clientKey go together",
            ))
        }
    }
    Ok(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, key: &str) -> SecretKeyRef {
        SecretKeyRef {
            name: name.into(),
            key: key.into(),
        }
    }

    #[tokio::test]
    async fn mounted_secrets_resolve_to_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pgw-auth")).unwrap();
        std::fs::write(dir.path().join("pgw-auth/password"), "s3cret\n").unwrap();
        let refs = HttpAuthRefs {
            basic_username: Some("ops".into()),
            basic_password: Some(secret("pgw-auth", "password")),
            ..Default::default()
        };
        let secrets = DirSecrets {
            dir: Some(dir.path().into()),
        };
        let auth = resolve(Some(&refs), "spec.gatewayAuth", &secrets)
            .await
            .unwrap();
        match auth.credentials {
            Credentials::Basic { username, password } => {
                assert_eq!((username.as_str(), password.as_str()), ("ops", "s3cret"))
            }
            _ => panic!("basic expected"),
        }
    }

    #[tokio::test]
    async fn without_a_secrets_dir_the_error_names_the_field_and_the_flag() {
        let refs = HttpAuthRefs {
            bearer_token: Some(secret("tok", "token")),
            ..Default::default()
        };
        let err = resolve(Some(&refs), "spec.gatewayAuth", &DirSecrets { dir: None })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("spec.gatewayAuth.bearerToken") && err.contains("--secrets-dir"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn secret_names_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let refs = HttpAuthRefs {
            bearer_token: Some(secret("..", "passwd")),
            ..Default::default()
        };
        let secrets = DirSecrets {
            dir: Some(dir.path().into()),
        };
        assert!(resolve(Some(&refs), "spec.gatewayAuth", &secrets)
            .await
            .is_err());
    }
}
