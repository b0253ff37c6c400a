//! Issue 23: a policy author cannot read the cluster's network through the controller.
//!
//! - A server that is not a gateway (a real nginx) answers with a secret in its body; the secret
//!   reaches no status field, condition or event of the policy, which still says what happened
//!   in the janitor's words. A redirect to another host is not followed, with the policy's
//!   credentials or without. A Secret of another namespace is never read.
//! - The admin's allow-list (`--allow-cidr`): addresses outside it are refused before any
//!   request (tripwires on 127.0.0.2 and 127.0.0.3 count every connection), in the policy's URLs
//!   and among the replicas a Prometheus returns; without a list, link-local and loopback are.

use serde_json::json;

use super::fixtures::*;
use super::setup::*;
use crate::common::k8s::{Cluster, Controller};
use crate::common::{sleep_past, GatewayOpts, TestGateway, TestNginx, TestPrometheus, Tripwire};
use pushgateway_janitor::crd::PushgatewayRetention;

const SECRET: &str = "AKIA-not-for-the-author-7f3e";

/// A controller watching a fresh namespace with `args` added (the harness' own list admits
/// all of loopback; `--allow-cidr` replaces it).
async fn setup_with(prefix: &str, args: &[&str], env: &[(&str, &str)]) -> Setup {
    let cluster = Cluster::new(prefix).await;
    let mut opts = controller_opts("ctl-a", &cluster.ns);
    opts.extra_args.extend(args.iter().map(|a| a.to_string()));
    opts.env
        .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Setup {
        api: cluster.api(),
        gw: TestGateway::start(GatewayOpts::default()),
        ctl: Controller::start(&opts),
        cluster,
    }
}

/// Everything of `name` its author can read: the status and the events about it.
async fn author_view(s: &Setup, p: &PushgatewayRetention) -> String {
    let events: Vec<String> = s
        .events_about(&p.metadata.name.clone().unwrap_or_default())
        .await
        .into_iter()
        .map(|e| {
            format!(
                "{} {}",
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default()
            )
        })
        .collect();
    format!(
        "{}\n{}",
        serde_json::to_string(&p.status).unwrap(),
        events.join("\n")
    )
}

