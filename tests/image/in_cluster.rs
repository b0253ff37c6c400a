//! `controller` in the image with in-cluster config only, as the chart's Deployment runs it
//! (`pod.rs`): found the API server, swept, wrote status, answered its probes, kept working
//! after its token was rotated and the old one revoked, read time zones from the image, and
//! ended on SIGTERM within the chart's grace period.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{json, Value};

use crate::common::chart::mint_token;
use crate::common::container::{chart_pod, ChartPod};
use crate::common::k8s::{client_from, metric_sum, wait_until};
use crate::common::{key, sleep_past, GatewayOpts, Key, TestGateway};
use crate::pod::{jti, token_anchor, Pod};
use crate::setup::{condition, condition_is, policy, spec_for, SERIAL, SOON};
use pushgateway_janitor::crd::PushgatewayRetention;

/// The policies' TTL: long enough that a group pushed just before the policy is created is
/// still fresh at the controller's first sweep.
const TTL_SECS: f64 = 6.0;

/// What the kernel says about the container's process matches the chart's securityContext.
fn assert_process_is_as_the_chart_says(pid: u32, pod: &ChartPod) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let field = |name: &str| -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (u, g) = (pod.uid, pod.gid);
    assert_eq!(field("Uid"), format!("{u} {u} {u} {u}"), "runAsUser");
    assert_eq!(field("Gid"), format!("{g} {g} {g} {g}"), "runAsGroup");
    if let Some(fs_group) = pod.fs_group {
        assert!(
            field("Groups")
                .split(' ')
                .any(|x| x == fs_group.to_string()),
            "fsGroup among the groups: {}",
            field("Groups")
        );
    }
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(
            field(cap),
            "0000000000000000",
            "{cap}: capabilities drop ALL"
        );
    }
    assert_eq!(field("NoNewPrivs"), "1", "allowPrivilegeEscalation: false");
    assert_eq!(field("Seccomp"), "2", "a seccomp filter (RuntimeDefault)");
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    let root = mounts
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.get(4) == Some(&"/"))
        .expect("a root mount");
    assert!(
        root[5].split(',').any(|o| o == "ro"),
        "readOnlyRootFilesystem: the root is mounted {}",
        root[5]
    );
}

async fn create(pod: &Pod, name: &str, spec: Value) {
    let api: Api<PushgatewayRetention> = pod.team.api();
    api.create(&PostParams::default(), &policy(name, spec))
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
}

/// Waits (bounded) until policy `name` satisfies `pred`; the last object otherwise.
async fn wait_policy<F>(pod: &Pod, name: &str, what: &str, pred: F) -> PushgatewayRetention
where
    F: Fn(&PushgatewayRetention) -> bool,
{
    let api: Api<PushgatewayRetention> = pod.team.api();
    let held = wait_until(SOON, || async {
        api.get(name).await.is_ok_and(|p| pred(&p))
    })
    .await;
    let last = api.get(name).await.expect("get the policy");
    assert!(
        held,
        "{name}: {what} not within {SOON:?}: {:#?}\ncontroller:\n{}",
        last.status,
        pod.ctr.log_tail(40)
    );
    last
}

fn deleted(p: &PushgatewayRetention) -> i64 {
    p.status.as_ref().map_or(0, |s| s.totals.deleted)
}

