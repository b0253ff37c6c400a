//! The checker through the spec door, and what each rule names. Both doors side by side, through
//! the real flag parser, are in `cli/doors_tests.rs`.

use std::time::Duration;

use super::*;
use crate::crd::{
    AllowedReplicas, Discovery, PrometheusSource, RetentionAction, Schedule, Scheme, StaticSource,
};
use crate::discover;
use crate::error::Error;
use crate::source::ViaPrometheus;

/// A valid input from the flags door: one static replica, a 6h TTL.
pub(crate) fn flags_input() -> PolicyInput {
    PolicyInput {
        static_urls: Some(vec!["http://pgw-0:9091".into()]),
        ttl: Some(Duration::from_secs(6 * 3600)),
        ..PolicyInput::flags()
    }
}

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

fn error(spec: &PushgatewayRetentionSpec) -> Error {
    check(spec, Duration::from_secs(60), &Tuning::default()).unwrap_err()
}

fn err(spec: &PushgatewayRetentionSpec) -> String {
    error(spec).to_string()
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
    assert_eq!(checked.door, Door::Spec);
    assert_eq!(checked.sweep.limits.door, Door::Spec);
    assert!(
        matches!(checked.source, SourceSpec::Static(ref u) if u[0].as_str() == "http://pgw-0:9091/")
    );
}

#[test]
fn what_cel_cannot_check_is_refused_naming_the_field() {
    let mut s = spec();
    s.selector = Some(r#"{job=~"("}"#.into());
    assert_eq!(error(&s).field(), Some(Field::Selector));
    assert!(err(&s).starts_with("invalid spec.selector:"), "{}", err(&s));

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
    assert_eq!(error(&s).field(), Some(Field::StaticUrl(0)));
    assert!(err(&s).contains("spec.static.urls[0]"));

    let mut s = spec();
    s.ttl = Some("7x".into());
    assert!(err(&s).starts_with("invalid spec.ttl:"), "{}", err(&s));
}

#[test]
fn the_controller_floor_wins_over_a_lower_min_ttl() {
    let mut s = spec();
    s.min_ttl = "1s".into();
    s.ttl = Some("30s".into());
    let e = err(&s);
    assert!(e.contains("spec.ttl") && e.contains("floor of 1m"), "{e}");
    assert!(!e.contains("--"), "a spec's error names no flag: {e}");
    assert!(check(&s, Duration::from_secs(1), &Tuning::default()).is_ok());
}

#[test]
fn a_ttl_on_a_plain_wipe_is_refused_as_on_the_command_line() {
    let mut s = spec();
    s.action = RetentionAction::Wipe;
    let e = error(&s);
    assert_eq!(e.field(), Some(Field::Ttl));
    assert!(
        e.to_string()
            .contains("has no effect with a plain action Wipe"),
        "{e}"
    );
    assert!(e.to_string().contains("spec.onlyIfAllStale"), "{e}");
    s.only_if_all_stale = true;
    assert!(check(&s, Duration::from_secs(60), &Tuning::default()).is_ok());
    s.only_if_all_stale = false;
    s.ttl = None;
    let plain = check(&s, Duration::from_secs(60), &Tuning::default()).unwrap();
    assert_eq!(plain.sweep.policy.ttl, NO_TTL);
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
    assert_eq!(error(&s).field(), Some(Field::Source));
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
        err(&s).starts_with("invalid spec.prometheus.allowedReplicas:"),
        "{}",
        err(&s)
    );
    p.allowed_replicas = Some(AllowedReplicas {
        cidrs: vec!["10.0.0.0/8".into(), "10.0.0.0/99".into()],
        ..Default::default()
    });
    s.prometheus = Some(p.clone());
    assert_eq!(error(&s).field(), Some(Field::AllowedCidr(1)));
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

#[test]
fn tuning_errors_in_a_spec_name_no_flag() {
    let tuning = Tuning {
        read_concurrency: 0,
        ..Tuning::default()
    };
    let e = check(&spec(), Duration::ZERO, &tuning).unwrap_err();
    assert_eq!(e.field(), Some(Field::ReadConcurrency));
    assert!(!e.to_string().contains("--"), "{e}");
    let mut flags = flags_input();
    flags.tuning = tuning;
    let e = flags.check().unwrap_err();
    assert!(
        e.to_string().starts_with("invalid --read-concurrency:"),
        "{e}"
    );
}

#[test]
fn auth_combinations_are_checked_before_anything_is_read() {
    let file = |p: &str| Some(SecretRef::File(p.into()));
    let mut input = flags_input();
    input.gateway_auth.basic_user = Some("ops".into());
    let e = input.check().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid --gateway-basic-user: needs --gateway-password-file"
    );
    input.gateway_auth.basic_password = file("/pw");
    input.gateway_auth.bearer_token = file("/tok");
    assert_eq!(
        input.check().unwrap_err().field(),
        Some(Field::Auth(Remote::Gateway, AuthPart::BearerToken))
    );
    let mut input = flags_input();
    input.prometheus_auth.client_key = file("/key");
    let e = input.check().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid --prometheus-cert-file: --prometheus-cert-file and --prometheus-key-file go together"
    );
}

/// The TTL rules, through the flags door (the spec door's words are tested above).
fn flags_refusal(input: PolicyInput) -> String {
    input.check().unwrap_err().to_string()
}

#[test]
fn a_ttl_under_the_floor_or_zero_is_refused_naming_the_flag() {
    let under = PolicyInput {
        ttl: Some(Duration::from_secs(6)),
        ..flags_input()
    };
    assert_eq!(
        flags_refusal(under),
        "invalid --ttl: 6s is under the floor --min-ttl 1m"
    );
    // A zero TTL is refused for itself, even with no floor to be under.
    let zero = PolicyInput {
        ttl: Some(Duration::ZERO),
        min_ttl: Duration::ZERO,
        ..flags_input()
    };
    assert_eq!(
        flags_refusal(zero),
        "invalid --ttl: must be greater than zero"
    );
}

#[test]
fn a_max_ttl_under_the_floor_and_a_bad_metric_name_are_refused_naming_the_flag() {
    let declared = || PolicyInput {
        ttl_from_metric: Some("janitor_ttl_seconds".into()),
        ..flags_input()
    };
    let low_max = PolicyInput {
        max_ttl: Some(Duration::from_secs(30)),
        ..declared()
    };
    assert_eq!(
        flags_refusal(low_max),
        "invalid --max-ttl: 30s is under the floor --min-ttl 1m"
    );
    let bad_name = PolicyInput {
        ttl_from_metric: Some("bad-name".into()),
        ..flags_input()
    };
    assert_eq!(
        flags_refusal(bad_name),
        r#"invalid --ttl-from-metric: "bad-name" is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"#
    );
    // Zero grace and sane bounds pass, and reach the sweep as given.
    let fine = PolicyInput {
        superseded_grace: Some(Duration::ZERO),
        max_ttl: Some(Duration::from_secs(86_400)),
        ..declared()
    };
    let policy = fine.check().unwrap().sweep.policy;
    assert_eq!(policy.superseded_grace, Some(Duration::ZERO));
    assert_eq!(policy.max_ttl, Some(Duration::from_secs(86_400)));
    assert_eq!(
        policy.ttl_from_metric.as_deref(),
        Some("janitor_ttl_seconds")
    );
}
