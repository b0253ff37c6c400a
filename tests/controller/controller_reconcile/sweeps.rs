//! Reconciles that sweep: a static policy and a Service policy delete their stale groups and write
//! status and one event; a sweep whose status the API refused is written later, never repeated.

use super::*;

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
