//! Dereference once (Stackable's reconcile order): a checked policy's credentials become HTTP
//! clients, and its source becomes replicas, here and nowhere else. All three front doors call
//! it; only the secret source differs (files, a mounted directory, the Kubernetes API), so a
//! missing Secret is the same `Error::Secret` from each.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::discover::{self, Discovered, Refused};
use crate::engine::{Access, Engine};
use crate::http::{build_client, redact_url, Credentials, Egress, HttpAuth};
use crate::k8s;
use crate::policy::{
    AuthInput, AuthPart, CheckedPolicy, Door, Field, Remote, SecretRef, SourceSpec,
};
use crate::secrets::{SecretSource, Unavailable};
use crate::{Error, Result};

/// The bounds the front door's flags set.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Bounds connecting only; each call is bounded by the tuning's request timeout.
    pub connect: Duration,
    /// Bound on the discovery query to Prometheus.
    pub prometheus: Duration,
}

impl Timeouts {
    /// Connecting never takes longer than a whole request may, nor more than 10s.
    pub fn new(request_timeout: Duration, prometheus: Duration) -> Self {
        Timeouts {
            connect: request_timeout.min(Duration::from_secs(10)),
            prometheus,
        }
    }
}

/// The cluster a `service` source is looked up in: the policy's namespace.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
}

/// A client for each remote, with its credentials. The gateways' comes from the engine, which
/// keeps one per distinct credentials and shares reads only between holders of the same one.
#[derive(Debug, Clone)]
pub struct Clients {
    pub prometheus: reqwest::Client,
    pub gateway: Access,
    /// Where both may connect: every URL a policy names or a discovery returns is checked
    /// against it before anything is sent.
    pub egress: Arc<Egress>,
}

/// Everything a sweep needs that lies outside the policy: its gateway client and replicas.
pub struct Prepared {
    pub gateway: Access,
    pub found: Discovered,
}

/// Credentials → clients. Secret values are read fresh each time, so a rotated one is used at
/// the next sweep.
pub async fn clients(
    engine: &Engine,
    policy: &CheckedPolicy,
    secrets: &impl SecretSource,
    timeouts: Timeouts,
) -> Result<Clients> {
    let door = policy.door;
    let prometheus = resolve(&policy.prometheus_auth, Remote::Prometheus, door, secrets).await?;
    let gateway = resolve(&policy.gateway_auth, Remote::Gateway, door, secrets).await?;
    Ok(Clients {
        prometheus: build_client("prometheus", &prometheus, timeouts.connect, engine.egress())?,
        gateway: engine.access("gateway", &gateway, timeouts.connect)?,
        egress: engine.egress().clone(),
    })
}

/// Source → replicas. A `service` source needs `cluster`; without one it is the user's error.
/// Every URL the policy names, and every replica a discovery returns, is checked against the
/// admin's allow-list first: a refused URL of the policy refuses the policy, a refused replica
/// is reported and never contacted.
pub async fn replicas(
    policy: &CheckedPolicy,
    clients: &Clients,
    timeouts: Timeouts,
    cluster: Option<&Cluster>,
) -> Result<Discovered> {
    let egress = &clients.egress;
    let door = policy.door;
    let found: Discovered = match (&policy.source, cluster) {
        (SourceSpec::Static(urls), _) => {
            for (i, url) in urls.iter().enumerate() {
                allowed(egress, url, Field::StaticUrl(i), door).await?;
            }
            discover::from_static(urls).into()
        }
        (SourceSpec::Prometheus(source), _) => {
            allowed(egress, &source.url, Field::PrometheusUrl, door).await?;
            discover::via_prometheus(source, &clients.prometheus, timeouts.prometheus).await?
        }
        (
            SourceSpec::Service {
                name,
                port,
                instance_url,
            },
            Some(c),
        ) => {
            if !egress.allows_namespace(&c.namespace) {
                return Err(Error::NotAllowed {
                    field: Field::ServiceName,
                    door,
                    what: format!("Service {name:?} in namespace {:?}", c.namespace),
                    why: "the janitor's admin allows service sources only in other namespaces \
                          (--allow-service-namespace)"
                        .into(),
                });
            }
            k8s::discover_service(
                c.client.clone(),
                &c.namespace,
                name,
                port.as_deref(),
                instance_url,
            )
            .await?
            .into()
        }
        (SourceSpec::Service { name, .. }, None) => return Err(needs_cluster(name, policy.door)),
    };
    admit(egress, found).await
}

/// The policy's own URL, refused before anything is sent to it when the allow-list says no.
async fn allowed(egress: &Egress, url: &Url, field: Field, door: Door) -> Result<()> {
    egress.check_url(url).await.map_err(|e| Error::NotAllowed {
        field,
        door,
        what: redact_url(url),
        why: e.to_string(),
    })
}

