//! The same bad input through both front doors: `sweep`'s flags (parsed by clap, as a user types
//! them) and a `PushgatewayRetention` spec (parsed from YAML, as a user applies it). Each must
//! fail with the same error kind on the same field, named in that door's words.

use std::time::Duration;

use clap::Parser;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::{Cli, Command};
use crate::crd::PushgatewayRetentionSpec;
use crate::policy::{AuthPart, Field, Remote};
use crate::sweep::Tuning;
use crate::{Error, Result};

fn through_flags(args: &[&str]) -> Result<()> {
    let mut argv = vec![
        "pushgateway-janitor",
        "sweep",
        "--gateway",
        "http://pgw-0:9091",
    ];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let Command::Sweep(sweep) = cli.command else {
        unreachable!()
    };
    sweep.build().map(|_| ())
}

/// `overrides` on a valid spec; a `null` removes the key.
fn through_spec(overrides: Value) -> Result<()> {
    let mut spec = json!({"static": {"urls": ["http://pgw-0:9091"]}, "ttl": "6h", "minTtl": "1m"});
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            spec.as_object_mut().unwrap().remove(k);
        } else {
            spec[k] = v.clone();
        }
    }
    let spec: PushgatewayRetentionSpec = serde_json::from_value(spec).unwrap();
    crate::policy::check(&spec, Duration::ZERO, &Tuning::default()).map(|_| ())
}

/// Both doors refuse on `field`: the flags' error names the flag, the spec's the spec path and
/// never a flag (it ends up in a resource's status and events).
fn same_refusal(flags: Result<()>, spec: Result<()>, field: Field) {
    let (f, s) = (flags.unwrap_err(), spec.unwrap_err());
    for e in [&f, &s] {
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        assert_eq!(e.field(), Some(field), "{e}");
        assert_eq!(e.exit_code(), crate::report::exit::USAGE);
    }
    assert!(
        f.to_string()
            .starts_with(&format!("invalid {}:", field.flag())),
        "{f}"
    );
    assert!(
        s.to_string()
            .starts_with(&format!("invalid {}:", field.spec_path())),
        "{s}"
    );
    assert!(
        !s.to_string().contains("--"),
        "a spec's error names no flag: {s}"
    );
}

#[test]
fn the_same_bad_input_fails_the_same_way_through_both_doors() {
    let secret = |name: &str| json!({"name": name, "key": "k"});
    let cases: Vec<(Vec<&str>, Value, Field)> = vec![
        (vec!["--ttl", "0s"], json!({"ttl": "0s"}), Field::Ttl),
        (
            vec!["--ttl", "30s", "--min-ttl", "1m"],
            json!({"ttl": "30s"}),
            Field::Ttl,
        ),
        (vec![], json!({"ttl": null}), Field::Ttl),
        (
            vec!["--action", "wipe", "--ttl", "1h"],
            json!({"action": "Wipe", "ttl": "1h"}),
            Field::Ttl,
        ),
        (
            vec!["--action", "wipe", "--only-if-all-stale"],
            json!({"action": "Wipe", "onlyIfAllStale": true, "ttl": null}),
            Field::Ttl,
        ),
        (
            vec!["--ttl", "1h", "--only-if-all-stale"],
            json!({"onlyIfAllStale": true}),
            Field::OnlyIfAllStale,
        ),
        (
            vec!["--ttl", "1h", "--max-deletions-percent", "150"],
            json!({"maxDeletions": {"percent": 150.0}}),
            Field::MaxDeletionsPercent,
        ),
        (
            vec!["--ttl", "1h", "--ttl-from-metric", "1bad"],
            json!({"ttlFromMetric": {"metric": "1bad"}}),
            Field::TtlFromMetric,
        ),
        (
            vec![
                "--ttl",
                "1h",
                "--ttl-from-metric",
                "ttl",
                "--max-ttl",
                "30s",
            ],
            json!({"ttlFromMetric": {"metric": "ttl", "max": "30s"}}),
            Field::MaxTtl,
        ),
        (
            vec!["--ttl", "1h", "--gateway", "not a url"],
            json!({"static": {"urls": ["http://pgw-0:9091", "not a url"]}}),
            Field::StaticUrl(1),
        ),
        (
            vec!["--ttl", "1h", "--gateway-basic-user", "ops"],
            json!({"gatewayAuth": {"basicUsername": "ops"}}),
            Field::Auth(Remote::Gateway, AuthPart::BasicUser),
        ),
        (
            vec!["--ttl", "1h", "--gateway-cert-file", "/cert.pem"],
            json!({"gatewayAuth": {"clientCertificate": secret("tls")}}),
            Field::Auth(Remote::Gateway, AuthPart::ClientCertificate),
        ),
    ];
    for (args, overrides, field) in cases {
        // `--gateway` twice gives two URLs, as `static.urls` does; the flags door's base has one.
        same_refusal(through_flags(&args), through_spec(overrides), field);
    }
}

