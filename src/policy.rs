//! From a `PushgatewayRetention` spec to the engine's configuration, checking what the schema and
//! CEL cannot (a regex, a cron expression, a time zone). Errors name the field, so they can go
//! into a `SpecInvalid` condition as they are.

use std::str::FromStr;
use std::time::Duration;

use crate::crd::{Discovery, PushgatewayRetentionSpec, RetentionAction, Scheme};
use crate::discover::{self, parse_base_url, AllowList, Discovered, InstanceUrl, ViaPrometheus};
use crate::duration::parse_duration;
use crate::guard::Limits;
use crate::plan::{Action, Policy};
use crate::schedule::Cadence;
use crate::selector::Selector;
use crate::sweep::{Sweep, Tuning};
use crate::{Error, Result};

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

impl SourceSpec {
    /// The replicas of a `prometheus` or `static` source, and what discovery refused. Zero
    /// replicas is an error, not a clean run. A `service` source needs the cluster: the
    /// controller resolves it itself.
    pub async fn discover_without_cluster(
        &self,
        prometheus_http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Discovered> {
        match self {
            SourceSpec::Static(urls) => Ok(discover::from_static(urls).into()),
            SourceSpec::Prometheus(source) => source.discover(prometheus_http, timeout).await,
            SourceSpec::Service { name, .. } => Err(Error::config(
                "spec.service",
                format!("Service {name:?}: a service source needs a cluster; use prometheus or static without one"),
            )),
        }
    }
}

/// A policy ready to run: the sweep, where its replicas are, and how often.
#[derive(Debug, Clone)]
pub struct CheckedPolicy {
    pub sweep: Sweep,
    pub source: SourceSpec,
    pub cadence: Cadence,
    pub suspend: bool,
}

/// A TTL so long it never expires anything: a plain wipe needs no TTL.
const NO_TTL: Duration = Duration::from_secs(100 * 365 * 86_400);

fn duration_field(field: &str, text: &str) -> Result<Duration> {
    parse_duration(text).map_err(|e| Error::config(field, e.to_string()))
}

fn instance_url(field: &str, scheme: Scheme, prefix: &Option<String>) -> Result<InstanceUrl> {
    let u = InstanceUrl {
        scheme: match scheme {
            Scheme::Http => "http".into(),
            Scheme::Https => "https".into(),
        },
        path_prefix: prefix.clone().unwrap_or_default(),
    };
    u.validate()
        .map_err(|e| Error::config(format!("{field}.pathPrefix"), e.to_string()))?;
    Ok(u)
}

fn prometheus_source(p: &crate::crd::PrometheusSource) -> Result<ViaPrometheus> {
    if p.job.is_empty() {
        return Err(Error::config("spec.prometheus.job", "must not be empty"));
    }
    let allowed = p.allowed_replicas.clone().unwrap_or_default();
    let allow = AllowList::new(
        &allowed.hosts,
        &allowed.cidrs,
        allowed.regex.as_deref(),
        |list, i| match i {
            Some(i) => format!("spec.prometheus.allowedReplicas.{list}[{i}]"),
            None => format!("spec.prometheus.allowedReplicas.{list}"),
        },
    )?;
    let mode = match p.discovery {
        Discovery::Targets => discover::Mode::Targets,
        Discovery::Up if allow.is_empty() => {
            return Err(Error::config(
                "spec.prometheus.allowedReplicas",
                "is required with discovery Up: a pushed up sample can name any host",
            ))
        }
        Discovery::Up => discover::Mode::Up,
    };
    Ok(ViaPrometheus {
        url: parse_base_url("spec.prometheus.url", &p.url)?,
        job: p.job.clone(),
        mode,
        instance_url: instance_url("spec.prometheus", p.scheme, &p.path_prefix)?,
        allow,
    })
}

/// Checks a spec. `floor` is the controller's own minimum TTL, which no policy goes under.
pub fn check(
    spec: &PushgatewayRetentionSpec,
    floor: Duration,
    tuning: &Tuning,
) -> Result<CheckedPolicy> {
    let source = match (&spec.prometheus, &spec.service, &spec.static_) {
        (Some(p), None, None) => SourceSpec::Prometheus(prometheus_source(p)?),
        (None, Some(s), None) => SourceSpec::Service {
            name: s.name.clone(),
            port: s.port.clone().filter(|p| !p.is_empty()),
            instance_url: instance_url("spec.service", s.scheme, &s.path_prefix)?,
        },
        (None, None, Some(s)) => {
            if s.urls.is_empty() {
                return Err(Error::config("spec.static.urls", "lists no URL"));
            }
            SourceSpec::Static(
                s.urls
                    .iter()
                    .enumerate()
                    .map(|(i, u)| parse_base_url(&format!("spec.static.urls[{i}]"), u))
                    .collect::<Result<_>>()?,
            )
        }
        _ => {
            return Err(Error::config(
                "spec",
                "set exactly one gateway source: prometheus, service or static",
            ))
        }
    };
    let min_ttl = duration_field("spec.minTtl", &spec.min_ttl)?.max(floor);
    let action = match spec.action {
        RetentionAction::DeleteGroups => Action::DeleteGroups,
        RetentionAction::Wipe => Action::Wipe {
            only_if_all_stale: spec.only_if_all_stale,
        },
    };
    if spec.only_if_all_stale && spec.action != RetentionAction::Wipe {
        return Err(Error::config(
            "spec.onlyIfAllStale",
            "goes with action Wipe",
        ));
    }
    let ttl = match (&spec.ttl, spec.action) {
        (Some(t), _) => duration_field("spec.ttl", t)?,
        (None, RetentionAction::Wipe) if !spec.only_if_all_stale => NO_TTL,
        (None, _) => return Err(Error::config("spec.ttl", "is required for this action")),
    };
    let selector = match &spec.selector {
        Some(s) => {
            Selector::from_str(s).map_err(|e| Error::config("spec.selector", e.to_string()))?
        }
        None => Selector::default(),
    };
    let (ttl_from_metric, max_ttl) = match &spec.ttl_from_metric {
        Some(t) => (
            Some(t.metric.clone()),
            t.max
                .as_deref()
                .map(|m| duration_field("spec.ttlFromMetric.max", m))
                .transpose()?,
        ),
        None => (None, None),
    };
    let superseded_grace = if spec.superseded.enabled {
        Some(duration_field(
            "spec.superseded.grace",
            &spec.superseded.grace,
        )?)
    } else {
        None
    };
    let limits = Limits {
        max_deletions: match spec.max_deletions.as_ref().and_then(|m| m.count) {
            Some(n) if n < 0 => {
                return Err(Error::config(
                    "spec.maxDeletions.count",
                    "must not be negative",
                ))
            }
            Some(n) => Some(n as u64),
            None => None,
        },
        max_deletions_percent: spec.max_deletions.as_ref().and_then(|m| m.percent),
    };
    let sweep = Sweep {
        // The front door names it: the spec does not know its own name.
        name: String::new(),
        policy: Policy {
            ttl,
            selector,
            superseded_grace,
            ttl_from_metric,
            min_ttl,
            max_ttl,
            action,
        },
        limits,
        dry_run: spec.dry_run,
        tuning: tuning.clone(),
        permit: Default::default(),
    };
    sweep.validate().map_err(|e| match e {
        Error::Config { what, message } if what == "ttl" => Error::config("spec.ttl", message),
        Error::Config { what, message } if what.contains("percent") => {
            Error::config("spec.maxDeletions.percent", message)
        }
        other => other,
    })?;
    let interval = duration_field("spec.interval", &spec.interval)?;
    if interval < Duration::from_secs(1) {
        return Err(Error::config("spec.interval", "must be at least 1s"));
    }
    let (schedule, time_zone) = match &spec.schedule {
        Some(s) => {
            if spec.action != RetentionAction::Wipe {
                return Err(Error::config("spec.schedule", "is only for action Wipe"));
            }
            let cron = croner::Cron::from_str(&s.cron)
                .map_err(|e| Error::config("spec.schedule.cron", format!("{:?}: {e}", s.cron)))?;
            let tz = match &s.time_zone {
                Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| {
                    Error::config("spec.schedule.timeZone", format!("{name:?}: {e}"))
                })?,
                None => jiff::tz::TimeZone::UTC,
            };
            (Some(cron), tz)
        }
        None => (None, jiff::tz::TimeZone::UTC),
    };
    Ok(CheckedPolicy {
        sweep,
        source,
        cadence: Cadence {
            interval,
            cron: schedule,
            time_zone,
        },
        suspend: spec.suspend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AllowedReplicas, PrometheusSource, Schedule, StaticSource};

    fn spec() -> PushgatewayRetentionSpec {
        PushgatewayRetentionSpec {
            static_: Some(StaticSource {
                urls: vec!["http://pgw-0:9091".into()],
            }),
            ttl: Some("6h".into()),
            min_ttl: "1m".into(),
            interval: "5m".into(),
            ..Default::default()
        }
    }

    fn err(spec: &PushgatewayRetentionSpec) -> String {
        check(spec, Duration::from_secs(60), &Tuning::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_valid_spec_becomes_a_sweep() {
        let checked = check(&spec(), Duration::from_secs(60), &Tuning::default()).unwrap();
        assert_eq!(checked.sweep.policy.ttl, Duration::from_secs(6 * 3600));
        assert_eq!(
            checked.sweep.policy.superseded_grace,
            Some(Duration::from_secs(60))
        );
        assert_eq!(checked.cadence.interval, Duration::from_secs(300));
        assert!(
            matches!(checked.source, SourceSpec::Static(ref u) if u[0].as_str() == "http://pgw-0:9091/")
        );
    }

    #[test]
    fn what_cel_cannot_check_is_refused_naming_the_field() {
        let mut s = spec();
        s.selector = Some(r#"{job=~"("}"#.into());
        assert!(err(&s).contains("spec.selector"));

        let mut s = spec();
        s.action = RetentionAction::Wipe;
        s.ttl = None;
        s.schedule = Some(Schedule {
            cron: "61 3 * * *".into(),
            time_zone: None,
        });
        assert!(err(&s).contains("spec.schedule.cron"));
        s.schedule = Some(Schedule {
            cron: "0 3 * * *".into(),
            time_zone: Some("Mars/Olympus".into()),
        });
        assert!(err(&s).contains("spec.schedule.timeZone"));

        let mut s = spec();
        s.static_ = Some(StaticSource {
            urls: vec!["pgw-0:9091".into()],
        });
        assert!(err(&s).contains("spec.static.urls[0]"));

        let mut s = spec();
        s.ttl = Some("7x".into());
        assert!(err(&s).contains("spec.ttl"));
    }

    #[test]
    fn the_controller_floor_wins_over_a_lower_min_ttl() {
        let mut s = spec();
        s.min_ttl = "1s".into();
        s.ttl = Some("30s".into());
        let e = err(&s);
        assert!(e.contains("spec.ttl") && e.contains("floor"), "{e}");
        assert!(check(&s, Duration::from_secs(1), &Tuning::default()).is_ok());
    }

    #[test]
    fn exactly_one_source() {
        let mut s = spec();
        s.prometheus = Some(PrometheusSource {
            url: "http://prom:9090".into(),
            job: "pushgateway".into(),
            discovery: Discovery::Targets,
            allowed_replicas: None,
            scheme: Scheme::Http,
            path_prefix: None,
            auth: None,
        });
        assert!(err(&s).contains("exactly one"));
        s.static_ = None;
        s.prometheus = None;
        assert!(err(&s).contains("exactly one"));
    }

    #[test]
    fn up_discovery_needs_an_allow_list_and_bad_entries_name_their_field() {
        let mut s = spec();
        s.static_ = None;
        let mut p = PrometheusSource {
            url: "http://prom:9090".into(),
            job: "pushgateway".into(),
            discovery: Discovery::Up,
            allowed_replicas: None,
            scheme: Scheme::Http,
            path_prefix: None,
            auth: None,
        };
        s.prometheus = Some(p.clone());
        assert!(
            err(&s).contains("spec.prometheus.allowedReplicas"),
            "{}",
            err(&s)
        );
        p.allowed_replicas = Some(AllowedReplicas {
            cidrs: vec!["10.0.0.0/8".into(), "10.0.0.0/99".into()],
            ..Default::default()
        });
        s.prometheus = Some(p.clone());
        assert!(
            err(&s).contains("spec.prometheus.allowedReplicas.cidrs[1]"),
            "{}",
            err(&s)
        );
        p.allowed_replicas = Some(AllowedReplicas {
            hosts: vec!["pgw-0.pgw:9091".into()],
            ..Default::default()
        });
        s.prometheus = Some(p);
        let checked = check(&s, Duration::ZERO, &Tuning::default()).unwrap();
        assert!(matches!(
            checked.source,
            SourceSpec::Prometheus(ViaPrometheus {
                mode: discover::Mode::Up,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn a_service_source_without_a_cluster_says_so() {
        let source = SourceSpec::Service {
            name: "pgw".into(),
            port: None,
            instance_url: InstanceUrl::default(),
        };
        let e = source
            .discover_without_cluster(&reqwest::Client::new(), Duration::from_secs(1))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a cluster"), "{e}");
    }
}
