//! Client for one Pushgateway replica: read its groups, read its status, delete groups.
//!
//! Small on purpose: it knows the gateway's API and nothing of policies. Every call is bounded as
//! a whole by one timeout (connect, headers and the full body), so a replica that hangs mid-body
//! cannot stall a sweep.

mod key;
mod light;
mod read;
mod text;

use std::future::Future;
use std::time::Duration;

use futures::stream::{AbortHandle, Abortable};
use futures::TryStreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, DATE};
use reqwest::{Method, Response};
use url::Url;

pub use key::{escape_name, group_path};

use crate::http::redact_url;
use crate::model::{Labels, Naming, ReplicaStatus, Snapshot, Source};
use crate::progress::Progress;
use crate::{Error, Result};

/// How much of an error body ends up in an `Error::Status`.
const BODY_EXCERPT: usize = 300;

#[derive(Debug, Clone)]
pub struct Gateway {
    base: Url,
    http: reqwest::Client,
    timeout: Duration,
}

impl Gateway {
    /// `base` may carry a route prefix (`http://h:9091/pgw/`); a missing trailing `/` is added so
    /// relative API paths land under the prefix instead of replacing its last segment.
    pub fn new(mut base: Url, http: reqwest::Client, timeout: Duration) -> Self {
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.set_query(None);
        base.set_fragment(None);
        Gateway {
            base,
            http,
            timeout,
        }
    }

    pub fn url(&self) -> &Url {
        &self.base
    }

    /// Reads every group of the replica from `api/v1/metrics`, streaming: memory grows with the
    /// number of groups, not with series or body size. Exact keys and series counts, but the
    /// gateway builds the whole answer in memory before its first byte (see [`Gateway::read`]).
    /// `ttl_metric` names a gauge whose first value becomes each group's `declared_ttl`.
    /// `naming` is the replica's (from its status): a group whose key cannot be addressed under
    /// it is reported unkeyed, never planned.
    pub async fn read_json(&self, ttl_metric: Option<&str>, naming: Naming) -> Result<Snapshot> {
        let url = self.endpoint("api/v1/metrics")?;
        let ttl_metric = ttl_metric.map(str::to_owned);
        self.bounded(&url, async {
            let started = std::time::Instant::now();
            let request = self
                .http
                .get(url.clone())
                .header(ACCEPT, "application/json");
            let response = send(request, &url).await?;
            let response = expect_success(response, &url).await?;
            let clock = clock(&response, &url)?;
            // A gateway builds its whole answer before it sends it: most of a read is this wait.
            tracing::debug!(
                url = %redact_url(&url),
                seconds = started.elapsed().as_secs_f64(),
                "answer started"
            );

            // The abort guard ends the body stream when this future is dropped (timeout or a
            // cancelled caller): the blocking parser then sees EOF and its thread is released
            // instead of waiting on a hung replica.
            let (abort, registration) = AbortHandle::new_pair();
            let _guard = AbortOnDrop(abort);
            let progress = Progress::start(
                format!("read {}", redact_url(&self.base)),
                response.content_length(),
                "bytes",
            );
            let body = Abortable::new(response.bytes_stream(), registration)
                .inspect_ok(move |chunk| progress.add(chunk.len() as u64))
                .map_err(|e| std::io::Error::other(e.without_url()));
            let parsed = read::parse_stream(body, ttl_metric, naming)
                .await
                .map_err(|e| parse_error(e, &url))?;
            tracing::debug!(
                url = %redact_url(&url),
                seconds = started.elapsed().as_secs_f64(),
                groups = parsed.groups.len(),
                "answer read"
            );

            match parsed.status.as_deref() {
                Some("success") => Ok(Snapshot {
                    clock,
                    source: Source::Json,
                    naming,
                    groups: parsed.groups,
                    unkeyed: parsed.unkeyed,
                }),
                status => Err(bad(
                    &url,
                    format!(
                        "status {:?}, error {:?}",
                        status.unwrap_or("<missing>"),
                        parsed.error.as_deref().unwrap_or("")
                    ),
                )),
            }
        })
        .await
    }

