//! Objects and gateways the source and RBAC scenarios share: a gateway behind basic auth, the
//! Secret holding its password, a Service with the EndpointSlices the test writes itself.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::common::k8s::Cluster;
use crate::common::{GatewayOpts, TestGateway};

pub const USER: &str = "janitor";
pub const PASSWORD: &str = "s3cret-from-the-api";

/// A gateway behind basic auth (`USER`/`PASSWORD`).
pub fn gateway_with_basic_auth() -> TestGateway {
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    TestGateway::start(GatewayOpts {
        web_config: Some(format!("basic_auth_users:\n  {USER}: {hash}\n")),
        ..Default::default()
    })
}

/// Pushes through the gateway's basic auth.
pub async fn push_authed(gw: &TestGateway, key: &[(&str, &str)], body: &str) {
    let status = crate::common::http_client()
        .put(gw.url(&crate::common::group_path(key)))
        .basic_auth(USER, Some(PASSWORD))
        .body(body.to_string())
        .send()
        .await
        .expect("push")
        .status();
    assert!(status.is_success(), "push {key:?}: {status}");
}

/// The groups on a basic-auth gateway.
pub async fn groups_authed(gw: &TestGateway) -> Vec<String> {
    let doc: serde_json::Value = crate::common::http_client()
        .get(gw.url("api/v1/metrics"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("read groups")
        .json()
        .await
        .expect("JSON");
    doc["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| g["labels"]["job"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub async fn create_secret(cluster: &Cluster, name: &str) {
    let api: Api<Secret> = cluster.api();
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.data = Some(BTreeMap::from([(
        "password".to_string(),
        ByteString(PASSWORD.as_bytes().to_vec()),
    )]));
    api.create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("create Secret {name}: {e}"));
}

/// A Service `name` with one port `http`, and one EndpointSlice per gateway (each on its own
/// port) whose one endpoint has the given `(ready, terminating)` conditions. No controller-manager
/// runs, so the test writes what the EndpointSlice controller would.
///
/// The real server refuses loopback addresses in an `IPv4` slice ("may not be in the loopback
/// range"), and the gateways only listen on 127.0.0.1; an `FQDN` slice takes `127.0.0.1` as a
/// name, and the janitor treats both address types alike (only IPv6 is bracketed).
pub async fn create_service(
    cluster: &Cluster,
    name: &str,
    backends: &[(&TestGateway, bool, bool)],
) {
    let services: Api<Service> = cluster.api();
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"ports": [{"name": "http", "port": 9091}], "selector": {"app": "pushgateway"}},
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &svc)
        .await
        .expect("create Service");
    let slices: Api<EndpointSlice> = cluster.api();
    for (i, (gw, ready, terminating)) in backends.iter().enumerate() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-{i}"),
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "FQDN",
            "ports": [{"name": "http", "port": gw.port, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.0.0.1"],
                           "conditions": {"ready": ready, "serving": ready,
                                          "terminating": terminating}}],
        }))
        .unwrap();
        slices
            .create(&PostParams::default(), &slice)
            .await
            .unwrap_or_else(|e| panic!("create EndpointSlice {name}-{i}: {e}"));
    }
}
