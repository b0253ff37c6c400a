//! Client for one Pushgateway replica: read its groups, read its status, delete groups.
//!
//! Small on purpose: it knows the gateway's API and nothing of policies. Every call is bounded as
//! a whole by one timeout (connect, headers and the full body), so a replica that hangs mid-body
//! cannot stall a sweep.

mod key;
mod read;
mod text;

use std::future::Future;
use std::time::Duration;

use futures::stream::{AbortHandle, Abortable};
use futures::TryStreamExt;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, DATE};
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

    /// Reads every group of the replica the light way: push times from `GET /metrics`, every
    /// other line skipped (see `text.rs`), which costs the gateway about 1.1x its resting memory
    /// where the JSON API costs 1.9x (1.11.3) to 2.5x (1.5.1). Where `/metrics` cannot give the
    /// groups exactly (it answers 500 on a poisoned replica, or escapes UTF-8 names, or shows a
    /// declared TTL that fits two groups...), it reads the JSON API instead ([`Gateway::read_json`]).
    /// Keys whose `instance` may be absent or empty come back `instance_unsure`.
    ///
    /// `PGW_JANITOR_READ=json` in the environment forces the JSON read: for tests and benchmarks
    /// that compare the two.
    pub async fn read(&self, ttl_metric: Option<&str>, naming: Naming) -> Result<Snapshot> {
        if std::env::var_os("PGW_JANITOR_READ").is_some_and(|v| v == "json") {
            tracing::debug!(url = %redact_url(&self.base), "JSON read forced by PGW_JANITOR_READ");
            return self.read_json(ttl_metric, naming).await;
        }
        match self.read_metrics(ttl_metric, naming).await? {
            Ok(snapshot) => Ok(snapshot),
            Err(why) => {
                tracing::info!(
                    url = %redact_url(&self.base),
                    why,
                    "/metrics cannot give the groups exactly: reading /api/v1/metrics instead"
                );
                self.read_json(ttl_metric, naming).await
            }
        }
    }

    /// The light read of `GET /metrics`. `Ok(Err(why))`: this answer cannot give the groups
    /// exactly, read the JSON API. An error without an answer (refused, timed out, a body that
    /// broke off) is returned as it is: the JSON read would meet the same.
    async fn read_metrics(
        &self,
        ttl_metric: Option<&str>,
        naming: Naming,
    ) -> Result<std::result::Result<Snapshot, String>> {
        let url = self.endpoint("metrics")?;
        let ttl_metric = ttl_metric.map(str::to_owned);
        self.bounded(&url, async {
            let started = std::time::Instant::now();
            // `escaping=allow-utf-8` asks for UTF-8 names quoted, not escaped to `_` (which
            // another group may really use). 1.5.1 ignores it; it knows only legacy names.
            // No gzip: on the gateway it costs more CPU than the bytes it saves on a cluster's
            // network (see the README's read benchmark).
            let request = self
                .http
                .get(url.clone())
                .header(ACCEPT, "text/plain;version=1.0.0;escaping=allow-utf-8")
                .header(ACCEPT_ENCODING, "identity");
            let response = send(request, &url).await?;
            if !response.status().is_success() {
                let error = status_error(response, &url).await;
                return Ok(Err(format!("{error}")));
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if let Err(why) = text_form_fits(content_type, naming) {
                return Ok(Err(why));
            }
            let clock = clock(&response, &url)?;
            tracing::debug!(
                url = %redact_url(&url),
                seconds = started.elapsed().as_secs_f64(),
                "answer started"
            );
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
            let parsed = match text::parse_stream(body, ttl_metric, naming).await {
                Ok(parsed) => parsed,
                Err(text::TextError::Unusable(why)) => return Ok(Err(why)),
                Err(text::TextError::Io(io)) => {
                    return Err(parse_error(read::ReadError::Io(io), &url))
                }
            };
            tracing::debug!(
                url = %redact_url(&url),
                seconds = started.elapsed().as_secs_f64(),
                groups = parsed.groups.len(),
                source = Source::Metrics.as_str(),
                "answer read"
            );
            Ok(Ok(Snapshot {
                clock,
                source: Source::Metrics,
                naming,
                groups: parsed.groups,
                unkeyed: parsed.unkeyed,
            }))
        })
        .await
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
            match expect_success(response, &url).await {
                Ok(_) => Ok(()),
                // Without the admin API the route does not exist; say so instead of a bare 404.
                Err(Error::Status {
                    url,
                    status: 404,
                    body,
                }) => Err(Error::Status {
                    url,
                    status: 404,
                    body: format!("{body} (admin API disabled: needs --web.enable-admin-api)"),
                }),
                Err(e) => Err(e),
            }
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
    Error::Status {
        url: redact_url(url),
        status,
        body: body.split_whitespace().collect::<Vec<_>>().join(" "),
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

/// Whether a `/metrics` answer is the text format, in a form whose label names are exact for a
/// replica of this naming: with UTF-8 names possible, only `escaping=allow-utf-8` (names quoted,
/// as 1.11.3 answers the request) is; any other escaping would turn `service.name` into
/// `service_name`, a name another group may really use.
fn text_form_fits(content_type: &str, naming: Naming) -> std::result::Result<(), String> {
    let mut parts = content_type.split(';').map(str::trim);
    if !parts
        .next()
        .unwrap_or("")
        .eq_ignore_ascii_case("text/plain")
    {
        return Err(format!(
            "/metrics answered {content_type:?}, not the text format"
        ));
    }
    let params: Vec<(String, String)> = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            )
        })
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if !matches!(param("version"), Some("0.0.4" | "1.0.0")) {
        return Err(format!(
            "/metrics answered {content_type:?}, an unknown text version"
        ));
    }
    if naming != Naming::Legacy && param("escaping") != Some("allow-utf-8") {
        return Err(format!(
            "/metrics answered {content_type:?}: UTF-8 label names would not be exact"
        ));
    }
    Ok(())
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

    /// What each gateway answers to `Accept: text/plain;version=1.0.0;escaping=allow-utf-8`
    /// (checked by hand, December 2026): 1.5.1 ignores the escaping, 1.11.3 honours it with or
    /// without `--push.enable-utf8-names`, and says `escaping=underscores` when not asked.
    #[test]
    fn the_text_form_must_keep_utf8_names_exact_where_a_replica_may_hold_them() {
        let v151 = "text/plain; version=0.0.4; charset=utf-8";
        let v1113 = "text/plain; version=0.0.4; charset=utf-8; escaping=allow-utf-8";
        let underscores = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";
        let cases = [
            (v151, [true, false, false]),
            (v1113, [true, true, true]),
            (underscores, [true, false, false]),
            (
                "text/plain; version=1.0.0; escaping=allow-utf-8",
                [true, true, true],
            ),
            ("TEXT/PLAIN; Version=\"0.0.4\"", [true, false, false]),
            (
                "text/plain; version=2.0.0; escaping=allow-utf-8",
                [false; 3],
            ),
            ("text/plain", [false; 3]),
            ("application/json", [false; 3]),
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                [false; 3],
            ),
            (
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; \
                 encoding=delimited; escaping=allow-utf-8",
                [false; 3],
            ),
        ];
        for (content_type, fits) in cases {
            for (naming, fits) in [Naming::Legacy, Naming::Utf8, Naming::Unknown]
                .into_iter()
                .zip(fits)
            {
                let got = text_form_fits(content_type, naming);
                assert_eq!(got.is_ok(), fits, "{content_type} {naming:?}: {got:?}");
            }
        }
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