    /// `api/v1/status`: whether the admin API is on, the version, the start time (it changes
    /// when the replica restarted) and the flags that matter for cleaning.
    pub async fn status(&self) -> Result<ReplicaStatus> {
        let url = self.endpoint("api/v1/status")?;
        self.bounded(&url, async {
            let request = self
                .http
                .get(url.clone())
                .header(ACCEPT, "application/json");
            let response = expect_success(send(request, &url).await?, &url).await?;
            let body = response.bytes().await.map_err(|e| http_error(e, &url))?;
            let body: StatusBody = serde_json::from_slice(&body)
                .map_err(|e| bad(&url, format!("invalid status body: {e}")))?;
            if body.status != "success" {
                return Err(bad(
                    &url,
                    format!(
                        "status {:?}, error {:?}",
                        body.status,
                        body.error.unwrap_or_default()
                    ),
                ));
            }
            let data = body.data.unwrap_or_default();
            let flag = |name: &str| data.flags.get(name).filter(|v| !v.is_empty()).cloned();
            Ok(ReplicaStatus {
                admin_api: flag("web.enable-admin-api").as_deref() == Some("true"),
                // 1.11+; absent on older versions, which know only legacy names.
                utf8_names: flag("push.enable-utf8-names").as_deref() == Some("true"),
                version: data.build_information.and_then(|b| b.version),
                start_time: data.start_time,
                route_prefix: flag("web.route-prefix"),
                persistence_file: flag("persistence.file"),
            })
        })
        .await
    }

    /// `-/healthy`: `false` when the gateway answers 500 (its write queue is full: back off).
    pub async fn healthy(&self) -> Result<bool> {
        let url = self.endpoint("-/healthy")?;
        self.bounded(&url, async {
            let response = send(self.http.get(url.clone()), &url).await?;
            match response.status().as_u16() {
                200 => Ok(true),
                500 => Ok(false),
                _ => Err(status_error(response, &url).await),
            }
        })
        .await
    }

    /// Deletes one group by its exact key. The gateway only queues the delete and answers 202
    /// even when the group does not exist: re-read to confirm. `naming` is the one of the
    /// snapshot the key came from.
    pub async fn delete(&self, labels: &Labels, naming: Naming) -> Result<()> {
        let url = self.endpoint(&group_path(labels, naming)?)?;
        self.bounded(&url, async {
            let response = send(self.http.delete(url.clone()), &url).await?;
            expect_success(response, &url).await.map(drop)
        })
        .await
    }

    /// Deletes `labels` plus `instance=""`: the twin of a key read from `/metrics` without an
    /// `instance` (`instance_unsure`). [`Gateway::delete`] of `labels` itself removes the group
    /// when it has no instance, the common case; when the confirmation still finds the same copy,
    /// it was this twin. Only one of the two can exist on a replica whose `/metrics` answered, and
    /// a DELETE of a missing group is a no-op, so whichever it is goes, and never a third group.
    pub async fn delete_empty_instance(&self, labels: &Labels, naming: Naming) -> Result<()> {
        let mut twin = labels.clone();
        twin.insert("instance".into(), String::new());
        self.delete(&twin, naming).await
    }

    /// `PUT api/v1/admin/wipe`: queues a delete of every group. Only with `--web.enable-admin-api`.
    pub async fn wipe(&self) -> Result<()> {
        let url = self.endpoint("api/v1/admin/wipe")?;
        self.bounded(&url, async {
            let response = send(self.http.request(Method::PUT, url.clone()), &url).await?;
            // Without the admin API the route does not exist: the error's text says so (`HTTP
            // 404: admin API disabled (needs --web.enable-admin-api)`), not a bare 404.
            expect_success(response, &url).await.map(|_| ())
        })
        .await
    }

    fn endpoint(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| bad(&self.base, format!("cannot join {path:?}: {e}")))
    }

    async fn bounded<T>(&self, url: &Url, op: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, op)
            .await
            .map_err(|_| Error::Timeout {
                url: redact_url(url),
                timeout: self.timeout,
            })?
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct StatusBody {
    status: String,
    data: Option<StatusData>,
    error: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct StatusData {
    #[serde(default)]
    flags: std::collections::HashMap<String, String>,
    build_information: Option<BuildInformation>,
    start_time: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct BuildInformation {
    version: Option<String>,
}

/// Aborts the wrapped stream when dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send(request: reqwest::RequestBuilder, url: &Url) -> Result<Response> {
    request.send().await.map_err(|e| http_error(e, url))
}

async fn expect_success(response: Response, url: &Url) -> Result<Response> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(status_error(response, url).await)
    }
}

