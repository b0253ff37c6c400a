//! The one way into the engine: every front door turns what its user wrote (`sweep`'s flags, a
//! `PushgatewayRetention` spec) into one [`PolicyInput`], and [`PolicyInput::check`] turns that
//! into a [`CheckedPolicy`] that every later step takes (Stackable's `validate.rs` →
//! `ValidatedCluster`). The same bad input through either door fails the same way, on the same
//! [`Field`], named in that door's words (`--ttl`, `spec.ttl`).
//!
//! The path a policy takes, in order:
//!
//! 1. [`load::PolicyDoc`]: one document of a policy file, parsed, not checked (`run`,
//!    `validate`); the controller has the `PushgatewayRetention` itself, and `sweep` its flags.
//! 2. [`PolicyInput`]: what a front door received, durations and the selector parsed.
//! 3. [`CheckedPolicy`]: every rule met. It holds the sweep's [`SweepConfig`], whose
//!    [`Rules`](crate::plan::Rules) are what the planner applies, and where the replicas are.
//! 4. `runner::CheckedDoc`: the policy-file loop keeps a document with its checked policy, to
//!    tell on a reload what changed. `inspect` shows one policy's `plan::Rules` by name
//!    (`inspect::NamedRules`).
//! 5. `sweep::run` takes the `SweepConfig`.

mod check;
pub mod load;
mod spec;
#[cfg(test)]
pub(crate) mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::field::{AuthPart, Door, Field, FieldName, Remote};

use crate::config::SweepConfig;
use crate::crd::{PushgatewayRetentionSpec, SecretKeyRef};
use crate::discover::{InstanceUrl, ViaPrometheus};
use crate::schedule::Cadence;
use crate::selector::Selector;
use crate::tuning::Tuning;
use crate::Result;

/// A TTL so long it never expires anything: a plain wipe needs no TTL.
pub(crate) const NO_TTL: Duration = Duration::from_secs(100 * 365 * 86_400);

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

/// Checks a spec: the spec door of [`PolicyInput::check`]. `floor` is the front door's own
/// minimum TTL, which no policy goes under.
pub fn check(
    spec: &PushgatewayRetentionSpec,
    floor: Duration,
    tuning: &Tuning,
) -> Result<CheckedPolicy> {
    PolicyInput::from_spec(spec, floor, tuning)?.check()
}
