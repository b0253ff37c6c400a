//! The fields of a policy, and how each front door names them: a flag on the command line
//! (`--ttl`), a path in a `PushgatewayRetention` (`spec.ttl`). Errors carry the [`Field`]; the
//! words are chosen only when the error is shown.

use std::fmt;

/// Which front door the input came through, so its errors speak its user's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Door {
    /// `sweep`'s and `inspect`'s flags, and the flags of `run` and `controller` (tuning).
    #[default]
    Flags,
    /// A `PushgatewayRetention` spec: `run --policies`, `validate`, the controller.
    Spec,
}

/// Prometheus or the gateways: each has its own credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    Prometheus,
    Gateway,
}

/// One part of a remote's credentials and TLS material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPart {
    BasicUser,
    BasicPassword,
    BearerToken,
    Ca,
    ClientCertificate,
    ClientKey,
}

/// A field of a policy, wherever it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Where the replicas are: exactly one source.
    Source,
    PrometheusUrl,
    Job,
    Discovery,
    AllowedReplicas,
    AllowedHost(usize),
    AllowedCidr(usize),
    AllowedRegex,
    /// The scheme an `instance` label is read with (Prometheus `Up` discovery).
    Scheme,
    /// The gateways' route prefix, for a Prometheus source.
    PathPrefix,
    ServiceName,
    ServicePort,
    ServicePathPrefix,
    /// All static URLs (an empty list).
    StaticUrls,
    StaticUrl(usize),
    Auth(Remote, AuthPart),
    Ttl,
    MinTtl,
    MaxTtl,
    TtlFromMetric,
    Selector,
    SupersededGrace,
    Action,
    OnlyIfAllStale,
    MaxDeletions,
    MaxDeletionsPercent,
    Interval,
    Schedule,
    Cron,
    TimeZone,
    /// Tuning: the janitor's own flags, in every front door (`run`, `controller` included).
    ReadConcurrency,
    RequestTimeout,
    DeleteConcurrency,
    DeleteRate,
}

impl Field {
    /// The field in `door`'s words; `None`: a neutral name, for an error no door named yet.
    pub fn name_in(self, door: Option<Door>) -> FieldName {
        FieldName { field: self, door }
    }

    /// The command-line flag, `--ttl`. Fields with no flag (a cadence, a Service) are named as
    /// the spec names them.
    pub fn flag(self) -> String {
        use Field::*;
        let flag = match self {
            Source => "--prometheus/--gateway",
            PrometheusUrl => "--prometheus",
            Job => "--job",
            Discovery => "--discovery",
            AllowedReplicas => "--allow-replica-host/--allow-replica-cidr/--allow-replica-regex",
            AllowedHost(_) => "--allow-replica-host",
            AllowedCidr(_) => "--allow-replica-cidr",
            AllowedRegex => "--allow-replica-regex",
            Scheme => "--gateway-scheme",
            PathPrefix => "--gateway-path-prefix",
            StaticUrls | StaticUrl(_) => "--gateway",
            Auth(remote, part) => return auth_flag(remote, part),
            Ttl => "--ttl",
            MinTtl => "--min-ttl",
            MaxTtl => "--max-ttl",
            TtlFromMetric => "--ttl-from-metric",
            Selector => "--selector",
            SupersededGrace => "--superseded-grace",
            Action => "--action",
            OnlyIfAllStale => "--only-if-all-stale",
            MaxDeletions => "--max-deletions",
            MaxDeletionsPercent => "--max-deletions-percent",
            ReadConcurrency => "--read-concurrency",
            RequestTimeout => "--request-timeout",
            DeleteConcurrency => "--delete-concurrency",
            DeleteRate => "--delete-rate",
            ServiceName | ServicePort | ServicePathPrefix | Interval | Schedule | Cron
            | TimeZone => return self.spec_path(),
        };
        flag.to_string()
    }

    /// The path in a `PushgatewayRetention`, `spec.ttl`. Tuning is no part of a spec: it is
    /// named in words, never as a flag, since it ends up in a resource's status.
    pub fn spec_path(self) -> String {
        use Field::*;
        let path = match self {
            Source => "spec",
            PrometheusUrl => "spec.prometheus.url",
            Job => "spec.prometheus.job",
            Discovery => "spec.prometheus.discovery",
            AllowedReplicas => "spec.prometheus.allowedReplicas",
            AllowedHost(i) => return format!("spec.prometheus.allowedReplicas.hosts[{i}]"),
            AllowedCidr(i) => return format!("spec.prometheus.allowedReplicas.cidrs[{i}]"),
            AllowedRegex => "spec.prometheus.allowedReplicas.regex",
            Scheme => "spec.prometheus.scheme",
            PathPrefix => "spec.prometheus.pathPrefix",
            ServiceName => "spec.service.name",
            ServicePort => "spec.service.port",
            ServicePathPrefix => "spec.service.pathPrefix",
            StaticUrls => "spec.static.urls",
            StaticUrl(i) => return format!("spec.static.urls[{i}]"),
            Auth(remote, part) => return auth_path(remote, part),
            Ttl => "spec.ttl",
            MinTtl => "spec.minTtl",
            MaxTtl => "spec.ttlFromMetric.max",
            TtlFromMetric => "spec.ttlFromMetric.metric",
            Selector => "spec.selector",
            SupersededGrace => "spec.superseded.grace",
            Action => "spec.action",
            OnlyIfAllStale => "spec.onlyIfAllStale",
            MaxDeletions => "spec.maxDeletions.count",
            MaxDeletionsPercent => "spec.maxDeletions.percent",
            Interval => "spec.interval",
            Schedule => "spec.schedule",
            Cron => "spec.schedule.cron",
            TimeZone => "spec.schedule.timeZone",
            ReadConcurrency | RequestTimeout | DeleteConcurrency | DeleteRate => {
                return self.neutral()
            }
        };
        path.to_string()
    }

