//! The controller process on the real server: ready after its first watch list, and a clean
//! stop on SIGTERM.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, PostParams};
use serde_json::json;

use super::setup::*;
use crate::common::k8s::{wait_until, Cluster, Controller};
use crate::common::GatewayOpts;

/// A ServiceAccount with no grant yet, and a kubeconfig holding only its token.
async fn ungranted_identity(cluster: &Cluster, name: &str) -> std::path::PathBuf {
    let accounts: Api<ServiceAccount> = cluster.api();
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some(name.into());
    accounts
        .create(&PostParams::default(), &sa)
        .await
        .expect("create ServiceAccount");
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("TokenRequest")
        .status
        .expect("a token")
        .token;
    cluster
        .server
        .write_token_kubeconfig(name, &token, &cluster.ns)
}

/// What the controller needs to list and watch policies in the namespace, and no more.
async fn grant_watch(cluster: &Cluster, sa: &str) {
    let roles: Api<Role> = cluster.api();
    let mut role = Role::default();
    role.metadata.name = Some(sa.into());
    role.rules = Some(vec![PolicyRule {
        api_groups: Some(vec!["pgw-janitor.dev".into()]),
        resources: Some(vec!["pushgatewayretentions".into()]),
        verbs: vec!["list".into(), "watch".into(), "get".into()],
        ..Default::default()
    }]);
    roles
        .create(&PostParams::default(), &role)
        .await
        .expect("create Role");
    let bindings: Api<RoleBinding> = cluster.api();
    let mut binding = RoleBinding::default();
    binding.metadata.name = Some(sa.into());
    binding.role_ref = RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: "Role".into(),
        name: sa.into(),
    };
    binding.subjects = Some(vec![Subject {
        kind: "ServiceAccount".into(),
        name: sa.into(),
        namespace: Some(cluster.ns.clone()),
        ..Default::default()
    }]);
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("create RoleBinding");
}

/// `/readyz` answers 503 for as long as the first list cannot be had (the real API server
/// refuses it: the ServiceAccount has no grant yet), and 200 once the grant lets it through.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_until_the_first_list_and_200_after() {
    let cluster = Cluster::new("unready").await;
    let kubeconfig = ungranted_identity(&cluster, "late").await;
    let mut opts = controller_opts("late", &cluster.ns);
    opts.kubeconfig = Some(kubeconfig);
    let ctl = Controller::start(&opts);
    let username = format!("system:serviceaccount:{}:late", cluster.ns);
    let refused_list = || {
        cluster.audit_of(&username).iter().any(|e| {
            e["verb"] == "list"
                && e["objectRef"]["resource"] == "pushgatewayretentions"
                && e["responseStatus"]["code"] == 403
        })
    };
    // Its list refused at least once, and it answers, while not ready.
    let refused = wait_until(SOON, || async {
        refused_list() && ctl.readyz().await.is_some()
    })
    .await;
    assert!(
        refused,
        "no refused list, or no answer; log:\n{}",
        ctl.log_tail(20)
    );
    let before = ctl.get("/readyz").await;
    assert_eq!(
        before,
        Some((503, "not ready".to_string())),
        "before the first list; log:\n{}",
        ctl.log_tail(20)
    );
    grant_watch(&cluster, "late").await;
    let ready = wait_until(SOON, || async { ctl.readyz().await == Some(200) }).await;
    assert!(
        ready,
        "/readyz never 200 after the grant; log:\n{}",
        ctl.log_tail(20)
    );
}