fn prometheus_flags<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--ttl", "1h"];
    v.extend_from_slice(extra);
    v
}

fn through_prometheus_flags(extra: &[&str]) -> Result<()> {
    let mut argv = vec![
        "pushgateway-janitor",
        "sweep",
        "--prometheus",
        "http://prom:9090",
    ];
    argv.extend(prometheus_flags(extra));
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let Command::Sweep(sweep) = cli.command else {
        unreachable!()
    };
    sweep.build().map(|_| ())
}

fn through_prometheus_spec(prometheus: Value) -> Result<()> {
    through_spec(json!({"static": null, "prometheus": prometheus}))
}

#[test]
fn discovery_rules_are_the_same_through_both_doors() {
    same_refusal(
        through_prometheus_flags(&["--job", "pgw", "--discovery", "up"]),
        through_prometheus_spec(
            json!({"url": "http://prom:9090", "job": "pgw", "discovery": "Up"}),
        ),
        Field::AllowedReplicas,
    );
    same_refusal(
        through_prometheus_flags(&["--job", "pgw", "--allow-replica-cidr", "10.0.0.0/99"]),
        through_prometheus_spec(json!({"url": "http://prom:9090", "job": "pgw",
            "allowedReplicas": {"cidrs": ["10.0.0.0/99"]}})),
        Field::AllowedCidr(0),
    );
    same_refusal(
        through_prometheus_flags(&["--job", "pgw", "--allow-replica-regex", "("]),
        through_prometheus_spec(json!({"url": "http://prom:9090", "job": "pgw",
            "allowedReplicas": {"regex": "("}})),
        Field::AllowedRegex,
    );
    same_refusal(
        through_prometheus_flags(&["--job", ""]),
        through_prometheus_spec(json!({"url": "http://prom:9090", "job": ""})),
        Field::Job,
    );
}

proptest! {
    /// Over every combination of action, `onlyIfAllStale`, TTL, minimum and guard percent, the
    /// two doors accept the same inputs and refuse the rest on the same field.
    #[test]
    fn both_doors_agree_on_every_combination(
        wipe in any::<bool>(),
        only in any::<bool>(),
        ttl in proptest::option::of(0u64..7200),
        min_ttl in 1u64..3600,
        percent in proptest::option::of(prop::sample::select(vec![-5.0, 0.0, 0.5, 50.0, 100.0, 101.0])),
    ) {
        let ttl_text = ttl.map(|t| format!("{t}s"));
        let min_text = format!("{min_ttl}s");
        // `--flag=value`, so a negative value is not read as a flag.
        let pct_text = percent.map(|p: f64| format!("--max-deletions-percent={p}"));
        let mut args: Vec<&str> = vec!["--min-ttl", &min_text];
        if wipe { args.extend(["--action", "wipe"]); }
        if only { args.push("--only-if-all-stale"); }
        if let Some(t) = &ttl_text { args.extend(["--ttl", t]); }
        if let Some(p) = &pct_text { args.push(p); }
        let mut spec = json!({
            "action": if wipe { "Wipe" } else { "DeleteGroups" },
            "onlyIfAllStale": only,
            "minTtl": min_text,
            "ttl": ttl_text,
        });
        if let Some(p) = percent {
            spec["maxDeletions"] = json!({"percent": p});
        }
        let flags = through_flags(&args);
        let spec = through_spec(spec);
        match (&flags, &spec) {
            (Ok(()), Ok(())) => {}
            (Err(f), Err(s)) => {
                prop_assert_eq!(f.field(), s.field(), "{} / {}", f, s);
                prop_assert!(!s.to_string().contains("--"), "{}", s);
            }
            _ => prop_assert!(false, "the doors disagree: flags {:?}, spec {:?}", flags, spec),
        }
    }
}
