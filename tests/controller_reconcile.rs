//! The controller's reconcile at request level: the Kubernetes API is a `tower-test` mock that
//! asserts each request (method, path, content type, body) and answers it; the gateways are real
//! Pushgateways on loopback. Every wait is bounded.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

use common::{sleep_past, GatewayOpts, TestGateway};
use pushgateway_janitor::controller::{leader, reconcile_policy, Context, Reconciled, Settings};
use pushgateway_janitor::crd::{PushgatewayRetention, PushgatewayRetentionStatus};
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

#[tokio::test]
async fn an_invalid_selector_is_reported_in_status_and_an_event_and_touches_no_gateway() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let mut spec = static_spec(&[&gw.base_url]);
    spec["selector"] = json!(r#"{job=~"(unclosed"}"#);
    let obj = policy("bad", spec, None);
    let (ctx, mut api) = context(true);
    let scenario = tokio::spawn(async move {
        let status = api.status_apply("bad").await;
        let (state, reason, message) = condition(&status, "SpecInvalid");
        assert_eq!((state, reason), ("True", "InvalidSpec"));
        assert!(message.contains("spec.selector"), "{message}");
        assert_eq!(condition(&status, "Ready").0, "False");
        let note = api.event("bad", "Warning", "InvalidSpec").await;
        assert!(note.contains("spec.selector"), "{note}");
        api.silent().await;
    });
    assert_eq!(reconcile(&obj, &ctx).await, Reconciled::SpecInvalid);
    tokio::time::timeout(WAIT, scenario).await.unwrap().unwrap();
    assert!(gw.has_group(&[("job", "old")]).await, "no gateway touched");
    assert!(ctx.metrics.encode().contains(r#"result="spec_invalid""#));
}

#[tokio::test]
async fn a_static_policy_deletes_stale_groups_patches_status_and_sends_one_swept_event() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old1")], "x 1\n").await;
    gw.push(&[("job", "old2"), ("instance", "a/b")], "x 1\n")
        .await;
    sleep_past(2.0).await;
    gw.push(&[("job", "fresh")], "x 1\n").await;
    let obj = policy("ttl", static_spec(&[&gw.base_url]), None);
    let (ctx, mut api) = context(true);
    let scenario = tokio::spawn(async move {
        let status = api.status_apply("ttl").await;
        let last = status.last_sweep.clone().expect("lastSweep");
        assert_eq!(
            (last.deleted, last.replicas_found, last.replicas_failed),
            (2, 1, 0)
        );
        assert_eq!(last.groups_seen, 3);
        assert_eq!(last.sample.len(), 2);
        assert!(
            last.sample.iter().any(|s| s == r#"{job="old1"}"#),
            "{:?}",
            last.sample
        );
        assert_eq!(condition(&status, "Ready").0, "True");
        assert_eq!(condition(&status, "Degraded").0, "False");
        assert_eq!((status.totals.sweeps, status.totals.deleted), (1, 2));
        assert_eq!(status.observed_generation, Some(1));
        let note = api.event("ttl", "Normal", "Swept").await;
        assert!(note.starts_with("deleted 2 groups on 1 replicas"), "{note}");
        api.silent().await;
    });
    let done = reconcile(&obj, &ctx).await;
    assert!(
        matches!(done, Reconciled::Swept { after } if after > Duration::from_secs(250)),
        "{done:?}"
    );
    tokio::time::timeout(WAIT, scenario).await.unwrap().unwrap();
    let left = gw.groups().await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(gw.has_group(&[("job", "fresh")]).await);
    assert!(ctx.metrics.encode().contains(r#"result="ok""#));
}

#[tokio::test]
async fn a_suspended_policy_says_so_and_sweeps_nothing() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let mut spec = static_spec(&[&gw.base_url]);
    spec["suspend"] = json!(true);
    let obj = policy("paused", spec, None);
    let (ctx, mut api) = context(true);
    let scenario = tokio::spawn(async move {
        let status = api.status_apply("paused").await;
        assert_eq!(condition(&status, "Ready").0, "False");
        assert_eq!(condition(&status, "Ready").1, "Suspended");
        assert!(status.last_sweep.is_none());
        api.silent().await;
    });
    assert_eq!(reconcile(&obj, &ctx).await, Reconciled::Suspended);
    tokio::time::timeout(WAIT, scenario).await.unwrap().unwrap();
    assert!(gw.has_group(&[("job", "old")]).await);
}

#[tokio::test]
async fn a_policy_not_due_is_requeued_without_a_sweep_or_a_write() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let started = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(10);
    let cond = |t: &str, s: &str, r: &str| {
        json!({"type": t, "status": s, "reason": r, "message": "the spec was accepted",
               "observedGeneration": 1, "lastTransitionTime": "2026-01-01T00:00:00Z"})
    };
    let status = json!({
        "observedGeneration": 1,
        "conditions": [cond("Ready", "True", "Swept"), cond("SpecInvalid", "False", "Valid")],
        "lastSweep": {"startTime": started.to_string(), "durationSeconds": 0.1, "replicasFound": 1,
                      "replicasFailed": 0, "groupsSeen": 1, "deleted": 0, "wouldDelete": 0,
                      "failedDeletes": 0, "dryRun": false},
        "totals": {"sweeps": 1, "deleted": 0, "failedSweeps": 0},
    });
    let obj = policy("later", static_spec(&[&gw.base_url]), Some(status));
    let (ctx, mut api) = context(true);
    let done = reconcile(&obj, &ctx).await;
    match done {
        Reconciled::NotDue { after } => assert!(
            after > Duration::from_secs(280) && after <= Duration::from_secs(290),
            "next check at lastSweep + 5m: {after:?}"
        ),
        other => panic!("not due expected: {other:?}"),
    }
    api.silent().await;
    assert!(gw.has_group(&[("job", "old")]).await, "nothing swept");
}

#[tokio::test]
async fn a_service_policy_finds_its_replicas_in_endpoint_slices() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let spec = json!({"service": {"name": "pgw", "port": "http"}, "ttl": "2s", "minTtl": "1s"});
    let obj = policy("svc", spec, None);
    let (ctx, mut api) = context(true);
    let port = gw.port;
    let scenario = tokio::spawn(async move {
        let seen = api.next().await;
        assert_eq!(seen.method, Method::GET);
        assert!(
            seen.uri.starts_with(&format!(
                "/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices?"
            )),
            "{}",
            seen.uri
        );
        assert!(
            seen.uri
                .contains("labelSelector=kubernetes.io%2Fservice-name%3Dpgw"),
            "{}",
            seen.uri
        );
        // One replica, not ready (a poisoned gateway fails its probe) and still swept.
        let slices = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList",
            "metadata": {"resourceVersion": "7"},
            "items": [{"metadata": {"name": "pgw-abc", "namespace": NS,
                                    "labels": {"kubernetes.io/service-name": "pgw"}},
                       "addressType": "IPv4",
                       "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": false}},
                                     {"addresses": ["127.0.0.2"], "conditions": {"terminating": true}}],
                       "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}]});
        respond(seen.reply, StatusCode::OK, &slices);
        let status = api.status_apply("svc").await;
        let last = status.last_sweep.expect("lastSweep");
        assert_eq!((last.replicas_found, last.deleted), (1, 1));
        assert_eq!(last.replicas[0].url, format!("http://127.0.0.1:{port}/"));
        api.event("svc", "Normal", "Swept").await;
        api.silent().await;
    });
    assert!(matches!(
        reconcile(&obj, &ctx).await,
        Reconciled::Swept { .. }
    ));
    tokio::time::timeout(WAIT, scenario).await.unwrap().unwrap();
    assert!(gw.groups().await.is_empty());
}

