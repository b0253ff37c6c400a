//! The one checker: every rule a policy meets, whichever door it came through. What the schema
//! and CEL cannot say (a regex, a cron expression, a time zone, the floor) is checked here too, so
//! `validate`, `run --policies` and the controller refuse exactly the same specs.

use std::cell::Cell;
use std::str::FromStr;
use std::time::Duration;

use super::{AuthInput, CheckedPolicy, PolicyInput, PrometheusInput, SourceSpec, NO_TTL};
use crate::config::SweepConfig;
use crate::duration::format_duration;
use crate::field::{AuthPart, Door, Field, Remote};
use crate::guard::Limits;
use crate::plan::{Action, Rules};
use crate::schedule::Cadence;
use crate::source::{self, parse_base_url, AllowList, InstanceUrl, ViaPrometheus};
use crate::{Error, Result};

/// An error on `field`; named in the door's words by [`PolicyInput::check`].
fn bad<T>(field: Field, message: impl Into<String>) -> Result<T> {
    Err(Error::invalid(field, message))
}

/// Another checker's `Config` error (a URL, an instance URL), re-filed under `field`.
fn refile(field: Field) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Config { message, .. } => Error::invalid(field, message),
        other => other,
    }
}

impl PolicyInput {
    /// Checks every rule; the error names its field in this input's door's words.
    pub fn check(&self) -> Result<CheckedPolicy> {
        self.check_all().map_err(|e| e.at(self.door))
    }

    fn check_all(&self) -> Result<CheckedPolicy> {
        let door = self.door;
        let source = self.source()?;
        auth(&self.prometheus_auth, Remote::Prometheus, door)?;
        auth(&self.gateway_auth, Remote::Gateway, door)?;
        let policy = self.policy()?;
        let limits = Limits {
            max_deletions: match self.max_deletions {
                Some(n) if n < 0 => return bad(Field::MaxDeletions, "must not be negative"),
                n => n.map(|n| n as u64),
            },
            max_deletions_percent: self.max_deletions_percent,
            door,
        };
        limits.validate()?;
        self.tuning.validate()?;
        let cadence = self.cadence()?;
        Ok(CheckedPolicy {
            door,
            sweep: SweepConfig {
                // The front door names it: a spec does not know its own name.
                name: String::new(),
                policy,
                limits,
                dry_run: self.dry_run,
                tuning: self.tuning.clone(),
                permit: Default::default(),
            },
            source,
            prometheus_auth: self.prometheus_auth.clone(),
            gateway_auth: self.gateway_auth.clone(),
            cadence,
            suspend: self.suspend,
        })
    }

    fn source(&self) -> Result<SourceSpec> {
        let several = |message: &str| bad(Field::Source, message);
        match (&self.prometheus, &self.service, &self.static_urls) {
            (Some(p), None, None) => Ok(SourceSpec::Prometheus(prometheus(p, self.door)?)),
            (None, Some(s), None) => {
                if s.name.is_empty() {
                    return bad(Field::ServiceName, "must not be empty");
                }
                Ok(SourceSpec::Service {
                    name: s.name.clone(),
                    port: s.port.clone().filter(|p| !p.is_empty()),
                    instance_url: instance_url(
                        &s.scheme,
                        &s.path_prefix,
                        Field::Scheme,
                        Field::ServicePathPrefix,
                    )?,
                })
            }
            (None, None, Some(urls)) => {
                if urls.is_empty() {
                    return bad(Field::StaticUrls, "lists no URL");
                }
                let urls = urls
                    .iter()
                    .enumerate()
                    .map(|(i, u)| parse_base_url("", u).map_err(refile(Field::StaticUrl(i))))
                    .collect::<Result<_>>()?;
                Ok(SourceSpec::Static(urls))
            }
            _ => match self.door {
                Door::Spec => {
                    several("set exactly one gateway source: prometheus, service or static")
                }
                Door::Flags if self.prometheus.is_some() => {
                    bad(Field::PrometheusUrl, "cannot be combined with --gateway")
                }
                Door::Flags => {
                    several("give --prometheus URL --job NAME, or --gateway URL (repeatable)")
                }
            },
        }
    }

    fn policy(&self) -> Result<Rules> {
        let door = self.door;
        let only = door.name(Field::OnlyIfAllStale);
        if self.only_if_all_stale && !self.wipe {
            return bad(
                Field::OnlyIfAllStale,
                format!("goes with {}", door.action(true)),
            );
        }
        // A plain wipe removes every selected group whatever its age: a TTL there would be
        // silently ignored, and a user who wrote one most likely meant only the old groups.
        let ttl = match (self.wipe, self.only_if_all_stale, self.ttl) {
            (false, _, None) => {
                return bad(
                    Field::Ttl,
                    format!("is required with {}", door.action(false)),
                )
            }
            (true, true, None) => return bad(Field::Ttl, format!("is required with {only}")),
            (true, false, Some(_)) => {
                return bad(
                    Field::Ttl,
                    format!(
                        "has no effect with a plain {}, which removes every selected group \
                         whatever its age; add {only} or drop it",
                        door.action(true)
                    ),
                )
            }
            (_, _, Some(ttl)) => ttl,
            (true, false, None) => NO_TTL,
        };
        if self.max_ttl.is_some() && self.ttl_from_metric.is_none() {
            return bad(
                Field::MaxTtl,
                format!(
                    "only bounds {}, which is not set",
                    door.name(Field::TtlFromMetric)
                ),
            );
        }
        let min_ttl = self.min_ttl.max(self.floor);
        // Which minimum a TTL is under: the policy's own, or the front door's floor.
        let under = |d: Duration| {
            if self.floor > self.min_ttl {
                format!(
                    "{} is under the janitor's floor of {}",
                    format_duration(d),
                    format_duration(self.floor)
                )
            } else {
                format!(
                    "{} is under the floor {} {}",
                    format_duration(d),
                    door.name(Field::MinTtl),
                    format_duration(min_ttl)
                )
            }
        };
        if ttl.is_zero() {
            return bad(Field::Ttl, "must be greater than zero");
        }
        if ttl < min_ttl {
            return bad(Field::Ttl, under(ttl));
        }
        if let Some(max) = self.max_ttl.filter(|m| *m < min_ttl) {
            return bad(Field::MaxTtl, under(max));
        }
        if let Some(name) = self.ttl_from_metric.as_deref() {
            if !is_metric_name(name) {
                return bad(
                    Field::TtlFromMetric,
                    format!("{name:?} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"),
                );
            }
        }
        Ok(Rules {
            ttl,
            selector: self.selector.clone(),
            superseded_grace: self.superseded_grace,
            ttl_from_metric: self.ttl_from_metric.clone(),
            min_ttl,
            max_ttl: self.max_ttl,
            action: if self.wipe {
                Action::Wipe {
                    only_if_all_stale: self.only_if_all_stale,
                }
            } else {
                Action::DeleteGroups
            },
        })
    }

