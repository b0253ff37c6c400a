//! The `PushgatewayRetention` custom resource. Doc comments here become `kubectl explain`.
//!
//! The YAML under `crds/` is generated from these types (`pushgateway-janitor crd`); a test fails
//! when the two drift.

// kube-derive's `printcolumn(...)` repeats `type_ = ...` once per column, which clippy mistakes
// for a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A retention policy for the groups on a set of Pushgateway replicas: which groups, how old they
/// may get, and what to do with the stale ones.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "pgw-janitor.dev",
    version = "v1alpha1",
    kind = "PushgatewayRetention",
    namespaced,
    status = "PushgatewayRetentionStatus",
    shortname = "pgr",
    category = "pushgateway",
    doc = "A retention policy that the janitor enforces on Pushgateway replicas",
    printcolumn(name = "TTL", type_ = "string", json_path = ".spec.ttl"),
    printcolumn(name = "Action", type_ = "string", json_path = ".spec.action"),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.lastSweep.replicasFound"
    ),
    printcolumn(
        name = "Deleted",
        type_ = "integer",
        json_path = ".status.totals.deleted"
    ),
    printcolumn(
        name = "Last Sweep",
        type_ = "date",
        json_path = ".status.lastSweep.startTime"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    )
)]
#[x_kube(
    cel,
    validation = Rule::new("[has(self.prometheus), has(self.service), has(self.static)].filter(x, x).size() == 1").message("set exactly one gateway source: prometheus, service or static"),
    validation = Rule::new("self.action == 'Wipe' || has(self.ttl)").message("ttl is required when action is DeleteGroups"),
    validation = Rule::new("self.action == 'Wipe' || !has(self.schedule)").message("schedule is only for action Wipe"),
    validation = Rule::new("!self.onlyIfAllStale || (self.action == 'Wipe' && has(self.ttl))").message("onlyIfAllStale needs action Wipe and a ttl"),
    validation = Rule::new("!has(self.prometheus) || !has(self.prometheus.discovery) || self.prometheus.discovery != 'Up' || has(self.prometheus.allowedReplicas)").message("prometheus.discovery Up needs prometheus.allowedReplicas: a pushed up sample can name any host"),
    validation = Rule::new("!has(self.ttl) || !self.ttl.matches('^([0-9]+(ms|s|m|h))+$') || !self.minTtl.matches('^([0-9]+(ms|s|m|h))+$') || duration(self.ttl) >= duration(self.minTtl)").message("ttl is under minTtl")
)]
#[serde(rename_all = "camelCase")]
pub struct PushgatewayRetentionSpec {
    /// Find the replicas through Prometheus: the scrape targets of one job, whatever their `up`
    /// value (a poisoned replica shows up = 0 and is exactly one that needs cleaning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSource>,
    /// Find the replicas through a Service in this namespace, from its EndpointSlices (every
    /// endpoint, ready or not). Needs no Prometheus; only works in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSource>,
    /// A fixed list of replica base URLs.
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_: Option<StaticSource>,
    /// Credentials and TLS for talking to the gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_auth: Option<HttpAuthRefs>,

    /// Delete groups older than this, on their own replica's clock: `90s`, `1h30m`, `6h`, `7d`.
    /// Required for action DeleteGroups, and for Wipe with `onlyIfAllStale`. Refused with a plain
    /// Wipe, which removes every selected group whatever its age: the TTL would be ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d|w|y))+$"))]
    pub ttl: Option<String>,
    /// The shortest TTL this policy accepts, for `ttl` and for TTLs declared by pushers. The
    /// controller also has a floor of its own that no policy goes under.
    #[serde(default = "default_min_ttl")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d|w|y))+$"))]
    pub min_ttl: String,
    /// Only groups whose grouping labels match these Prometheus label matchers, e.g.
    /// `{job=~"nightly-.*", env!="dev"}`. Groups outside it are never touched. Empty: all groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Let pushers declare their own TTL with a gauge in their group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_from_metric: Option<TtlFromMetric>,
    /// Delete copies of a group that another replica holds in a newer push (the stale copies a
    /// load balancer leaves behind). On by default.
    #[serde(default)]
    pub superseded: Superseded,
    /// DeleteGroups deletes the stale groups; Wipe wipes whole replicas (at `schedule`, or every
    /// `interval`).
    #[serde(default)]
    pub action: RetentionAction,
    /// When to wipe, for action Wipe. Without it, a Wipe policy wipes every `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// With action Wipe: wipe a replica only when every selected group on it is stale under `ttl`.
    #[serde(default)]
    pub only_if_all_stale: bool,
    /// Time between sweeps.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d|w|y))+$"))]
    pub interval: String,
    /// Report what would be deleted, in status and events, and delete nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Abort a sweep before its first delete when its plan deletes more than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deletions: Option<MaxDeletions>,
    /// Stop sweeping this policy until set back to false.
    #[serde(default)]
    pub suspend: bool,
}

fn default_min_ttl() -> String {
    "1m".into()
}

