//! What the image is, and the commands that run to their end in it: `sweep` and `validate`.

use std::time::Duration;

use serde_json::Value;

use crate::common::container::{chart_pod, image, podman, run_to_end, RunOpts};
use crate::common::k8s::repo_root;
use crate::common::{key, sleep_past, GatewayOpts, TestGateway, TestPrometheus};

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The image's own configuration is what the chart relies on: a numeric non-root user (what
/// runAsNonRoot checks when no runAsUser is given), the binary as entrypoint, and the version
/// the chart's appVersion names; the OCI archive the next step imports carries the chart's name.
#[test]
fn the_image_runs_the_janitor_as_65532_and_reports_the_crates_version() {
    let image = image();
    let out = podman(
        &[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{json .Config.Entrypoint}}",
            &image,
        ],
        30,
    );
    let config = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        config, r#"65532:65532 ["/usr/local/bin/pushgateway-janitor"]"#,
        "{image}"
    );
    let pod = chart_pod();
    assert_eq!((pod.uid, pod.gid), (65532, 65532), "the chart's user");
    // The budget of the issue that made the image: 40 MiB uncompressed, base included.
    let out = podman(&["image", "inspect", "--format", "{{.Size}}", &image], 30);
    let size: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the image's size");
    assert!(
        size <= 40 << 20,
        "{image} is {:.1} MiB uncompressed, over its 40 MiB budget",
        size as f64 / 1048576.0
    );

    let out = run_to_end(
        &RunOpts {
            args: args(&["--version"]),
            ..Default::default()
        },
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        version.trim(),
        format!("pushgateway-janitor {}", env!("CARGO_PKG_VERSION"))
    );

    // The archive the next step imports (`ctr images import`): an OCI archive skopeo reads, its
    // one image named as the chart names it, so the node finds it under that name.
    let v = env!("CARGO_PKG_VERSION");
    let archive = repo_root().join(format!("target/image/pushgateway-janitor-{v}.oci.tar"));
    let mut skopeo = std::process::Command::new("skopeo");
    skopeo
        .arg("inspect")
        .arg(format!("oci-archive:{}", archive.display()));
    let out = crate::common::run_bounded(skopeo, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "skopeo cannot read {} (built by scripts/image.sh): {}",
        archive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected: Value = serde_json::from_slice(&out.stdout).expect("skopeo prints JSON");
    assert_eq!(inspected["Os"], "linux", "{inspected:#}");
    let mut tar = std::process::Command::new("tar");
    tar.arg("-xOf").arg(&archive).arg("index.json");
    let out = crate::common::run_bounded(tar, Duration::from_secs(30));
    let index: Value = serde_json::from_slice(&out.stdout).expect("index.json is JSON");
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert_eq!(
        names,
        vec![format!("ghcr.io/pgw-janitor/pushgateway-janitor:{v}")],
        "the archive's image names"
    );
}

/// `sweep` as the chart's CronJob runs it: replicas found through a real Prometheus, the JSON
/// report on stdout, exit code 0, every stale group gone from both replicas, the fresh ones kept.
#[tokio::test(flavor = "multi_thread")]
async fn sweep_in_the_image_deletes_the_stale_groups_of_every_replica_and_keeps_the_fresh() {
    let gws = [
        TestGateway::start(GatewayOpts::default()),
        TestGateway::start(GatewayOpts::default()),
    ];
    let prom = TestPrometheus::start("pushgateway", &[gws[0].address(), gws[1].address()]);
    prom.wait_for_up("pushgateway", 2, Duration::from_secs(30))
        .await;
    for gw in &gws {
        gw.push(&[("job", "nightly"), ("instance", "a")], "rows 1\n")
            .await;
        gw.push(&[("job", "batch")], "rows 1\n").await;
    }
    sleep_past(3.0).await;
    for gw in &gws {
        gw.push(&[("job", "fresh")], "rows 1\n").await;
    }

    let out = run_to_end(
        &RunOpts {
            args: args(&[
                "sweep",
                "--prometheus",
                &prom.url,
                "--job",
                "pushgateway",
                "--ttl",
                "3s",
                "--min-ttl",
                "1s",
                "--confirm-timeout",
                "10s",
                "--output",
                "json",
            ]),
            ..Default::default()
        },
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr:\n{stderr}"));
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{report:#}");
    assert_eq!(report["summary"]["deleted"], 4, "{report:#}");
    for gw in &gws {
        assert_eq!(
            gw.groups().await,
            vec![key(&[("job", "fresh")])],
            "only the fresh group stays on {}",
            gw.base_url
        );
    }
}

/// `validate` as docs/cli.md's CI recipe runs it: a folder mounted read-only at /policies, exit 0
/// on the examples (one of them wipes at 03:00 Europe/Berlin: the zone comes from the image's tz
/// database), exit 2 naming the file, the policy and the field on a broken one.
#[test]
fn validate_in_the_image_passes_the_examples_and_fails_a_broken_policy_with_exit_2() {
    let validate = |dir: &std::path::Path, json: bool| {
        let mut a = args(&["validate", "--min-ttl", "1m"]);
        if json {
            a.extend(args(&["--output", "json"]));
        }
        a.push("/policies".into());
        run_to_end(
            &RunOpts {
                args: a,
                mounts: vec![(dir.to_path_buf(), "/policies".into())],
                ..Default::default()
            },
            Duration::from_secs(60),
        )
    };
    let examples = repo_root().join("examples/policies");
    let out = validate(&examples, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("5 valid, 0 invalid"), "{text}");

    let dir = tempfile::tempdir().expect("temp dir");
    // The container's user (65532, not root) reads it, as a mounted ConfigMap is world-readable.
    set_mode(dir.path(), 0o755);
    let broken = "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
                  name: nightly\n  namespace: team\nspec:\n  static:\n    urls: \
                  [\"http://pgw-0.invalid:9091\"]\n  action: Wipe\n  schedule:\n    cron: \"0 3 * * \
                  *\"\n    timeZone: Mars/Olympus_Mons\n";
    let file = dir.path().join("team.yaml");
    std::fs::write(&file, broken).expect("write policy");
    set_mode(&file, 0o644);
    let out = validate(dir.path(), true);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    let doc = &report["documents"][0];
    assert_eq!(doc["file"], "/policies/team.yaml", "{report:#}");
    assert_eq!(doc["policy"], "team/nightly");
    assert_eq!(doc["problems"][0]["check"], "janitor", "{report:#}");
    assert_eq!(doc["problems"][0]["field"], "spec.schedule.timeZone");
    let message = doc["problems"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Mars/Olympus_Mons"), "{message}");
}

pub fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}
