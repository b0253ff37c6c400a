//! Where a policy's replicas are, as its checked form says it: a Prometheus job (and how its
//! `instance` labels become URLs, and which addresses are allowed), or gateway base URLs. Finding
//! them (the queries, the Kubernetes API) is the main crate's `discover` and `k8s`.

mod allow;

use url::Url;

pub use allow::AllowList;

use crate::{Error, Result};

/// How Prometheus tells which targets are replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The targets API lists the replicas; `up` series that are no target are refused.
    #[default]
    Targets,
    /// Only the `up` query, for Prometheus-compatible servers without a targets API; needs an
    /// allow-list.
    Up,
}

/// A Prometheus source, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ViaPrometheus {
    pub url: Url,
    pub job: String,
    pub mode: Mode,
    /// With [`Mode::Up`], how an `instance` becomes a URL. With [`Mode::Targets`], only a
    /// non-empty path prefix is used, in place of the one the scrape URL gives.
    pub instance_url: InstanceUrl,
    pub allow: AllowList,
}

/// The PromQL selector for a job's targets, with the job name escaped as a PromQL string.
pub fn up_query(job: &str) -> String {
    let escaped = job.replace('\\', "\\\\").replace('"', "\\\"");
    format!("up{{job=\"{escaped}\"}}")
}

/// How an `instance` label becomes a gateway base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// The gateway's `--web.route-prefix`, e.g. `/pushgateway`; empty for none.
    pub path_prefix: String,
}

impl Default for InstanceUrl {
    fn default() -> Self {
        InstanceUrl {
            scheme: "http".into(),
            path_prefix: String::new(),
        }
    }
}

impl InstanceUrl {
    pub fn validate(&self) -> Result<()> {
        if self.scheme != "http" && self.scheme != "https" {
            return Err(Error::config(
                "gateway scheme",
                format!("{:?} is neither http nor https", self.scheme),
            ));
        }
        if !self.path_prefix.is_empty() && !self.path_prefix.starts_with('/') {
            return Err(Error::config(
                "gateway path prefix",
                format!("{:?} must start with '/'", self.path_prefix),
            ));
        }
        Ok(())
    }

    /// The base URL of the replica found under `instance`; the error says why there is none,
    /// for discovery to report (the remote's data is at fault, not the user's input).
    pub fn to_url(&self, instance: &str) -> std::result::Result<Url, String> {
        let prefix = self.path_prefix.trim_end_matches('/');
        let text = format!("{}://{}{}/", self.scheme, instance, prefix);
        let url = Url::parse(&text)
            .map_err(|e| format!("instance {instance:?} does not make a URL ({text}): {e}"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("instance {instance:?} has no host"));
        }
        Ok(url)
    }
}

/// Parses a gateway base URL the user gave, normalised to end in `/` so relative API paths
/// land under its route prefix.
pub fn parse_base_url(what: &str, text: &str) -> Result<Url> {
    let mut url =
        Url::parse(text).map_err(|e| Error::config(what, format!("{text:?} is not a URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::config(
            what,
            format!("{text:?}: scheme must be http or https"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(what, format!("{text:?} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(
            what,
            format!("{text:?}: a base URL takes no query or fragment"),
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}
