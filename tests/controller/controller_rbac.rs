//! Point 7: the chart's RBAC is enough, and no more. The chart is rendered with Helm's SDK
//! (`tests/chart/render.py`, as the chart checks render it), its ServiceAccount, Roles or
//! ClusterRoles and bindings are applied to the real API server, a token is minted for the
//! ServiceAccount (TokenRequest), and the controller runs with the rendered Deployment's
//! arguments and a kubeconfig holding only that token. The scenario works; the audit log shows
//! requests from the ServiceAccount and none answered 403; requests outside the grant are
//! refused. On an API server of its own ([`OwnServer`]): with the default values the controller
//! watches every namespace, which would reach into the other tests' namespaces.

use crate::common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{json, Value};

use common::chart::{apply_rbac, mint_token, of_kind, render};
use common::k8s::{client_from, wait_until, Controller, ControllerOpts, OwnServer};
use common::sleep_past;
use pushgateway_janitor::crd::PushgatewayRetention;
// The controller scenarios' fixtures; the one `SERIAL` lock of this binary is in `setup`.
use super::controller_e2e::fixtures::*;
use super::controller_e2e::setup::{self, *};

fn is_forbidden<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> bool {
    matches!(r, Err(kube::Error::Api(ref s)) if s.code == 403)
}