fn failed_replica_error(p: &PushgatewayRetention) -> Option<String> {
    let last = p.status.as_ref()?.last_sweep.as_ref()?;
    let replica = last.replicas.first().filter(|r| r.state == "failed")?;
    replica.error.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_is_not_a_gateway_leaks_nothing_into_status_or_events() {
    let _serial = SERIAL.lock().await;
    let s = setup_with("noleak", &[], &[]).await;
    let elsewhere = Tripwire::start_on("127.0.0.2");
    let nginx = TestNginx::start(
        "",
        &format!(
            "location /p404/ {{ return 404 \"{SECRET}\"; }}\n    \
             location /p500/ {{ return 500 \"{SECRET}\"; }}\n    \
             location /html/ {{ default_type text/html; return 200 \"<html>{SECRET}</html>\"; }}\n    \
             location /moved/ {{ return 302 http://{}/{SECRET}; }}\n    \
             location / {{ return 404; }}",
            elsewhere.address()
        ),
    );
    create_secret(&s.cluster, "pgw-auth").await;
    let auth = json!({"gatewayAuth": {"basicUsername": USER,
                                      "basicPassword": {"name": "pgw-auth", "key": "password"}}});
    let cases = [
        ("p404", "HTTP 404: not a Pushgateway"),
        ("p500", "HTTP 500: Internal Server Error"),
        ("html", "/html/api/v1/metrics: "),
        ("moved", "redirect not followed"),
    ];
    for (path, _) in cases {
        let url = format!("{}/{path}/", nginx.url);
        s.create(path, spec_with(&[url.as_str()], auth.clone()))
            .await;
    }
    for (path, says) in cases {
        let p = s
            .wait_status(path, "a failed replica and its Degraded condition", |p| {
                failed_replica_error(p).is_some() && condition_is(p, "Degraded", "True")
            })
            .await;
        let error = failed_replica_error(&p).unwrap();
        assert!(error.contains(says), "{path}: {error}");
        let mut view = author_view(&s, &p).await;
        for _ in 0..50 {
            if view.contains("ReplicaFailed") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            view = author_view(&s, &p).await;
        }
        assert!(
            view.contains("ReplicaFailed"),
            "{path}: no ReplicaFailed event: {view}"
        );
        assert!(
            !view.contains(SECRET),
            "{path}: the remote's words reached the author:\n{view}"
        );
    }
    // The admin still has the whole answer, in the controller's own log.
    assert!(
        s.ctl.log_tail(400).contains(SECRET),
        "the log keeps the detail"
    );
    assert_eq!(
        elsewhere.connections(),
        0,
        "a redirect to another host is never followed"
    );

    // Credentials come only from the policy's namespace: a Secret of the same name elsewhere
    // is not read, and the gateway behind basic auth is left alone.
    let other = Cluster::new("noleak-other").await;
    create_secret(&other, "other-auth").await;
    let gw = gateway_with_basic_auth();
    push_authed(&gw, STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;
    s.create(
        "foreign-secret",
        spec_for(
            &gw,
            json!({"gatewayAuth": {"basicUsername": USER,
                                   "basicPassword": {"name": "other-auth", "key": "password"}}}),
        ),
    )
    .await;
    let p = s
        .wait_status(
            "foreign-secret",
            "Ready=False for the missing Secret",
            |p| condition(p, "Ready").is_some_and(|c| c.reason == "SecretUnavailable"),
        )
        .await;
    let message = condition(&p, "Ready").unwrap().message.clone();
    assert!(
        message.contains(&format!("not found in namespace {:?}", s.cluster.ns)),
        "{message}"
    );
    assert_eq!(
        groups_authed(&gw).await,
        ["stale-1"],
        "nothing was sent to the gateway"
    );
    let foreign_reads = s
        .cluster
        .server
        .audit_events()
        .into_iter()
        .filter(|e| {
            e["verb"] == "get"
                && e["objectRef"]["resource"] == "secrets"
                && e["objectRef"]["namespace"] == other.ns.as_str()
        })
        .count();
    assert_eq!(foreign_reads, 0, "a Secret of another namespace was read");
}

/// The list admits 127.0.0.1 only: 127.0.0.2 named by a policy, as a gateway or as Prometheus,
/// is refused before any request; a replica Prometheus returns on 127.0.0.3 is refused and
/// reported while the gateway on 127.0.0.1 is swept.
#[tokio::test(flavor = "multi_thread")]
async fn addresses_outside_the_allow_list_are_refused_before_any_request() {
    let _serial = SERIAL.lock().await;
    let s = setup_with("allow", &["--allow-cidr", "127.0.0.1/32"], &[]).await;
    let elsewhere = Tripwire::start_on("127.0.0.2");
    let target = Tripwire::start_on("127.0.0.3");
    let prom = TestPrometheus::start("pushgateway", &[s.gw.address(), target.address()]);
    prom.wait_for_up("pushgateway", 2, SOON).await;
    s.gw.push(STALE_1, "x 1\n").await;
    s.gw.push(STALE_2, "x 1\n").await;
    sleep_past(TTL_SECS).await;

    let outside = format!("http://{}/", elsewhere.address());
    s.create("gateway-outside", spec_with(&[outside.as_str()], json!({})))
        .await;
    s.create(
        "prometheus-outside",
        spec_for(
            &s.gw,
            json!({"static": null, "prometheus": {"url": outside, "job": "pushgateway"}}),
        ),
    )
    .await;
    s.create(
        "inside",
        spec_for(&s.gw, json!({"selector": "{job=\"stale-1\"}"})),
    )
    .await;
    s.create(
        "via-prometheus",
        spec_for(
            &s.gw,
            json!({"static": null, "selector": "{job=\"stale-2\"}",
                   "prometheus": {"url": prom.url, "job": "pushgateway"}}),
        ),
    )
    .await;

    for (name, field) in [
        ("gateway-outside", "spec.static.urls[0]"),
        ("prometheus-outside", "spec.prometheus.url"),
    ] {
        let p = s
            .wait_status(name, "Ready=False, AddressNotAllowed", |p| {
                condition(p, "Ready").is_some_and(|c| c.reason == "AddressNotAllowed")
            })
            .await;
        let message = condition(&p, "Ready").unwrap().message.clone();
        assert!(
            message.contains(field) && message.contains("127.0.0.2"),
            "{name}: {message}"
        );
    }
    s.wait_gone(&[STALE_1, STALE_2]).await;
    let p = s
        .wait_status("via-prometheus", "a sweep that refused 127.0.0.3", |p| {
            p.status
                .as_ref()
                .and_then(|st| st.last_sweep.as_ref())
                .is_some_and(|l| l.refused.iter().any(|r| r.contains("127.0.0.3")))
        })
        .await;
    let last = p.status.as_ref().unwrap().last_sweep.clone().unwrap();
    assert_eq!(last.replicas.len(), 1, "{last:#?}");
    assert_eq!(last.replicas[0].url, s.gw.base_url);
    assert_eq!(elsewhere.connections(), 0, "127.0.0.2 was contacted");
}

/// With no list at all, link-local (cloud metadata) and loopback are refused.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_list_link_local_and_loopback_are_refused() {
    let _serial = SERIAL.lock().await;
    let s = setup_with("nolist", &[], &[("PGW_JANITOR_ALLOW_CIDRS", "")]).await;
    let wire = Tripwire::start();
    let loopback = format!("http://{}/", wire.address());
    s.create(
        "metadata",
        spec_with(&["http://169.254.169.254/"], json!({})),
    )
    .await;
    s.create("loopback", spec_with(&[loopback.as_str()], json!({})))
        .await;
    for (name, why) in [("metadata", "link-local"), ("loopback", "loopback")] {
        let p = s
            .wait_status(name, "Ready=False, AddressNotAllowed", |p| {
                condition(p, "Ready").is_some_and(|c| c.reason == "AddressNotAllowed")
            })
            .await;
        let message = condition(&p, "Ready").unwrap().message.clone();
        assert!(message.contains(why), "{name}: {message}");
    }
    assert_eq!(wire.connections(), 0, "loopback was contacted");
}