    fn cadence(&self) -> Result<Cadence> {
        let utc = jiff::tz::TimeZone::UTC;
        let Some(c) = &self.cadence else {
            // A one-shot sweep: never asked when it is due.
            return Ok(Cadence {
                interval: Duration::from_secs(1),
                cron: None,
                time_zone: utc,
            });
        };
        if c.interval < Duration::from_secs(1) {
            return bad(Field::Interval, "must be at least 1s");
        }
        let cron = match &c.cron {
            Some(_) if !self.wipe => {
                return bad(
                    Field::Schedule,
                    format!("is only for {}", self.door.action(true)),
                )
            }
            Some(text) => Some(
                croner::Cron::from_str(text)
                    .map_err(|e| Error::invalid(Field::Cron, format!("{text:?}: {e}")))?,
            ),
            None => None,
        };
        let time_zone = match &c.time_zone {
            Some(name) => jiff::tz::TimeZone::get(name)
                .map_err(|e| Error::invalid(Field::TimeZone, format!("{name:?}: {e}")))?,
            None => utc,
        };
        Ok(Cadence {
            interval: c.interval,
            cron,
            time_zone,
        })
    }
}

fn prometheus(p: &PrometheusInput, door: Door) -> Result<ViaPrometheus> {
    let url = parse_base_url("", &p.url).map_err(refile(Field::PrometheusUrl))?;
    if p.job.is_empty() {
        return bad(Field::Job, "must not be empty");
    }
    // `AllowList::new` names the entry it refuses through this callback: the last entry named
    // is the one its error is about.
    let refused = Cell::new(Field::AllowedReplicas);
    let allow = AllowList::new(
        &p.allowed_hosts,
        &p.allowed_cidrs,
        p.allowed_regex.as_deref(),
        |list, i| {
            refused.set(match (list, i) {
                ("hosts", Some(i)) => Field::AllowedHost(i),
                ("cidrs", Some(i)) => Field::AllowedCidr(i),
                _ => Field::AllowedRegex,
            });
            String::new()
        },
    )
    .map_err(|e| refile(refused.get())(e))?;
    let mode = match (p.up, allow.is_empty()) {
        (false, _) => source::Mode::Targets,
        (true, true) => {
            let up = match door {
                Door::Flags => "--discovery up",
                Door::Spec => "discovery Up",
            };
            return bad(
                Field::AllowedReplicas,
                format!("is required with {up}: a pushed up sample can name any host"),
            );
        }
        (true, false) => source::Mode::Up,
    };
    Ok(ViaPrometheus {
        url,
        job: p.job.clone(),
        mode,
        instance_url: instance_url(&p.scheme, &p.path_prefix, Field::Scheme, Field::PathPrefix)?,
        allow,
    })
}

fn instance_url(
    scheme: &str,
    prefix: &str,
    scheme_field: Field,
    prefix_field: Field,
) -> Result<InstanceUrl> {
    let u = InstanceUrl {
        scheme: scheme.to_string(),
        path_prefix: prefix.to_string(),
    };
    if u.scheme != "http" && u.scheme != "https" {
        return bad(
            scheme_field,
            format!("{:?} is neither http nor https", u.scheme),
        );
    }
    u.validate().map_err(refile(prefix_field))?;
    Ok(u)
}

/// What goes with what in one remote's credentials; the values are read later, by `prepare`.
fn auth(a: &AuthInput, remote: Remote, door: Door) -> Result<()> {
    let f = |part| Field::Auth(remote, part);
    let name = |part| door.name(f(part));
    match (&a.basic_user, &a.basic_password, &a.bearer_token) {
        (Some(_), Some(_), None) | (None, None, _) => {}
        (_, _, Some(_)) => {
            return bad(
                f(AuthPart::BearerToken),
                "cannot be combined with basic auth",
            )
        }
        (Some(_), None, None) => {
            return bad(
                f(AuthPart::BasicUser),
                format!("needs {}", name(AuthPart::BasicPassword)),
            )
        }
        (None, Some(_), None) => {
            return bad(
                f(AuthPart::BasicPassword),
                format!("needs {}", name(AuthPart::BasicUser)),
            )
        }
    }
    if a.client_certificate.is_some() != a.client_key.is_some() {
        return bad(
            f(AuthPart::ClientCertificate),
            format!(
                "{} and {} go together",
                name(AuthPart::ClientCertificate),
                name(AuthPart::ClientKey)
            ),
        );
    }
    Ok(())
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}