#[tokio::test]
async fn a_non_leader_touches_neither_gateways_nor_status() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    sleep_past(2.0).await;
    let obj = policy("follower", static_spec(&[&gw.base_url]), None);
    let (ctx, mut api) = context(false);
    let done = reconcile(&obj, &ctx).await;
    assert_eq!(
        done,
        Reconciled::NotLeader {
            after: Settings::default().not_leader_requeue
        }
    );
    api.silent().await;
    assert!(gw.has_group(&[("job", "old")]).await);
}

#[path = "controller_reconcile/lease.rs"]
mod lease;

#[tokio::test]
async fn a_sweep_whose_status_the_api_refused_is_written_later_and_never_repeated() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old1")], "x 1\n").await;
    sleep_past(2.0).await;
    let obj = policy("flaky", static_spec(&[&gw.base_url]), None);
    let (ctx, mut api) = context(true);

    // The API server fails the status apply after the sweep (as when it restarts).
    let scenario = tokio::spawn(async move {
        let seen = api.next().await;
        assert_eq!(seen.method, Method::PATCH, "{}", seen.uri);
        respond(
            seen.reply,
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "etcdserver: leader changed", "reason": "InternalError", "code": 500}),
        );
        api
    });
    let first = tokio::time::timeout(WAIT, reconcile_policy(&obj, &ctx))
        .await
        .expect("reconcile within the bound");
    assert!(
        first.is_err(),
        "the failed status write is an error: {first:?}"
    );
    let mut api = tokio::time::timeout(WAIT, scenario).await.unwrap().unwrap();
    assert!(
        !gw.has_group(&[("job", "old1")]).await,
        "the sweep itself went through"
    );

    // A group that a second sweep would delete.
    gw.push(&[("job", "old2")], "x 1\n").await;
    sleep_past(2.0).await;
    // The next reconcile sees the object as the server holds it, with no status: it writes the
    // remembered sweep's status first, and does not sweep again for the same due time.
    let scenario = tokio::spawn(async move {
        let status = api.status_apply("flaky").await;
        let last = status.last_sweep.clone().expect("the remembered lastSweep");
        assert_eq!((last.deleted, last.groups_seen), (1, 1));
        assert_eq!(status.totals.sweeps, 1);
        // Any further write only says when the next sweep is due.
        loop {
            let next = tokio::time::timeout(Duration::from_millis(300), api.0.next_request()).await;
            let Ok(Some((request, reply))) = next else {
                break;
            };
            assert_eq!(request.method(), Method::PATCH, "{}", request.uri());
            let body = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["status"]["totals"]["sweeps"], 1, "{body}");
            let mut answer = serde_json::to_value(policy("flaky", json!({}), None)).unwrap();
            answer["status"] = body["status"].clone();
            respond(reply, StatusCode::OK, &answer);
        }
    });
    let second = reconcile(&obj, &ctx).await;
    assert!(matches!(second, Reconciled::NotDue { .. }), "{second:?}");
    tokio::time::timeout(WAIT, scenario).await.unwrap().unwrap();
    assert!(
        gw.has_group(&[("job", "old2")]).await,
        "no second sweep for the same due time"
    );
}
