//! The controller's reconcile at request level: the Kubernetes API is a `tower-test` mock that
//! asserts each request (method, path, content type, body) and answers it; the gateways are real
//! Pushgateways on loopback. Every wait is bounded. The mock API server and the fixtures are here;
//! what each module proves is said at its top.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

use common::{sleep_past, GatewayOpts, TestGateway};
use pushgateway_janitor::controller::{leader, reconcile_policy, Context, Reconciled, Settings};
use pushgateway_janitor::crd::{PushgatewayRetention, PushgatewayRetentionStatus};
use pushgateway_janitor::http::{Egress, EgressInput};
use pushgateway_janitor::metrics::Metrics;
use pushgateway_janitor::server::Health;
use pushgateway_janitor::sweep::Tuning;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Reply = tower_test::mock::SendResponse<Response<Body>>;

const NS: &str = "ns1";
const STATUS_QUERY: &str = "/status?&force=true&fieldManager=pgw-janitor";
const WAIT: Duration = Duration::from_secs(30);

/// A context exactly as the controller builds it, on a mocked API server.
fn context(leader: bool) -> (Arc<Context>, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let settings = Settings {
        floor: Duration::from_secs(1),
        tuning: Tuning {
            request_timeout: Duration::from_secs(5),
            confirm_timeout: Duration::from_secs(5),
            ..Tuning::default()
        },
        // The gateways listen on loopback, which the controller refuses without a list.
        egress: Arc::new(
            Egress::new(&EgressInput {
                cidrs: vec!["127.0.0.0/8".into()],
                ..Default::default()
            })
            .expect("a valid list"),
        ),
        ..Settings::default()
    };
    let ctx = Context::new(
        client,
        Some("test".into()),
        settings,
        Arc::new(Metrics::new()),
        Arc::new(Health::default()),
        leader::fixed(leader),
    );
    (Arc::new(ctx), ApiServer(handle))
}

fn policy(name: &str, spec: Value, status: Option<Value>) -> PushgatewayRetention {
    let mut obj = json!({
        "apiVersion": "pgw-janitor.dev/v1alpha1",
        "kind": "PushgatewayRetention",
        "metadata": {"name": name, "namespace": NS, "generation": 1, "uid": "u-1",
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": spec,
    });
    if let Some(status) = status {
        obj["status"] = status;
    }
    serde_json::from_value(obj).expect("a valid PushgatewayRetention")
}

/// A policy on `urls` with a 2 s TTL, the way the tests age groups on a real gateway.
fn static_spec(urls: &[&str]) -> Value {
    json!({"static": {"urls": urls}, "ttl": "2s", "minTtl": "1s",
           "superseded": {"enabled": false, "grace": "1m"}})
}

struct ApiServer(Handle);

struct Seen {
    method: Method,
    uri: String,
    content_type: String,
    body: Value,
    reply: Reply,
}

fn respond(reply: Reply, status: StatusCode, body: &Value) {
    reply.send_response(
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

impl ApiServer {
    async fn next(&mut self) -> Seen {
        let (request, reply) = tokio::time::timeout(WAIT, self.0.next_request())
            .await
            .expect("a request within the bound")
            .expect("the client is still there");
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let content_type = request
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON body")
        };
        Seen {
            method,
            uri,
            content_type,
            body,
            reply,
        }
    }

    /// A status apply of `name` by the one field manager; answered as applied.
    async fn status_apply(&mut self, name: &str) -> PushgatewayRetentionStatus {
        let seen = self.next().await;
        assert_eq!(seen.method, Method::PATCH);
        assert_eq!(
            seen.uri,
            format!("/apis/pgw-janitor.dev/v1alpha1/namespaces/{NS}/pushgatewayretentions/{name}{STATUS_QUERY}")
        );
        assert_eq!(seen.content_type, "application/apply-patch+yaml");
        assert_eq!(seen.body["kind"], "PushgatewayRetention");
        assert_eq!(seen.body["apiVersion"], "pgw-janitor.dev/v1alpha1");
        let status: PushgatewayRetentionStatus =
            serde_json::from_value(seen.body["status"].clone()).expect("a status");
        let mut answer = serde_json::to_value(policy(name, json!({}), None)).unwrap();
        answer["status"] = seen.body["status"].clone();
        respond(seen.reply, StatusCode::OK, &answer);
        status
    }

    /// An event about policy `name`; returns its note.
    async fn event(&mut self, name: &str, type_: &str, reason: &str) -> String {
        let seen = self.next().await;
        assert_eq!(seen.method, Method::POST);
        assert_eq!(
            seen.uri,
            format!("/apis/events.k8s.io/v1/namespaces/{NS}/events?")
        );
        assert_eq!(seen.body["reason"], reason, "{}", seen.body);
        assert_eq!(seen.body["type"], type_);
        assert_eq!(seen.body["regarding"]["name"], name);
        assert_eq!(seen.body["reportingController"], "pushgateway-janitor");
        let note = seen.body["note"].as_str().unwrap_or_default().to_string();
        respond(seen.reply, StatusCode::CREATED, &seen.body);
        note
    }

    /// Nothing more is asked of the API for a while.
    async fn silent(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(300), self.0.next_request()).await;
        if let Ok(Some((request, _))) = next {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}

fn condition<'a>(
    status: &'a PushgatewayRetentionStatus,
    type_: &str,
) -> (&'a str, &'a str, &'a str) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.as_str(), c.reason.as_str(), c.message.as_str())
}

async fn reconcile(obj: &PushgatewayRetention, ctx: &Context) -> Reconciled {
    tokio::time::timeout(WAIT, reconcile_policy(obj, ctx))
        .await
        .expect("reconcile within the bound")
        .expect("reconcile succeeds")
}

mod lease;
mod sweeps;
mod without_sweep;