/// `/readyz` is 200 once the watch delivered; the audit log shows the namespaced watch.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_200_after_the_first_watch_event() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("ready", GatewayOpts::default()).await;
    s.create("ready", spec_for(&s.gw, json!({}))).await;
    s.wait_status("ready", "a sweep", |p| totals_sweeps(p) >= 1)
        .await;
    let watched = s.cluster.server.audit_events().iter().any(|e| {
        e["verb"] == "watch"
            && e["objectRef"]["resource"] == "pushgatewayretentions"
            && e["objectRef"]["namespace"] == s.cluster.ns.as_str()
    });
    assert!(
        watched,
        "no namespaced watch of pushgatewayretentions in the audit log"
    );
    let last = std::sync::Mutex::new(None);
    let ready = wait_until(SOON, || async {
        let r = s.ctl.readyz().await;
        *last.lock().unwrap() = r;
        r == Some(200)
    })
    .await;
    let last = last.into_inner().unwrap();
    assert!(
        ready,
        "/readyz never 200 ({last:?}); log:\n{}",
        s.ctl.log_tail(20)
    );
}

/// After SIGTERM `/readyz` stops answering 200 (503 while shutting down, or nothing once
/// gone) and the process exits 0 within its shutdown timeout.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_readiness_and_exits_0() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("stop", GatewayOpts::default()).await;
    s.create("stop", spec_for(&s.gw, json!({}))).await;
    s.wait_status("stop", "a sweep", |p| totals_sweeps(p) >= 1)
        .await;
    let mut ctl = s.ctl;
    let ready = wait_until(SOON, || async { ctl.readyz().await == Some(200) }).await;
    assert!(ready, "ready before the signal; log:\n{}", ctl.log_tail(20));
    ctl.terminate();
    // A probe racing the signal may still see 200; once it has seen anything else it never sees
    // 200 again: 503 "shutting down" while the process winds down, then nothing.
    let seen = std::sync::Mutex::new(Vec::new());
    let gone = wait_until(SOON, || async {
        let r = ctl.get("/readyz").await;
        let done = r.is_none();
        seen.lock().unwrap().push(r);
        done
    })
    .await;
    let seen = seen.into_inner().unwrap();
    assert!(gone, "still answering after SIGTERM: {seen:?}");
    let first_not_ready = seen
        .iter()
        .position(|r| !matches!(r, Some((200, _))))
        .expect("the last answer is none");
    for r in &seen[first_not_ready..] {
        assert!(
            r.is_none() || r == &Some((503, "shutting down".to_string())),
            "after the first not-ready answer: {seen:?}"
        );
    }
    let status = ctl.wait_exit(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}; log:\n{}",
        ctl.log_tail(30)
    );
    assert!(
        ctl.log_tail(5).contains("stopped"),
        "no clean stop:\n{}",
        ctl.log_tail(30)
    );
}

/// A policy with nothing to do writes no INFO line per sweep: its sweeps log at debug only (the
/// harness runs the reconciler at debug to see them), so 100 idle policies stay quiet.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_policy_sweeps_without_an_info_line() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("idle", GatewayOpts::default()).await;
    s.create(
        "idle",
        spec_for(&s.gw, json!({"selector": r#"{job="nothing-here"}"#})),
    )
    .await;
    s.wait_status("idle", "three sweeps", |p| totals_sweeps(p) >= 3)
        .await;
    let key = format!("{}/idle", s.cluster.ns);
    let about_it: Vec<serde_json::Value> = s
        .ctl
        .log_events()
        .into_iter()
        .filter(|e| {
            let policy = e["policy"]
                .as_str()
                .or_else(|| e["span"]["policy"].as_str())
                .or_else(|| {
                    e["spans"]
                        .as_array()
                        .and_then(|spans| spans.iter().find_map(|s| s["policy"].as_str()))
                });
            policy == Some(key.as_str())
        })
        .collect();
    let idle = about_it
        .iter()
        .filter(|e| e["message"] == "swept: nothing to do" && e["level"] == "DEBUG")
        .count();
    assert!(idle >= 3, "the idle sweeps at debug: {about_it:#?}");
    let info: Vec<&serde_json::Value> = about_it
        .iter()
        .filter(|e| e["level"] == "INFO" || e["level"] == "WARN")
        .collect();
    assert!(
        info.is_empty(),
        "lines above debug about an idle policy: {info:#?}"
    );
}