fn default_interval() -> String {
    "5m".into()
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSource {
    /// Prometheus base URL, e.g. `http://prometheus.monitoring:9090`.
    #[schemars(length(min = 1))]
    pub url: String,
    /// The scrape job whose targets are the gateway replicas.
    #[schemars(length(min = 1))]
    pub job: String,
    /// How Prometheus tells which targets are replicas. `Targets` (the default): the job's active
    /// scrape targets from Prometheus' targets API, each at the scheme, address and path
    /// Prometheus scrapes; an `up` series with no target behind it (a sample pushed through a
    /// gateway scraped with `honor_labels`) is refused, reported and never contacted. `Up`: only
    /// the `up{job="<job>"}` query, for servers without a targets API (Thanos Query, Mimir,
    /// VictoriaMetrics); it needs `allowedReplicas`, since anyone who can push can add an `up`
    /// series naming any host.
    #[serde(default)]
    pub discovery: Discovery,
    /// Where replicas may be: a replica whose address matches none of these is refused and never
    /// contacted. Required with `discovery: Up`; with `Targets`, an extra bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_replicas: Option<AllowedReplicas>,
    /// With `discovery: Up`, the scheme for turning an `instance` label into a gateway URL.
    /// (`Targets` uses the scheme Prometheus scrapes with.)
    #[serde(default = "default_scheme")]
    pub scheme: Scheme,
    /// The gateways' `--web.route-prefix`, e.g. `/pushgateway`. With `Targets`, the prefix is
    /// otherwise taken from the scrape URL (its path before `metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Credentials and TLS for talking to Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<HttpAuthRefs>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum Discovery {
    #[default]
    Targets,
    Up,
}

/// Addresses a replica may have; one match is enough.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AllowedReplicas {
    /// Host names or IP addresses, with or without `:port`, e.g. `pgw-0.pgw.monitoring.svc:9091`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// IP ranges, e.g. `10.42.0.0/16`; they match replicas addressed by IP only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// A regular expression, anchored, over `host:port`, e.g. `pgw-[0-9]+\.pgw\.monitoring\.svc:9091`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSource {
    /// Name of a Service in the policy's namespace that selects the gateway pods.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The Service port's name, or the port number the gateway pods listen on (the target port,
    /// as EndpointSlices list it), as a string. Empty: the only port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Scheme the gateways serve.
    #[serde(default = "default_scheme")]
    pub scheme: Scheme,
    /// The gateways' `--web.route-prefix`, e.g. `/pushgateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticSource {
    /// Base URLs of the replicas, route prefix included, e.g. `http://pgw-0.pgw:9091`.
    #[schemars(length(min = 1))]
    pub urls: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

fn default_scheme() -> Scheme {
    Scheme::Http
}

/// Where to find credentials and TLS material: keys of Secrets in the policy's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct HttpAuthRefs {
    /// Basic auth user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_username: Option<String>,
    /// Basic auth password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_password: Option<SecretKeyRef>,
    /// A bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<SecretKeyRef>,
    /// PEM bundle of CAs to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<SecretKeyRef>,
    /// PEM client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<SecretKeyRef>,
    /// PEM private key of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<SecretKeyRef>,
}

// A key of a Secret in the policy's namespace: the core's, since a checked policy holds it.
pub use pushgateway_janitor_core::policy::SecretKeyRef;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TtlFromMetric {
    /// The gauge a pusher sets in its group to declare its own TTL, in seconds.
    #[schemars(length(min = 1))]
    pub metric: String,
    /// The longest TTL a pusher may declare. The shortest is `minTtl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d|w|y))+$"))]
    pub max: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Superseded {
    /// Delete older copies of a group found on other replicas.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A copy is stale only when the newest copy was pushed more than this later.
    #[serde(default = "default_grace")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d|w|y))+$"))]
    pub grace: String,
}

impl Default for Superseded {
    fn default() -> Self {
        Superseded {
            enabled: true,
            grace: default_grace(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_grace() -> String {
    "1m".into()
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum RetentionAction {
    #[default]
    DeleteGroups,
    Wipe,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// A five-field cron expression, e.g. `0 3 * * *` for 03:00 every day.
    #[schemars(length(min = 1))]
    pub cron: String,
    /// IANA time zone the cron expression is read in, e.g. `Europe/Berlin`. Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaxDeletions {
    /// At most this many groups per sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub count: Option<i64>,
    /// At most this percent of the groups seen per sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub percent: Option<f64>,
}

/// What the janitor last did for this policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushgatewayRetentionStatus {
    /// Ready, Degraded, SpecInvalid, GuardTripped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The most recent sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sweep: Option<LastSweep>,
    /// Counts over every sweep of this policy since it was created.
    #[serde(default)]
    pub totals: Totals,
    /// When the next wipe is due, for a scheduled Wipe policy (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled_wipe: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastSweep {
    /// RFC 3339.
    pub start_time: String,
    pub duration_seconds: f64,
    pub replicas_found: i64,
    pub replicas_failed: i64,
    pub groups_seen: i64,
    pub deleted: i64,
    /// In dry run: the groups that would have been deleted.
    pub would_delete: i64,
    pub failed_deletes: i64,
    pub dry_run: bool,
    /// Per replica: its state and error.
    #[serde(default)]
    pub replicas: Vec<ReplicaStatusSummary>,
    /// Up to ten of the groups deleted (or that would be), for `kubectl describe`.
    #[serde(default)]
    pub sample: Vec<String>,
    /// Up to ten candidates discovery refused and never contacted (an `up` series with no scrape
    /// target behind it, an address outside `allowedReplicas`), each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatusSummary {
    pub url: String,
    /// ok or failed.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub sweeps: i64,
    pub deleted: i64,
    pub failed_sweeps: i64,
}

#[cfg(test)]
mod tests;
