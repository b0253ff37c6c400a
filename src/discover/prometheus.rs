//! Replicas found through Prometheus, in a way a pushed sample cannot spoof.
//!
//! With `honor_labels: true` (the setup the janitor serves), anyone who can push to a gateway can
//! push `up{job="<the job>",instance="<any host>"}`, and Prometheus then answers
//! `up{job="<the job>"}` with that instance as if it were a replica. So the replicas are the job's
//! real scrape targets from the targets API, at their `scrapeUrl`; every `up` series is checked
//! against them, and one that is no target is refused, named, and never contacted. Where
//! Prometheus has no targets API (Thanos Query, Mimir, VictoriaMetrics), the `up` query is used
//! only with an allow-list of replica addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{up_query, Discovered, Mode, Refused, Replica, ViaPrometheus};
use crate::error::chain;
use crate::http::redact_url;
use crate::{Error, Result};

/// A [`ViaPrometheus`] as discovery uses it: the queries, and what their answers make.
struct Query(ViaPrometheus);

impl std::ops::Deref for Query {
    type Target = ViaPrometheus;
    fn deref(&self) -> &ViaPrometheus {
        &self.0
    }
}

impl std::ops::DerefMut for Query {
    fn deref_mut(&mut self) -> &mut ViaPrometheus {
        &mut self.0
    }
}

/// The replicas a Prometheus source names, and what was refused. Zero replicas is an error, not
/// a clean run.
pub async fn via_prometheus(
    source: &ViaPrometheus,
    http: &reqwest::Client,
    timeout: Duration,
) -> Result<Discovered> {
    Query(source.clone()).discover(http, timeout).await
}

#[derive(Deserialize)]
struct TargetsAnswer {
    status: String,
    #[serde(default)]
    data: Option<TargetsData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct TargetsData {
    #[serde(rename = "activeTargets", default)]
    active_targets: Vec<ActiveTarget>,
}

#[derive(Deserialize)]
struct ActiveTarget {
    #[serde(rename = "scrapePool", default)]
    scrape_pool: String,
    #[serde(rename = "scrapeUrl")]
    scrape_url: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    health: String,
    #[serde(rename = "lastError", default)]
    last_error: String,
}

impl Query {
    async fn discover(&self, http: &reqwest::Client, timeout: Duration) -> Result<Discovered> {
        let up = self.up_instances(http, timeout).await?;
        let found = match self.mode {
            Mode::Targets => {
                let targets = self.targets(http, timeout).await?;
                self.targets_to_replicas(targets, &up)?
            }
            Mode::Up => self.up_to_replicas(&up),
        };
        for r in &found.refused {
            tracing::warn!(
                prometheus = %redact_url(&self.url),
                job = %self.job,
                instance = %r.instance,
                why = %r.why,
                "refused a replica candidate; it is never contacted"
            );
        }
        if found.replicas.is_empty() {
            return Err(Error::Discovery(format!(
                "Prometheus knows no target of job {:?} (query {}{}): nothing was swept",
                self.job,
                up_query(&self.job),
                match found.refused.len() {
                    0 => String::new(),
                    n => format!("; {n} candidate(s) refused"),
                }
            )));
        }
        Ok(found)
    }

    fn targets_to_replicas(&self, targets: Vec<ActiveTarget>, up: &[String]) -> Result<Discovered> {
        let mut replicas = BTreeSet::new();
        let mut refused = Vec::new();
        let mut instances = BTreeSet::new();
        for t in targets {
            let instance = t.labels.get("instance").cloned().unwrap_or_default();
            instances.insert(instance.clone());
            let url = self.base_from_scrape_url(&t.scrape_url, &instance)?;
            tracing::debug!(
                job = %self.job,
                pool = %t.scrape_pool,
                instance = %instance,
                url = %redact_url(&url),
                health = %t.health,
                last_error = %t.last_error,
                "scrape target"
            );
            if !self.allow.allows(&url) {
                refused.push(Refused {
                    instance,
                    url: Some(redact_url(&url)),
                    why: "a scrape target outside the allow-list".into(),
                });
                continue;
            }
            replicas.insert(Replica {
                url,
                instance: Some(instance),
            });
        }
        for instance in up.iter().filter(|i| !instances.contains(*i)) {
            refused.push(Refused {
                instance: instance.clone(),
                url: None,
                why: format!(
                    "an up series of job {:?} with no active scrape target behind it (a pushed `up` sample?)",
                    self.job
                ),
            });
        }
        Ok(Discovered {
            replicas: replicas.into_iter().collect(),
            refused,
        })
    }

    fn up_to_replicas(&self, up: &[String]) -> Discovered {
        let mut replicas = BTreeSet::new();
        let mut refused = Vec::new();
        for instance in up {
            match self.instance_url.to_url(instance) {
                Ok(url) if self.allow.allows(&url) => {
                    replicas.insert(Replica {
                        url,
                        instance: Some(instance.clone()),
                    });
                }
                Ok(url) => refused.push(Refused {
                    instance: instance.clone(),
                    url: Some(redact_url(&url)),
                    why: "outside the allow-list".into(),
                }),
                Err(e) => refused.push(Refused {
                    instance: instance.clone(),
                    url: None,
                    why: Error::Discovery(e).to_string(),
                }),
            }
        }
        Discovered {
            replicas: replicas.into_iter().collect(),
            refused,
        }
    }