    /// A name no door owns: what the engine says before a front door names the field.
    pub fn neutral(self) -> String {
        use Field::*;
        match self {
            ReadConcurrency => "the janitor's read concurrency".into(),
            RequestTimeout => "the janitor's request timeout".into(),
            DeleteConcurrency => "the janitor's delete concurrency".into(),
            DeleteRate => "the janitor's delete rate".into(),
            other => other.spec_path().trim_start_matches("spec.").to_string(),
        }
    }
}

fn auth_flag(remote: Remote, part: AuthPart) -> String {
    let prefix = match remote {
        Remote::Prometheus => "prometheus",
        Remote::Gateway => "gateway",
    };
    let suffix = match part {
        AuthPart::BasicUser => "basic-user",
        AuthPart::BasicPassword => "password-file",
        AuthPart::BearerToken => "bearer-token-file",
        AuthPart::Ca => "ca-file",
        AuthPart::ClientCertificate => "cert-file",
        AuthPart::ClientKey => "key-file",
    };
    format!("--{prefix}-{suffix}")
}

fn auth_path(remote: Remote, part: AuthPart) -> String {
    let prefix = match remote {
        Remote::Prometheus => "spec.prometheus.auth",
        Remote::Gateway => "spec.gatewayAuth",
    };
    let suffix = match part {
        AuthPart::BasicUser => "basicUsername",
        AuthPart::BasicPassword => "basicPassword",
        AuthPart::BearerToken => "bearerToken",
        AuthPart::Ca => "ca",
        AuthPart::ClientCertificate => "clientCertificate",
        AuthPart::ClientKey => "clientKey",
    };
    format!("{prefix}.{suffix}")
}

/// A field as one door names it; shown with `{}`.
#[derive(Debug, Clone, Copy)]
pub struct FieldName {
    field: Field,
    door: Option<Door>,
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.door {
            Some(Door::Flags) => self.field.flag(),
            Some(Door::Spec) => self.field.spec_path(),
            None => self.field.neutral(),
        };
        f.write_str(&name)
    }
}

impl Door {
    /// `field` in this door's words.
    pub fn name(self, field: Field) -> String {
        field.name_in(Some(self)).to_string()
    }

    /// An action value as this door's user writes it: `--action wipe`, `action Wipe`.
    pub fn action(self, wipe: bool) -> &'static str {
        match (self, wipe) {
            (Door::Flags, true) => "--action wipe",
            (Door::Flags, false) => "--action delete",
            (Door::Spec, true) => "action Wipe",
            (Door::Spec, false) => "action DeleteGroups",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_door_names_a_field_in_its_users_words() {
        let cases = [
            (Field::Ttl, "--ttl", "spec.ttl"),
            (Field::MaxTtl, "--max-ttl", "spec.ttlFromMetric.max"),
            (
                Field::AllowedCidr(1),
                "--allow-replica-cidr",
                "spec.prometheus.allowedReplicas.cidrs[1]",
            ),
            (
                Field::Auth(Remote::Gateway, AuthPart::BearerToken),
                "--gateway-bearer-token-file",
                "spec.gatewayAuth.bearerToken",
            ),
            (
                Field::Auth(Remote::Prometheus, AuthPart::BasicPassword),
                "--prometheus-password-file",
                "spec.prometheus.auth.basicPassword",
            ),
            (Field::StaticUrl(0), "--gateway", "spec.static.urls[0]"),
        ];
        for (field, flag, path) in cases {
            assert_eq!(Door::Flags.name(field), flag);
            assert_eq!(Door::Spec.name(field), path);
        }
    }

    #[test]
    fn tuning_is_never_named_as_a_flag_in_a_spec() {
        for field in [
            Field::ReadConcurrency,
            Field::RequestTimeout,
            Field::DeleteConcurrency,
            Field::DeleteRate,
        ] {
            assert!(Door::Flags.name(field).starts_with("--"));
            let spec = Door::Spec.name(field);
            assert!(!spec.contains("--"), "{spec}");
            assert!(!field.name_in(None).to_string().contains("--"));
        }
    }
}
