//! Leader election at request level: a missing Lease is created, then locked by this identity,
//! and released on shutdown. The mock keeps one Lease and merges each patch's `spec` into it.

use super::*;
use pushgateway_janitor::controller::LeaseOptions;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ns1/leases";

fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(into), Value::Object(patch)) => {
            for (k, v) in patch {
                if v.is_null() {
                    into.remove(k);
                } else {
                    merge(into.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (into, patch) => *into = patch.clone(),
    }
}

/// Answers Lease requests until the client goes away; returns `(method, path, body)` of each.
async fn fake_leases(mut api: Handle) -> Vec<(Method, String, Value)> {
    let mut lease: Option<Value> = None;
    let mut version = 0;
    let mut log = Vec::new();
    while let Ok(Some((request, reply))) = tokio::time::timeout(WAIT, api.next_request()).await {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        log.push((method.clone(), path.clone(), body.clone()));
        version += 1;
        match (method, lease.as_mut()) {
            (Method::GET, None) => respond(
                reply,
                StatusCode::NOT_FOUND,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "leases \"x\" not found"}),
            ),
            (Method::GET, Some(l)) => respond(reply, StatusCode::OK, l),
            (Method::POST, _) => {
                let mut created = body;
                created["metadata"]["resourceVersion"] = json!(version.to_string());
                created["metadata"]["namespace"] = json!(NS);
                respond(reply, StatusCode::CREATED, &created);
                lease = Some(created);
            }
            (Method::PATCH, Some(l)) => {
                merge(&mut l["spec"], &body["spec"]);
                l["metadata"]["resourceVersion"] = json!(version.to_string());
                respond(reply, StatusCode::OK, l);
            }
            (method, _) => panic!("unexpected {method} {path}"),
        }
    }
    log
}

#[tokio::test]
async fn a_missing_lease_is_created_then_held_and_released_on_shutdown() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let server = tokio::spawn(fake_leases(handle));
    let opts = LeaseOptions {
        name: "pushgateway-janitor".into(),
        namespace: NS.into(),
        identity: "pod-a".into(),
        duration: Duration::from_secs(15),
    };
    let election = tokio::time::timeout(WAIT, leader::start(client, &opts))
        .await
        .expect("started within the bound")
        .expect("lease created");
    let mut flag = election.flag.clone();
    tokio::time::timeout(WAIT, flag.wait_for(|leader| *leader))
        .await
        .expect("leader within the bound")
        .unwrap();
    election.release(Duration::from_secs(5)).await;
    assert!(!*flag.borrow(), "not leader after release");
    let log = tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
    let path = format!("{LEASES}/pushgateway-janitor");
    assert_eq!(
        (log[0].0.clone(), log[0].1.as_str()),
        (Method::GET, path.as_str())
    );
    assert_eq!(
        (log[1].0.clone(), log[1].1.as_str()),
        (Method::POST, LEASES)
    );
    assert_eq!(log[1].2["metadata"]["name"], "pushgateway-janitor");
    assert!(
        log.iter()
            .any(|(m, _, b)| *m == Method::PATCH && b["spec"]["holderIdentity"] == "pod-a"),
        "locked by pod-a: {log:?}"
    );
    let (m, _, last) = log
        .iter()
        .rev()
        .find(|(m, _, _)| *m == Method::PATCH)
        .unwrap();
    assert_eq!(*m, Method::PATCH);
    assert!(last["spec"]["holderIdentity"].is_null(), "released: {last}");
}
