//! The light read of a replica: push times from `GET /metrics` (see `text.rs` for the parse),
//! the JSON API only where `/metrics` cannot give the groups exactly.

use futures::TryStreamExt;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE};

use super::{
    clock, parse_error, read, send, status_error, text, Gateway, Naming, Progress, Result,
    Snapshot, Source,
};
use crate::http::redact_url;

impl Gateway {
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
            // network (see docs/benchmarks.md, "Reading a big replica").
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
            let progress = Progress::start(
                format!("read {}", redact_url(&self.base)),
                response.content_length(),
                "bytes",
            );
            // Parsed in this future: dropping it (a timeout, a cancelled caller) drops the body.
            let body = response
                .bytes_stream()
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