/// Requests of the controller's ServiceAccount the server answered 2xx with the credential `jti`.
fn answered_with(pod: &Pod, jti: &str) -> usize {
    let credential = format!("JTI={jti}");
    pod.release
        .audit_of(&pod.username())
        .iter()
        .filter(|e| {
            e["user"]["extra"]["authentication.kubernetes.io/credential-id"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|id| id == credential.as_str()))
                && e["responseStatus"]["code"]
                    .as_u64()
                    .is_some_and(|c| (200..300).contains(&c))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_in_the_image_works_in_cluster_and_through_a_token_rotation() {
    let _serial = SERIAL.lock().await;
    let gw = TestGateway::start(GatewayOpts::default());
    let mut pod = Pod::start("incluster", Some("token-a"), &[]).await;
    assert_process_is_as_the_chart_says(pod.ctr.host_pid(), &chart_pod());
    let ready = wait_until(SOON, || async {
        matches!(pod.get("/readyz").await, Some((200, _)))
    })
    .await;
    assert!(ready, "never ready:\n{}", pod.ctr.log_tail(40));

    gw.push(&[("job", "stale-1")], "x 1\n").await;
    sleep_past(TTL_SECS).await;
    gw.push(&[("job", "fresh")], "x 1\n").await;
    let ttl = format!("{TTL_SECS}s");
    create(&pod, "ttl", spec_for(&gw, json!({"ttl": ttl}))).await;
    let p = wait_policy(&pod, "ttl", "one group deleted", |p| {
        deleted(p) == 1 && condition_is(p, "Ready", "True")
    })
    .await;
    assert_eq!(
        gw.groups().await,
        vec![key(&[("job", "fresh")])],
        "stale gone, fresh kept: {:#?}",
        p.status
    );
    for path in ["/livez", "/readyz"] {
        assert_eq!(pod.get(path).await.map(|(s, _)| s), Some(200), "{path}");
    }
    let (status, metrics) = pod.get("/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200);
    let team = pod.team.ns.clone();
    let policy_labels = [("namespace", team.as_str()), ("policy", "ttl")];
    assert!(
        metric_sum(&metrics, "pgw_janitor_sweeps_total", &policy_labels) >= 1.0
            && metric_sum(&metrics, "pgw_janitor_groups_deleted_total", &policy_labels) == 1.0,
        "{metrics}"
    );

    // The kubelet rotates the token: a new one in the volume, and (here) the old one revoked by
    // deleting the Secret it is bound to. kube reads the file again at most a minute after it
    // last did, on its next request.
    let token_a = std::fs::read_to_string(pod_token_path(&pod)).expect("the token in use");
    let anchor = token_anchor(&pod.release, "token-b").await;
    let token_b = mint_token(&pod.release, &pod.sa, Some(anchor)).await;
    pod.volume.write(&token_b);
    let switched = wait_until(Duration::from_secs(120), || async {
        answered_with(&pod, &jti(&token_b)) > 0
    })
    .await;
    assert!(
        switched,
        "no request with the new token within 120s:\n{}",
        pod.ctr.log_tail(30)
    );
    let secrets: Api<Secret> = pod.release.api();
    secrets
        .delete("token-a", &DeleteParams::default())
        .await
        .expect("delete Secret token-a");
    let kubeconfig = pod
        .release
        .server
        .write_token_kubeconfig("token-a", &token_a, &team);
    let revoked = wait_until(Duration::from_secs(60), || async {
        let client = client_from(&kubeconfig, &team).await;
        let api: Api<PushgatewayRetention> = Api::namespaced(client, &team);
        matches!(api.list(&ListParams::default()).await, Err(kube::Error::Api(s)) if s.code == 401)
    })
    .await;
    assert!(
        revoked,
        "the old token still works after its Secret is gone"
    );

    // `fresh` has aged past the TTL meanwhile and went with the old token or the new; a group
    // pushed now goes, and its count is written, only with the new one.
    gw.push(&[("job", "stale-2")], "x 1\n").await;
    sleep_past(TTL_SECS).await;
    wait_policy(
        &pod,
        "ttl",
        "three groups deleted, the last after the rotation",
        |p| deleted(p) == 3,
    )
    .await;
    assert_eq!(gw.groups().await, Vec::<Key>::new(), "every group went");
    pod.stop_like_the_kubelet();
}

fn pod_token_path(pod: &Pod) -> std::path::PathBuf {
    pod.volume.path().join("token")
}

/// `schedule.timeZone: Europe/Berlin` needs the tz database in the image: accepted, and the next
/// wipe planned at 03:00 Berlin time; an unknown zone is refused with the janitor's message.
#[tokio::test(flavor = "multi_thread")]
async fn time_zones_come_from_the_images_tz_database() {
    let _serial = SERIAL.lock().await;
    let gw = TestGateway::start(GatewayOpts::default());
    let mut pod = Pod::start("tz", None, &[]).await;
    let wipe = |zone: &str| {
        spec_for(
            &gw,
            json!({"action": "Wipe", "ttl": null,
                   "schedule": {"cron": "0 3 * * *", "timeZone": zone}}),
        )
    };
    create(&pod, "berlin", wipe("Europe/Berlin")).await;
    create(&pod, "mars", wipe("Mars/Olympus_Mons")).await;

    let p = wait_policy(&pod, "berlin", "a next wipe", |p| {
        p.status
            .as_ref()
            .is_some_and(|s| s.next_scheduled_wipe.is_some())
    })
    .await;
    assert!(!condition_is(&p, "SpecInvalid", "True"), "{:#?}", p.status);
    let next = p
        .status
        .as_ref()
        .and_then(|s| s.next_scheduled_wipe.clone());
    let next: jiff::Timestamp = next
        .as_deref()
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|e| panic!("nextScheduledWipe {next:?}: {e}"));
    let berlin = next
        .in_tz("Europe/Berlin")
        .expect("the host knows Europe/Berlin");
    assert_eq!(
        (berlin.hour(), berlin.minute(), berlin.second()),
        (3, 0, 0),
        "planned at {berlin}"
    );
    let ahead = next.duration_since(jiff::Timestamp::now());
    assert!(
        ahead > jiff::SignedDuration::ZERO && ahead < jiff::SignedDuration::from_hours(25),
        "{next} is the next 03:00 in Berlin"
    );

    let p = wait_policy(&pod, "mars", "SpecInvalid", |p| {
        condition_is(p, "SpecInvalid", "True")
    })
    .await;
    let message = &condition(&p, "SpecInvalid").expect("the condition").message;
    assert!(
        message.contains("spec.schedule.timeZone") && message.contains("Mars/Olympus_Mons"),
        "{message}"
    );
    pod.stop_like_the_kubelet();
}

/// SIGTERM while the controller sweeps: it ends on its own, exit code 0, well within the chart's
/// terminationGracePeriodSeconds, and the container is gone.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_the_controller_in_the_image_within_the_charts_grace_period() {
    let _serial = SERIAL.lock().await;
    let gw = TestGateway::start(GatewayOpts::default());
    let mut pod = Pod::start("sigterm", None, &[]).await;
    assert_process_is_as_the_chart_says(pod.ctr.host_pid(), &chart_pod());
    create(&pod, "ttl", spec_for(&gw, json!({"ttl": "1h"}))).await;
    wait_policy(&pod, "ttl", "a sweep", |p| {
        p.status.as_ref().is_some_and(|s| s.totals.sweeps >= 1)
    })
    .await;
    pod.stop_like_the_kubelet();
    let out = crate::common::container::podman(&["container", "exists", &pod.ctr.name], 30);
    assert!(!out.status.success(), "the container is removed (--rm)");
}
