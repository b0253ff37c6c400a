use std::time::Duration;

use super::*;

fn engine() -> Engine {
    Engine::new(crate::engine::Settings::from_tuning(
        &crate::sweep::Tuning::default(),
    ))
}
use crate::crd::{HttpAuthRefs, PushgatewayRetentionSpec, SecretKeyRef, StaticSource};
use crate::secrets::{DirSecrets, FileSecrets};
use crate::sweep::Tuning;

/// A stand-in for the API: every Secret is missing, as `KubeSecrets` says it.
struct NoSecrets;

impl SecretSource for NoSecrets {
    async fn get(&self, reference: &SecretRef) -> Result<Vec<u8>, Unavailable> {
        Err(Unavailable::Missing(format!("{reference} not found")))
    }
}

fn timeouts() -> Timeouts {
    Timeouts::new(Duration::from_secs(1), Duration::from_secs(1))
}

fn spec_with_token(secret: &str) -> CheckedPolicy {
    let spec = PushgatewayRetentionSpec {
        static_: Some(StaticSource {
            urls: vec!["http://127.0.0.1:9/".into()],
        }),
        ttl: Some("1h".into()),
        min_ttl: "1m".into(),
        interval: "5m".into(),
        gateway_auth: Some(HttpAuthRefs {
            bearer_token: Some(SecretKeyRef {
                name: secret.into(),
                key: "token".into(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    crate::policy::from_spec(&spec, Duration::ZERO, &Tuning::default())
        .unwrap()
        .check()
        .unwrap()
}

fn flags_with_token_file(path: std::path::PathBuf) -> CheckedPolicy {
    let mut input = crate::policy::tests::flags_input();
    input.gateway_auth.bearer_token = Some(SecretRef::File(path));
    input.check().unwrap()
}

fn assert_missing(e: &Error, field: &str) {
    assert!(matches!(e, Error::Secret { .. }), "{e:?}");
    assert_eq!(
        e.field(),
        Some(Field::Auth(Remote::Gateway, AuthPart::BearerToken))
    );
    assert!(e.to_string().starts_with(field), "{e}");
    assert_eq!(e.exit_code(), crate::report::exit::USAGE);
    assert_eq!(e.condition_reason(), "SecretUnavailable");
}

#[tokio::test]
async fn a_missing_secret_is_the_same_failure_from_every_source() {
    let dir = tempfile::tempdir().unwrap();
    let from_files = clients(
        &engine(),
        &flags_with_token_file(dir.path().join("absent")),
        &FileSecrets,
        timeouts(),
    )
    .await
    .unwrap_err();
    assert_missing(&from_files, "--gateway-bearer-token-file");
    let from_dir = clients(
        &engine(),
        &spec_with_token("absent"),
        &DirSecrets {
            dir: Some(dir.path().into()),
            namespace: None,
        },
        timeouts(),
    )
    .await
    .unwrap_err();
    assert_missing(&from_dir, "spec.gatewayAuth.bearerToken");
    let from_api = clients(
        &engine(),
        &spec_with_token("absent"),
        &NoSecrets,
        timeouts(),
    )
    .await
    .unwrap_err();
    assert_missing(&from_api, "spec.gatewayAuth.bearerToken");
    assert!(from_api.to_string().contains("absent"), "{from_api}");
}

#[tokio::test]
async fn a_found_secret_makes_a_client_and_a_bad_ca_names_its_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tok")).unwrap();
    std::fs::write(dir.path().join("tok/token"), "t0ken\n").unwrap();
    std::fs::write(dir.path().join("tok/ca"), "not a pem").unwrap();
    let secrets = DirSecrets {
        dir: Some(dir.path().into()),
        namespace: None,
    };
    let mut policy = spec_with_token("tok");
    clients(&engine(), &policy, &secrets, timeouts())
        .await
        .unwrap();
    policy.gateway_auth.ca = Some(SecretRef::Key(SecretKeyRef {
        name: "tok".into(),
        key: "ca".into(),
    }));
    let e = clients(&engine(), &policy, &secrets, timeouts())
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("spec.gatewayAuth.ca:"), "{e}");
}

#[tokio::test]
async fn a_service_source_without_a_cluster_is_the_users_error() {
    let mut policy = spec_with_token("x");
    policy.source = SourceSpec::Service {
        name: "pgw".into(),
        port: None,
        instance_url: crate::discover::InstanceUrl::default(),
    };
    let clients = Clients {
        prometheus: reqwest::Client::new(),
        gateway: engine().private_access(reqwest::Client::new()),
        egress: std::sync::Arc::new(Egress::open()),
    };
    let e = replicas(&policy, &clients, timeouts(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("needs a cluster"), "{e}");
    assert!(
        e.to_string().starts_with("invalid spec.service.name"),
        "{e}"
    );
    assert_eq!(e.exit_code(), crate::report::exit::USAGE);
}

/// A port nothing listens on, on loopback.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_remote_that_is_down_names_the_cause_not_only_the_wrapper() {
    let port = closed_port();
    let policy = spec_with_token("x");
    let clients = Clients {
        prometheus: reqwest::Client::new(),
        gateway: engine().private_access(reqwest::Client::new()),
        egress: std::sync::Arc::new(Egress::open()),
    };
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let gateway =
        crate::gateway::Gateway::new(url, clients.gateway.http.clone(), Duration::from_secs(5));
    let e = gateway.status().await.unwrap_err();
    assert!(matches!(e, Error::Http { .. }), "{e:?}");
    assert!(
        e.to_string().to_lowercase().contains("connection refused"),
        "{e}"
    );
    assert_eq!(e.exit_code(), crate::report::exit::REPLICA_FAILED);

    let mut via_prometheus = policy;
    let checked = crate::policy::check(
        &serde_json::from_value(serde_json::json!({
            "prometheus": {"url": format!("http://127.0.0.1:{port}"), "job": "pgw"},
            "ttl": "1h",
        }))
        .unwrap(),
        Duration::ZERO,
        &Tuning::default(),
    )
    .unwrap();
    via_prometheus.source = checked.source;
    let e = replicas(&via_prometheus, &clients, timeouts(), None)
        .await
        .unwrap_err();
    assert!(
        e.to_string().to_lowercase().contains("connection refused"),
        "{e}"
    );
    assert_eq!(e.fault(), crate::error::Fault::Remote);
}
