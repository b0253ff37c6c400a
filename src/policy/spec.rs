//! The spec door: a `PushgatewayRetention` spec into the one [`PolicyInput`]. Only parsing
//! happens here (durations, the selector); every rule is in `check.rs`.

use std::str::FromStr;
use std::time::Duration;

use super::{AuthInput, CadenceInput, PolicyInput, PrometheusInput, SecretRef, ServiceInput};
use crate::crd::{Discovery, HttpAuthRefs, PushgatewayRetentionSpec, RetentionAction, Scheme};
use crate::duration::parse_duration;
use crate::field::{Door, Field};
use crate::selector::Selector;
use crate::tuning::Tuning;
use crate::{Error, Result};

fn duration(field: Field, text: &str) -> Result<Duration> {
    parse_duration(text).map_err(|e| Error::invalid(field, e.to_string()))
}

fn scheme(s: Scheme) -> String {
    match s {
        Scheme::Http => "http".into(),
        Scheme::Https => "https".into(),
    }
}

fn auth(refs: Option<&HttpAuthRefs>) -> AuthInput {
    let Some(r) = refs else {
        return AuthInput::default();
    };
    let key = |k: &Option<crate::crd::SecretKeyRef>| k.clone().map(SecretRef::Key);
    AuthInput {
        basic_user: r.basic_username.clone(),
        basic_password: key(&r.basic_password),
        bearer_token: key(&r.bearer_token),
        ca: key(&r.ca),
        client_certificate: key(&r.client_certificate),
        client_key: key(&r.client_key),
    }
}

/// A spec, parsed. `floor` and `tuning` are the front door's own (`run`, `controller`).
pub fn from_spec(
    spec: &PushgatewayRetentionSpec,
    floor: Duration,
    tuning: &Tuning,
) -> Result<PolicyInput> {
    parse_spec(spec, floor, tuning).map_err(|e| e.at(Door::Spec))
}

fn parse_spec(
    spec: &PushgatewayRetentionSpec,
    floor: Duration,
    tuning: &Tuning,
) -> Result<PolicyInput> {
    let prometheus = spec.prometheus.as_ref().map(|p| {
        let allowed = p.allowed_replicas.clone().unwrap_or_default();
        PrometheusInput {
            url: p.url.clone(),
            job: p.job.clone(),
            up: p.discovery == Discovery::Up,
            allowed_hosts: allowed.hosts,
            allowed_cidrs: allowed.cidrs,
            allowed_regex: allowed.regex,
            scheme: scheme(p.scheme),
            path_prefix: p.path_prefix.clone().unwrap_or_default(),
        }
    });
    let selector = match &spec.selector {
        Some(s) => Selector::from_str(s).map_err(|e| match Error::from(e) {
            Error::Config { message, .. } => {
                Error::invalid(Field::Selector, format!("{s:?}: {message}"))
            }
            other => other,
        })?,
        None => Selector::default(),
    };
    let (ttl_from_metric, max_ttl) = match &spec.ttl_from_metric {
        Some(t) => (
            Some(t.metric.clone()),
            t.max
                .as_deref()
                .map(|m| duration(Field::MaxTtl, m))
                .transpose()?,
        ),
        None => (None, None),
    };
    let superseded_grace = if spec.superseded.enabled {
        Some(duration(Field::SupersededGrace, &spec.superseded.grace)?)
    } else {
        None
    };
    let max = spec.max_deletions.as_ref();
    Ok(PolicyInput {
        door: Door::Spec,
        prometheus_auth: auth(spec.prometheus.as_ref().and_then(|p| p.auth.as_ref())),
        prometheus,
        service: spec.service.as_ref().map(|s| ServiceInput {
            name: s.name.clone(),
            port: s.port.clone(),
            scheme: scheme(s.scheme),
            path_prefix: s.path_prefix.clone().unwrap_or_default(),
        }),
        static_urls: spec.static_.as_ref().map(|s| s.urls.clone()),
        gateway_auth: auth(spec.gateway_auth.as_ref()),
        ttl: spec
            .ttl
            .as_deref()
            .map(|t| duration(Field::Ttl, t))
            .transpose()?,
        min_ttl: duration(Field::MinTtl, &spec.min_ttl)?,
        floor,
        selector,
        superseded_grace,
        ttl_from_metric,
        max_ttl,
        wipe: spec.action == RetentionAction::Wipe,
        only_if_all_stale: spec.only_if_all_stale,
        max_deletions: max.and_then(|m| m.count),
        max_deletions_percent: max.and_then(|m| m.percent),
        dry_run: spec.dry_run,
        cadence: Some(CadenceInput {
            interval: duration(Field::Interval, &spec.interval)?,
            cron: spec.schedule.as_ref().map(|s| s.cron.clone()),
            time_zone: spec.schedule.as_ref().and_then(|s| s.time_zone.clone()),
        }),
        suspend: spec.suspend,
        tuning: tuning.clone(),
    })
}
