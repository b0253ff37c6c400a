//! A policy on its way into the engine: what a front door received ([`PolicyInput`]), and what
//! the one checker ([`PolicyInput::check`]) makes of it ([`CheckedPolicy`]). The doors (flags, a
//! `PushgatewayRetention` spec, policy files) are the main crate's `policy` and `cli`.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::SweepConfig;
use crate::field::Door;
use crate::schedule::Cadence;
use crate::selector::Selector;
use crate::source::{InstanceUrl, ViaPrometheus};
use crate::tuning::Tuning;

mod check;

/// A TTL so long it never expires anything: a plain wipe needs no TTL.
pub const NO_TTL: Duration = Duration::from_secs(100 * 365 * 86_400);

/// One policy as a front door received it: parsed (durations, the selector), not yet checked.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    /// Whose words the errors use.
    pub door: Door,
    pub prometheus: Option<PrometheusInput>,
    pub service: Option<ServiceInput>,
    /// `--gateway` URLs, `spec.static.urls`.
    pub static_urls: Option<Vec<String>>,
    pub prometheus_auth: AuthInput,
    pub gateway_auth: AuthInput,
    pub ttl: Option<Duration>,
    pub min_ttl: Duration,
    /// The front door's own floor (`run` and `controller --min-ttl`), which no policy goes
    /// under whatever its `minTtl` says. Zero for `sweep`, whose `--min-ttl` is the floor.
    pub floor: Duration,
    pub selector: Selector,
    /// `None`: superseded copies are kept.
    pub superseded_grace: Option<Duration>,
    pub ttl_from_metric: Option<String>,
    pub max_ttl: Option<Duration>,
    /// Wipe instead of deleting the stale groups.
    pub wipe: bool,
    pub only_if_all_stale: bool,
    pub max_deletions: Option<i64>,
    pub max_deletions_percent: Option<f64>,
    pub dry_run: bool,
    /// How often, for the long-running doors; a one-shot `sweep` has none.
    pub cadence: Option<CadenceInput>,
    pub suspend: bool,
    /// The front door's tuning flags (never part of a spec).
    pub tuning: Tuning,
}

#[derive(Debug, Clone, Default)]
pub struct PrometheusInput {
    pub url: String,
    pub job: String,
    /// `Up` discovery: only the `up` query, which needs an allow-list.
    pub up: bool,
    pub allowed_hosts: Vec<String>,
    pub allowed_cidrs: Vec<String>,
    pub allowed_regex: Option<String>,
    pub scheme: String,
    pub path_prefix: String,
}

#[derive(Debug, Clone)]
pub struct ServiceInput {
    pub name: String,
    pub port: Option<String>,
    pub scheme: String,
    pub path_prefix: String,
}

#[derive(Debug, Clone)]
pub struct CadenceInput {
    pub interval: Duration,
    pub cron: Option<String>,
    pub time_zone: Option<String>,
}

/// Where a secret value is: a file the user named (`sweep`'s `--*-file` flags), or a key of a
/// Secret (a spec's references, read from a mounted directory or from the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    File(PathBuf),
    Key(SecretKeyRef),
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::File(path) => write!(f, "file {}", path.display()),
            SecretRef::Key(k) => write!(f, "Secret {:?} key {:?}", k.name, k.key),
        }
    }
}

/// One remote's credentials and TLS material, as references; resolved by `prepare`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInput {
    pub basic_user: Option<String>,
    pub basic_password: Option<SecretRef>,
    pub bearer_token: Option<SecretRef>,
    pub ca: Option<SecretRef>,
    pub client_certificate: Option<SecretRef>,
    pub client_key: Option<SecretRef>,
}

/// Where a policy's replicas are, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    Prometheus(ViaPrometheus),
    Service {
        name: String,
        port: Option<String>,
        instance_url: InstanceUrl,
    },
    Static(Vec<url::Url>),
}

/// A policy ready to run: the sweep, where its replicas are, how to reach them, and how often.
#[derive(Debug, Clone)]
pub struct CheckedPolicy {
    pub door: Door,
    pub sweep: SweepConfig,
    pub source: SourceSpec,
    pub prometheus_auth: AuthInput,
    pub gateway_auth: AuthInput,
    pub cadence: Cadence,
    pub suspend: bool,
}

impl PolicyInput {
    /// An input from the flags door with every flag's default, for the command line to fill.
    pub fn flags() -> Self {
        PolicyInput {
            door: Door::Flags,
            prometheus: None,
            service: None,
            static_urls: None,
            prometheus_auth: AuthInput::default(),
            gateway_auth: AuthInput::default(),
            ttl: None,
            min_ttl: Duration::from_secs(60),
            floor: Duration::ZERO,
            selector: Selector::default(),
            superseded_grace: Some(Duration::from_secs(60)),
            ttl_from_metric: None,
            max_ttl: None,
            wipe: false,
            only_if_all_stale: false,
            max_deletions: None,
            max_deletions_percent: None,
            dry_run: false,
            cadence: None,
            suspend: false,
            tuning: Tuning::default(),
        }
    }
}

/// A key of a Secret in the policy's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The key within the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}