static RELEASES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The whole scenario with the chart's RBAC for `extra_values`; `namespaced`: the values watch
/// only two team namespaces (a Role in each), and a policy in each is swept.
async fn scenario_with_the_charts_rbac(namespaced: bool) {
    let _serial = SERIAL.lock().await;
    let server = OwnServer::start();
    let release = server.cluster("release").await;
    let team = server.cluster("team").await;
    // The second watched namespace, with a policy of its own.
    let team2 = server.cluster("team2").await;
    let name = format!(
        "pgwj-{}",
        RELEASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut values = json!({"minTtl": "1s", "logLevel": "info", "logFormat": "json",
                            "rbac": {"secretNames": ["pgw-auth"]}});
    if namespaced {
        values["watchNamespaces"] = json!([team.ns, team2.ns]);
    }
    // The chart's allow-list, rendered into flags that replace the harness' own: the gateway
    // is on 127.0.0.1, and only the two teams may use a `service` source.
    values["allowedTargets"] = json!({"cidrs": ["127.0.0.1/32"],
                                      "serviceNamespaces": [team.ns, team2.ns]});
    let docs = render(&name, &release.ns, &values);
    let counts = apply_rbac(&release.client, &docs).await;
    let want = if namespaced {
        [
            ("ServiceAccount", 1),
            ("ClusterRole", 0),
            ("ClusterRoleBinding", 0),
            ("Role", 2),
            ("RoleBinding", 2),
        ]
    } else {
        [
            ("ServiceAccount", 1),
            ("ClusterRole", 1),
            ("ClusterRoleBinding", 1),
            ("Role", 0),
            ("RoleBinding", 0),
        ]
    };
    let want: Vec<(String, usize)> = want.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    assert_eq!(counts, want, "rendered RBAC objects");
    let sa = of_kind(&docs, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let deployment = of_kind(&docs, "Deployment");
    let args: Vec<String> = serde_json::from_value(
        deployment[0]["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
    )
    .expect("the Deployment's args");
    for ns in [&team.ns, &team2.ns] {
        assert_eq!(
            args.iter().any(|a| a == &format!("--namespace={ns}")),
            namespaced,
            "{args:?}"
        );
    }

    let token = mint_token(&release, &sa, None).await;
    let kubeconfig = release
        .server
        .write_token_kubeconfig(&name, &token, &release.ns);

    // The scenario's world: a gateway behind basic auth, its password in a granted Secret, a
    // Service with an EndpointSlice to it, and a Secret the chart did not grant.
    let gw = gateway_with_basic_auth();
    create_secret(&team, "pgw-auth").await;
    create_secret(&team, "not-granted").await;
    create_secret(&team2, "pgw-auth").await;
    create_service(&team, "pgw", &[(&gw, true, false)]).await;
    let auth =
        json!({"basicUsername": USER, "basicPassword": {"name": "pgw-auth", "key": "password"}});
    let policies: Api<PushgatewayRetention> = team.api();
    let a = spec_for(
        &gw,
        json!({"selector": r#"{job=~"a-.*"}"#, "gatewayAuth": auth}),
    );
    let b = spec_for(
        &gw,
        json!({"static": null, "service": {"name": "pgw"},
                                  "selector": r#"{job=~"b-.*"}"#, "gatewayAuth": auth}),
    );
    let c = spec_for(
        &gw,
        json!({"selector": r#"{job=~"c-.*"}"#, "gatewayAuth": auth}),
    );
    for job in ["a-1", "b-1", "c-1"] {
        push_authed(&gw, &[("job", job)], "x 1\n").await;
    }
    sleep_past(TTL_SECS).await;

    let mut ctl = Controller::start(&ControllerOpts {
        kubeconfig: Some(kubeconfig.clone()),
        args: Some(args),
        env: vec![("POD_NAMESPACE".into(), release.ns.clone())],
        ..ControllerOpts::new(&name, None)
    });
    for (policy_name, spec) in [("static-a", a), ("service-b", b)] {
        policies
            .create(&PostParams::default(), &policy(policy_name, spec))
            .await
            .expect("create policy");
    }
    let policies2: Api<PushgatewayRetention> = team2.api();
    policies2
        .create(&PostParams::default(), &policy("static-c", c))
        .await
        .expect("create policy");
    let gone = wait_until(SOON, || async { groups_authed(&gw).await.is_empty() }).await;
    assert!(
        gone,
        "left: {:?}\n{}",
        groups_authed(&gw).await,
        ctl.log_tail(30)
    );
    // A second round, so the Swept event of static-a repeats (a patch of the Event).
    push_authed(&gw, &[("job", "a-2")], "x 1\n").await;
    sleep_past(TTL_SECS).await;
    let gone = wait_until(SOON, || async { groups_authed(&gw).await.is_empty() }).await;
    assert!(
        gone,
        "left: {:?}\n{}",
        groups_authed(&gw).await,
        ctl.log_tail(30)
    );
    for (api, policy_name, deleted) in [
        (&policies, "static-a", 2),
        (&policies, "service-b", 1),
        (&policies2, "static-c", 1),
    ] {
        let held = wait_until(SOON, || async {
            api.get(policy_name).await.is_ok_and(|p| {
                condition_is(&p, "Ready", "True")
                    && p.status
                        .as_ref()
                        .is_some_and(|s| s.totals.deleted == deleted)
            })
        })
        .await;
        assert!(
            held,
            "{policy_name}: {:#?}\n{}",
            api.get(policy_name).await,
            ctl.log_tail(30)
        );
    }
    let repeated = wait_until(SOON, || async {
        setup::events_about(&team, "static-a")
            .await
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("Swept")
                    && e.series.as_ref().is_some_and(|s| s.count >= 2)
            })
    })
    .await;
    assert!(
        repeated,
        "the Swept event was not updated: {:#?}",
        setup::events_about(&team, "static-a").await
    );
    ctl.terminate();
    let status = ctl.wait_exit(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        ctl.log_tail(30)
    );

    // Everything the controller asked, the grant allowed: read before the probes below, which
    // use the same identity.
    let username = format!("system:serviceaccount:{}:{sa}", release.ns);
    let requests = release.audit_of(&username);
    let refused: Vec<&Value> = requests
        .iter()
        .filter(|e| e["responseStatus"]["code"] == 403)
        .collect();
    assert!(
        refused.is_empty(),
        "refused requests of the controller: {refused:#?}"
    );
    let did = |verb: &str, resource: &str| {
        requests.iter().any(|e| {
            e["verb"] == verb
                && format!(
                    "{}{}",
                    e["objectRef"]["resource"].as_str().unwrap_or_default(),
                    e["objectRef"]["subresource"]
                        .as_str()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default()
                ) == resource
        })
    };
    for (verb, resource) in [
        ("list", "pushgatewayretentions"),
        ("watch", "pushgatewayretentions"),
        ("patch", "pushgatewayretentions/status"),
        ("create", "events"),
        ("patch", "events"),
        ("list", "endpointslices"),
        ("get", "secrets"),
    ] {
        assert!(
            did(verb, resource),
            "no {verb} {resource} in the audit log of {username}"
        );
    }

    // Outside the grant: refused.
    let sa_client = client_from(&kubeconfig, &team.ns).await;
    let as_sa: Api<PushgatewayRetention> = Api::namespaced(sa_client.clone(), &team.ns);
    assert!(
        is_forbidden(as_sa.delete("static-a", &DeleteParams::default()).await),
        "deleting a policy"
    );
    let secrets: Api<Secret> = Api::namespaced(sa_client.clone(), &team.ns);
    assert!(
        is_forbidden(secrets.get("not-granted").await),
        "reading a Secret not granted"
    );
    assert!(secrets.get("pgw-auth").await.is_ok(), "the granted Secret");
    assert!(
        is_forbidden(secrets.list(&ListParams::default()).await),
        "listing Secrets"
    );
    let elsewhere: Api<PushgatewayRetention> = Api::namespaced(sa_client, &release.ns);
    let listed = elsewhere.list(&ListParams::default()).await;
    assert_eq!(
        is_forbidden(listed),
        namespaced,
        "policies outside the watched namespace"
    );
    assert!(
        policies.get("static-a").await.is_ok(),
        "the refused delete deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_values_rbac_is_enough_and_no_more() {
    scenario_with_the_charts_rbac(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watch_namespaces_rbac_is_enough_and_no_more() {
    scenario_with_the_charts_rbac(true).await;
}