    /// A replica's base URL from the scrape URL Prometheus really uses: its scheme and address,
    /// and the path up to `metrics` (the gateway's route prefix), unless a prefix is configured.
    fn base_from_scrape_url(&self, scrape_url: &str, instance: &str) -> Result<Url> {
        let bad = |why: String| {
            Error::Discovery(format!(
                "scrape target {instance:?} of job {:?}: {why}",
                self.job
            ))
        };
        let mut url = Url::parse(scrape_url)
            .map_err(|e| bad(format!("scrape URL {scrape_url:?} is not a URL: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(bad(format!("scrape URL scheme {:?}", url.scheme())));
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        let prefix = self.instance_url.path_prefix.trim_end_matches('/');
        let path = if !prefix.is_empty() {
            format!("{prefix}/")
        } else {
            match url.path().strip_suffix("metrics") {
                Some(base) if base.ends_with('/') => base.to_string(),
                _ => {
                    return Err(bad(format!(
                        "scrape URL {} does not end in /metrics; give the gateways' path prefix",
                        redact_url(&url)
                    )))
                }
            }
        };
        url.set_path(&path);
        Ok(url)
    }

    /// Every `instance` of `up{job=...}`, whatever its value: a poisoned replica shows `up` = 0
    /// and is exactly one that needs cleaning.
    async fn up_instances(&self, http: &reqwest::Client, timeout: Duration) -> Result<Vec<String>> {
        let shown = redact_url(&self.url);
        let client =
            prometheus_http_query::Client::from(http.clone(), self.url.as_str()).map_err(|e| {
                Error::Prometheus {
                    url: shown.clone(),
                    message: "not a usable Prometheus URL".into(),
                    detail: e.to_string(),
                }
            })?;
        let query = up_query(&self.job);
        let answer = tokio::time::timeout(timeout, client.query(&query).get())
            .await
            .map_err(|_| Error::Timeout {
                url: shown.clone(),
                timeout,
            })?
            .map_err(|e| Error::Prometheus {
                url: shown.clone(),
                message: format!("query {query}: {}", query_reason(&e)),
                detail: chain(&e),
            })?;
        let vector = answer.data().as_vector().ok_or_else(|| Error::Prometheus {
            url: shown.clone(),
            message: format!("query {query} did not return an instant vector"),
            detail: String::new(),
        })?;
        let mut instances = BTreeSet::new();
        for series in vector {
            match series.metric().get("instance") {
                Some(instance) => {
                    instances.insert(instance.clone());
                }
                None => tracing::warn!(
                    prometheus = %shown,
                    "an up series of job {:?} has no instance label; skipped",
                    self.job
                ),
            }
        }
        Ok(instances.into_iter().collect())
    }

    /// The job's active targets, from `/api/v1/targets?state=active`.
    async fn targets(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Vec<ActiveTarget>> {
        let shown = redact_url(&self.url);
        let url = self
            .url
            .join("api/v1/targets")
            .expect("a fixed relative path");
        let fetch = async {
            let resp = http
                .get(url)
                .query(&[("state", "active")])
                .send()
                .await
                .map_err(|e| Error::Prometheus {
                    url: shown.clone(),
                    message: format!("targets API: {}", crate::http::public_reason(&e)),
                    detail: chain(&e),
                })?;
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(Error::Prometheus {
                    url: shown.clone(),
                    message: "has no targets API (404 on /api/v1/targets); for Thanos Query, \
                              Mimir or VictoriaMetrics use the up discovery with an allow-list \
                              of replica addresses"
                        .into(),
                    detail: String::new(),
                });
            }
            let body = resp.bytes().await.map_err(|e| Error::Prometheus {
                url: shown.clone(),
                message: format!("targets API: {}", crate::http::public_reason(&e)),
                detail: chain(&e),
            })?;
            let answer: TargetsAnswer =
                serde_json::from_slice(&body).map_err(|e| Error::Prometheus {
                    url: shown.clone(),
                    message: format!(
                        "targets API answered HTTP {} with no valid JSON (line {} column {})",
                        status.as_u16(),
                        e.line(),
                        e.column()
                    ),
                    detail: e.to_string(),
                })?;
            if answer.status != "success" {
                return Err(Error::Prometheus {
                    url: shown.clone(),
                    message: format!(
                        "targets API answered HTTP {} with status {:?}",
                        status.as_u16(),
                        if answer.status == "error" {
                            "error"
                        } else {
                            "other"
                        }
                    ),
                    detail: answer.error.unwrap_or_default(),
                });
            }
            Ok(answer.data.map(|d| d.active_targets).unwrap_or_default())
        };
        let targets =
            tokio::time::timeout(timeout, fetch)
                .await
                .map_err(|_| Error::Timeout {
                    url: shown.clone(),
                    timeout,
                })??;
        Ok(targets
            .into_iter()
            .filter(|t| t.labels.get("job") == Some(&self.job))
            .collect())
    }
}

/// A failed query in the janitor's words: a remote's `error` text and a parser's quotes of the
/// answer stay in the detail.
fn query_reason(e: &prometheus_http_query::Error) -> String {
    use prometheus_http_query::Error as Q;
    match e {
        Q::Client(c) => match c.inner() {
            Some(http) => crate::http::public_reason(http),
            None => "the answer is not a Prometheus API answer".into(),
        },
        Q::Prometheus(p) => format!("Prometheus answered an error ({})", p.error_type()),
        _ => "request failed".into(),
    }
}

#[cfg(test)]
mod tests;
