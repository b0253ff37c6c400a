//! The admin's allow-list in the prepare step: a policy's own URL outside it refuses the policy,
//! naming the field, before anything is sent; a discovered replica outside it is refused and
//! reported, the others kept. Listeners on 127.0.0.2 play the hosts that must not be reached.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::crd::{PushgatewayRetentionSpec, StaticSource};
use crate::discover::Replica;
use crate::http::EgressInput;
use crate::sweep::Tuning;

fn timeouts() -> Timeouts {
    Timeouts::new(Duration::from_secs(1), Duration::from_secs(1))
}

fn only(cidrs: &[&str]) -> Arc<Egress> {
    Arc::new(
        Egress::new(&EgressInput {
            cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        })
        .unwrap(),
    )
}

fn clients(egress: Arc<Egress>) -> Clients {
    let engine = Engine::new(crate::engine::Settings::from_tuning(&Tuning::default()));
    Clients {
        prometheus: reqwest::Client::new(),
        gateway: engine.private_access(reqwest::Client::new()),
        egress,
    }
}

fn static_policy(urls: &[String]) -> CheckedPolicy {
    let spec = PushgatewayRetentionSpec {
        static_: Some(StaticSource {
            urls: urls.to_vec(),
        }),
        ttl: Some("1h".into()),
        min_ttl: "1m".into(),
        interval: "5m".into(),
        ..Default::default()
    };
    crate::policy::from_spec(&spec, Duration::ZERO, &Tuning::default())
        .unwrap()
        .check()
        .unwrap()
}

/// A listener that must see no connection: it is never accepted from, so a connection would
/// wait in its backlog, and `accept` on the non-blocking socket would return it.
fn never_contacted(ip: &str) -> (TcpListener, u16) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn assert_untouched(listener: &TcpListener) {
    std::thread::sleep(Duration::from_millis(50));
    let got = listener.accept();
    assert!(
        matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "contacted: {got:?}"
    );
}

#[tokio::test]
async fn a_static_url_outside_the_list_refuses_the_policy_naming_the_field() {
    let (listener, port) = never_contacted("127.0.0.2");
    let policy = static_policy(&[
        "http://127.0.0.1:9/".into(),
        format!("http://user:pw@127.0.0.2:{port}/pgw/"),
    ]);
    let e = replicas(&policy, &clients(only(&["127.0.0.1/32"])), timeouts(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotAllowed { .. }), "{e:?}");
    assert_eq!(e.field(), Some(Field::StaticUrl(1)));
    assert_eq!(e.condition_reason(), "AddressNotAllowed");
    let text = e.public();
    assert!(
        text.contains("spec.static.urls[1]") && text.contains("127.0.0.2") && !text.contains("pw@"),
        "{text}"
    );
    assert_untouched(&listener);
}

#[tokio::test]
async fn the_controllers_default_refuses_link_local_and_loopback() {
    let open_but_guarded = Arc::new(Egress::new(&EgressInput::default()).unwrap());
    for url in [
        "http://169.254.169.254/",
        "http://127.0.0.1:9/",
        "http://[::1]:9/",
    ] {
        let e = replicas(
            &static_policy(&[url.into()]),
            &clients(open_but_guarded.clone()),
            timeouts(),
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::NotAllowed { .. }), "{url}: {e:?}");
    }
}

#[tokio::test]
async fn discovered_replicas_outside_the_list_are_refused_and_the_others_kept() {
    let found = Discovered {
        replicas: vec![
            Replica {
                url: "http://127.0.0.1:9091/".parse().unwrap(),
                instance: Some("127.0.0.1:9091".into()),
            },
            Replica {
                url: "http://127.0.0.3:9091/".parse().unwrap(),
                instance: Some("127.0.0.3:9091".into()),
            },
        ],
        refused: vec![],
    };
    let kept = admit(&only(&["127.0.0.1/32"]), found.clone())
        .await
        .unwrap();
    assert_eq!(kept.replicas, found.replicas[..1]);
    assert_eq!(kept.refused.len(), 1);
    assert_eq!(kept.refused[0].instance, "127.0.0.3:9091");
    assert!(
        kept.refused[0].why.contains("outside the allowed"),
        "{:?}",
        kept.refused
    );
    let none = admit(&only(&["10.0.0.0/8"]), found).await.unwrap_err();
    assert!(none.to_string().contains("every replica"), "{none}");
}

/// The resolver is what holds at connect time: a name that resolves outside the list is
/// refused even when nothing checked it before the request.
#[tokio::test]
async fn a_client_never_connects_to_a_name_resolving_outside_the_list() {
    let (listener, port) = never_contacted("127.0.0.1");
    let http = crate::http::build_client(
        "gateway",
        &Default::default(),
        Duration::from_secs(1),
        &only(&["127.0.0.2/32"]),
    )
    .unwrap();
    let e = http
        .get(format!("http://localhost:{port}/api/v1/status"))
        .send()
        .await
        .unwrap_err();
    let reason = crate::http::public_reason(&e);
    assert!(reason.starts_with("address not allowed"), "{reason}: {e:?}");
    assert_untouched(&listener);
}

#[tokio::test]
async fn a_service_source_outside_the_allowed_namespaces_is_refused_before_any_api_call() {
    // An API server that is never answered: the refusal must come before any call to it.
    let (service, _handle) = tower_test::mock::pair::<
        axum::http::Request<kube::client::Body>,
        axum::http::Response<kube::client::Body>,
    >();
    let cluster = Cluster {
        client: kube::Client::new(service, "team-a"),
        namespace: "team-a".into(),
    };
    let mut policy = static_policy(&["http://127.0.0.1:9/".into()]);
    policy.source = SourceSpec::Service {
        name: "pgw".into(),
        port: None,
        instance_url: crate::discover::InstanceUrl::default(),
    };
    let egress = Arc::new(
        Egress::new(&EgressInput {
            service_namespaces: vec!["monitoring".into()],
            ..Default::default()
        })
        .unwrap(),
    );
    let e = tokio::time::timeout(
        Duration::from_secs(5),
        replicas(&policy, &clients(egress), timeouts(), Some(&cluster)),
    )
    .await
    .expect("no API call was waited for")
    .unwrap_err();
    assert_eq!(e.field(), Some(Field::ServiceName), "{e}");
    assert!(e.public().contains("team-a"), "{e}");
}
