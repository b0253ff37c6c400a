//! `run --policies --once`: the valid policies of a directory are swept and the others reported by
//! file and name; replicas found through Prometheus; a dry-run policy deletes nothing.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn once_runs_the_valid_policies_of_a_directory_and_reports_the_others_by_file_and_name() {
    let gw = TestGateway::start(GatewayOpts::default());
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "10-ttl.yaml",
        &static_policy(
            "team-a",
            "short-ttl",
            &gw,
            "  selector: '{job=~\"ttl-.*\"}'\n",
        ),
    );
    let broken = static_policy(
        "team-a",
        "broken-selector",
        &gw,
        "  selector: '{job=~\"(other\"}'\n",
    );
    let service = "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\n\
                   metadata:\n  name: in-cluster-only\nspec:\n  service:\n    name: pushgateway\n  \
                   ttl: 2s\n  minTtl: 1s\n";
    write(
        dir.path(),
        "20-more.yml",
        &format!("{broken}---\n{service}"),
    );
    write(dir.path(), "notes.txt", "not a policy file: ignored");

    gw.push(&[("job", "ttl-old")], "x 1\n").await;
    gw.push(&[("job", "other")], "x 1\n").await;
    sleep_past(2.0).await;
    gw.push(&[("job", "ttl-fresh")], "x 1\n").await;

    let out = once_json(dir.path(), &[]);

    assert_eq!(
        out.code, 2,
        "the valid policy ran, and the refused ones make it exit 2:\n{}",
        out.stderr
    );
    let reports = out.json();
    assert_eq!(
        reports.len(),
        1,
        "only the valid policy ran: {}",
        out.stdout
    );
    assert_eq!(reports[0]["namespace"], "team-a");
    assert_eq!(reports[0]["report"]["summary"]["deleted"], 1);
    assert!(
        !gw.has_group(&[("job", "ttl-old")]).await,
        "stale group deleted"
    );
    assert!(
        gw.has_group(&[("job", "ttl-fresh")]).await,
        "fresh group kept"
    );
    assert!(
        gw.has_group(&[("job", "other")]).await,
        "the broken policy touched nothing"
    );
    let line = |needle: &str| {
        out.stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no stderr line with {needle:?}:\n{}", out.stderr))
            .to_string()
    };
    let broken = line("team-a/broken-selector");
    assert!(
        broken.contains("20-more.yml") && broken.contains("spec.selector"),
        "{broken}"
    );
    let service = line("default/in-cluster-only");
    assert!(
        service.contains("20-more.yml") && service.contains("needs a cluster"),
        "{service}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn once_finds_the_replicas_through_prometheus() {
    let gw = TestGateway::start(GatewayOpts::default());
    let prom = TestPrometheus::start("pushgateway", &[gw.address()]);
    prom.wait_for_up("pushgateway", 1, Duration::from_secs(60))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "prom.yaml",
        &format!(
            "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
             name: via-prometheus\n  namespace: monitoring\nspec:\n  prometheus:\n    url: {}\n    \
             job: pushgateway\n  ttl: 2s\n  minTtl: 1s\n",
            prom.url
        ),
    );
    gw.push(&[("job", "prom-old")], "x 1\n").await;
    sleep_past(2.0).await;
    gw.push(&[("job", "prom-fresh")], "x 1\n").await;

    let out = once_json(file, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.report("via-prometheus");
    assert_eq!(report["summary"]["replicas"], 1, "{report}");
    assert_eq!(report["summary"]["deleted"], 1, "{report}");
    assert!(!gw.has_group(&[("job", "prom-old")]).await);
    assert!(gw.has_group(&[("job", "prom-fresh")]).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_policy_deletes_nothing_and_reports_what_would_go() {
    let gw = TestGateway::start(GatewayOpts::default());
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "dry.yaml",
        &static_policy("default", "dry", &gw, "  dryRun: true\n"),
    );
    gw.push(&[("job", "would-go")], "x 1\n").await;
    sleep_past(2.0).await;

    let table = run_once(&[
        "run",
        "--policies",
        file.to_str().unwrap(),
        "--once",
        "--min-ttl",
        "1s",
    ]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("== default/dry"), "{}", table.stdout);
    assert!(table.stdout.contains("would-delete"), "{}", table.stdout);
    assert!(table.stdout.contains("(dry run)"), "{}", table.stdout);

    let out = once_json(file, &[]);
    let report = out.report("dry");
    assert_eq!(report["summary"]["would_delete"], 1, "{report}");
    assert_eq!(report["summary"]["deleted"], 0, "{report}");
    assert_eq!(report["actions"][0]["outcome"], "would-delete");
    assert!(
        gw.has_group(&[("job", "would-go")]).await,
        "dry run kept it"
    );
}