/// An `Error::Status` with the start of the body; reads no more of it than the excerpt needs.
async fn status_error(response: Response, url: &Url) -> Error {
    let status = response.status().as_u16();
    let html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let mut stream = response.bytes_stream();
    let mut head = Vec::new();
    while head.len() < BODY_EXCERPT {
        match stream.try_next().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            _ => break,
        }
    }
    head.truncate(BODY_EXCERPT);
    let body = String::from_utf8_lossy(&head);
    // A web server that is no Pushgateway answers a page of markup: name it, do not print it.
    let body = if html || body.trim_start().starts_with('<') {
        "an HTML page".to_string()
    } else {
        body.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    Error::Status {
        url: redact_url(url),
        status,
        body,
    }
}

/// The replica's clock, from the `Date` header, in Unix seconds. Never the local clock: push
/// times are on the replica's clock and ages must be computed on the same one.
fn clock(response: &Response, url: &Url) -> Result<f64> {
    let date = response
        .headers()
        .get(DATE)
        .ok_or_else(|| bad(url, "no Date header: cannot tell the gateway's clock"))?;
    let date = date
        .to_str()
        .ok()
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .ok_or_else(|| bad(url, format!("unreadable Date header {date:?}")))?;
    let since_epoch = date
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad(url, "Date header before 1970"))?;
    Ok(since_epoch.as_secs_f64())
}

/// Any failure to parse the body is a bad response, a connection that broke off mid-body
/// included: the replica's answer is unusable either way. serde's message carries line and column.
fn parse_error(error: read::ReadError, url: &Url) -> Error {
    let io = match error {
        read::ReadError::Io(io) => io,
        invalid if invalid.is_eof() => {
            return bad(url, format!("/api/v1/metrics body ends early: {invalid}"));
        }
        invalid => return bad(url, format!("invalid /api/v1/metrics body: {invalid}")),
    };
    let mut message = format!("body broke off: {io}");
    let mut source = io.get_ref().and_then(|inner| inner.source());
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    bad(url, message)
}

fn http_error(error: reqwest::Error, url: &Url) -> Error {
    Error::Http {
        url: redact_url(url),
        // reqwest's own copy of the URL may carry credentials; ours is redacted.
        source: error.without_url(),
    }
}

fn bad(url: &Url, message: impl Into<String>) -> Error {
    Error::BadResponse {
        url: redact_url(url),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(base: &str) -> Gateway {
        let base = Url::parse(base).unwrap();
        Gateway::new(base, reqwest::Client::new(), Duration::from_secs(1))
    }

    #[test]
    fn base_keeps_its_route_prefix_and_ends_with_a_slash() {
        for base in [
            "http://h:9091/pgw",
            "http://h:9091/pgw/",
            "http://h:9091/pgw?x=1#f",
        ] {
            let gw = gateway(base);
            assert_eq!(gw.url().as_str(), "http://h:9091/pgw/");
            let url = gw.endpoint("api/v1/metrics").unwrap();
            assert_eq!(url.as_str(), "http://h:9091/pgw/api/v1/metrics");
        }
        assert_eq!(gateway("http://h:9091").url().as_str(), "http://h:9091/");
    }

    #[test]
    fn group_urls_are_sent_exactly_as_encoded() {
        let gw = gateway("http://h/pgw");
        let key: Labels = [("job", "a/b"), ("instance", "")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let url = gw
            .endpoint(&group_path(&key, Naming::Legacy).unwrap())
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://h/pgw/metrics/job@base64/YS9i/instance@base64/="
        );
    }

    #[tokio::test]
    async fn an_aborted_body_releases_the_blocking_parser() {
        // A body that never ends, like a replica hanging mid-body: once the read is dropped, the
        // parser thread must see EOF instead of blocking forever.
        let (abort, registration) = AbortHandle::new_pair();
        let body = futures::stream::pending::<std::io::Result<bytes::Bytes>>();
        let parser = tokio::spawn(read::parse_stream(
            Abortable::new(body, registration),
            None,
            Naming::Legacy,
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(AbortOnDrop(abort));
        let parsed = tokio::time::timeout(Duration::from_secs(5), parser).await;
        let err = parsed.expect("parser released").unwrap().unwrap_err();
        assert!(err.is_eof(), "{err}");
    }

    #[test]
    fn urls_in_errors_carry_no_credentials() {
        let url = Url::parse("http://user:secret@h:9091/pgw/api/v1/metrics").unwrap();
        assert_eq!(redact_url(&url), "http://h:9091/pgw/api/v1/metrics");
        let message = bad(&url, "x").to_string();
        assert!(
            !message.contains("secret") && !message.contains("user"),
            "{message}"
        );
    }
}