/// Discovered replicas outside the allow-list move to the refused ones. None left is an error:
/// a sweep of nothing would look like a clean one.
async fn admit(egress: &Egress, found: Discovered) -> Result<Discovered> {
    if !egress.is_guarded() {
        return Ok(found);
    }
    let Discovered {
        replicas,
        mut refused,
    } = found;
    let mut admitted = Vec::with_capacity(replicas.len());
    for replica in replicas {
        match egress.check_url(&replica.url).await {
            Ok(()) => admitted.push(replica),
            Err(why) => {
                tracing::warn!(
                    replica = %redact_url(&replica.url),
                    why = %why,
                    "refused a replica outside the allowed addresses; it is never contacted"
                );
                refused.push(Refused {
                    instance: replica.instance.unwrap_or_default(),
                    url: Some(redact_url(&replica.url)),
                    why: format!("outside the allowed addresses: {why}"),
                });
            }
        }
    }
    if admitted.is_empty() {
        return Err(Error::Discovery(format!(
            "every replica found is outside the allowed addresses ({} refused, e.g. {})",
            refused.len(),
            refused
                .last()
                .map(|r| r.url.clone().unwrap_or_default())
                .unwrap_or_default()
        )));
    }
    Ok(Discovered {
        replicas: admitted,
        refused,
    })
}

/// Both steps, as the long-running front doors run them before each sweep.
pub async fn prepare(
    engine: &Engine,
    policy: &CheckedPolicy,
    secrets: &impl SecretSource,
    timeouts: Timeouts,
    cluster: Option<&Cluster>,
) -> Result<Prepared> {
    let clients = clients(engine, policy, secrets, timeouts).await?;
    let found = replicas(policy, &clients, timeouts, cluster).await?;
    Ok(Prepared {
        gateway: clients.gateway,
        found,
    })
}

/// The error of a `service` source where there is no cluster to look it up in.
pub fn needs_cluster(name: &str, door: Door) -> Error {
    Error::invalid(
        Field::ServiceName,
        format!(
            "Service {name:?}: a service source needs a cluster; use prometheus or static without one"
        ),
    )
    .at(door)
}

/// One remote's references, read into credentials and TLS material.
async fn resolve(
    a: &AuthInput,
    remote: Remote,
    door: Door,
    secrets: &impl SecretSource,
) -> Result<HttpAuth> {
    let get = |part: AuthPart, r: &SecretRef| {
        let field = Field::Auth(remote, part);
        let r = r.clone();
        async move {
            secrets.get(&r).await.map_err(|e| match e {
                Unavailable::Missing(message) => Error::Secret {
                    field,
                    door,
                    message,
                },
                Unavailable::Api(e) => Error::Kube(e),
            })
        }
    };
    let text = |part: AuthPart, bytes: Vec<u8>| {
        String::from_utf8(bytes)
            .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|_| Error::Secret {
                field: Field::Auth(remote, part),
                door,
                message: "the value is not UTF-8".into(),
            })
    };
    // Which combinations make sense was checked with the policy.
    let credentials = match (&a.basic_user, &a.basic_password, &a.bearer_token) {
        (Some(username), Some(password), None) => Credentials::Basic {
            username: username.clone(),
            password: text(
                AuthPart::BasicPassword,
                get(AuthPart::BasicPassword, password).await?,
            )?,
        },
        (None, None, Some(token)) => Credentials::Bearer(text(
            AuthPart::BearerToken,
            get(AuthPart::BearerToken, token).await?,
        )?),
        _ => Credentials::None,
    };
    let mut auth = HttpAuth {
        credentials,
        ..Default::default()
    };
    if let Some(ca) = &a.ca {
        let pem = get(AuthPart::Ca, ca).await?;
        // Checked here, not only by the client builder, so the error names the field.
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(certs) if !certs.is_empty() => {}
            Ok(_) => {
                return Err(secret_error(
                    remote,
                    AuthPart::Ca,
                    door,
                    "holds no certificate",
                ))
            }
            Err(e) => {
                return Err(secret_error(
                    remote,
                    AuthPart::Ca,
                    door,
                    &format!("not a PEM bundle: {e}"),
                ))
            }
        }
        auth.ca_pem = Some(pem);
    }
    if let (Some(cert), Some(key)) = (&a.client_certificate, &a.client_key) {
        let mut pem = get(AuthPart::ClientCertificate, cert).await?;
        pem.push(b'\n');
        pem.extend(get(AuthPart::ClientKey, key).await?);
        if let Err(e) = reqwest::Identity::from_pem(&pem) {
            return Err(secret_error(
                remote,
                AuthPart::ClientCertificate,
                door,
                &format!("not a PEM certificate and key: {e}"),
            ));
        }
        auth.identity_pem = Some(pem);
    }
    Ok(auth)
}

fn secret_error(remote: Remote, part: AuthPart, door: Door, message: &str) -> Error {
    Error::Secret {
        field: Field::Auth(remote, part),
        door,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod egress_tests;
