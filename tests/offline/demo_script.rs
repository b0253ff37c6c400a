//! `scripts/demo.sh`, the README's first command, keeps working end to end: it starts replicas and
//! Prometheus, pushes the scenario, runs the janitor (this build's binary, through
//! `DEMO_JANITOR`, instead of a release build) dry and for real, and every process it started is
//! gone when it exits.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::run_bounded;

#[test]
fn the_demo_sweeps_exactly_the_stale_groups_and_cleans_up_after_itself() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        // Never apt-get from a test.
        .env("DEMO_NO_INSTALL", "1")
        .env("DEMO_JANITOR", env!("CARGO_BIN_EXE_pushgateway-janitor"));
    let out = run_bounded(cmd, Duration::from_secs(180));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");

    let (before, after) = stdout
        .split_once("Groups per replica after the sweep")
        .unwrap_or_else(|| panic!("no listing after the sweep:\n{stdout}"));
    for expected in [
        r#"{job="disk-backup",path="/var/lib x"}"#,
        r#"{instance="",job="batch"}  phantom"#,
        "GET /metrics answers 500",
        "answered 400",
    ] {
        assert!(
            before.contains(expected),
            "missing {expected:?} before the sweep:\n{before}"
        );
    }
    // What the demo promises: the stale copy, ci-run, disk-backup and the phantom go; the fresh
    // copy of nightly-backup, batch and both api-smoke groups stay, and replica 2 heals.
    let groups: Vec<&str> = after
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('{'))
        .filter_map(|l| l.split("}  ").next())
        .collect();
    assert_eq!(
        groups,
        [
            r#"instance="eu-1",job="api-smoke""#,
            r#"job="api-smoke""#,
            r#"job="nightly-backup""#,
            r#"job="batch""#,
        ],
        "groups left after the sweep:\n{after}"
    );
    assert!(!after.contains("answers 500"), "replica 2 healed:\n{after}");
    assert!(
        stdout.contains("4 planned: 4 deleted"),
        "the real sweep's summary:\n{stdout}"
    );
    let up_lines = before
        .lines()
        .filter(|l| l.contains("up{instance="))
        .count();
    assert_eq!(up_lines, 3, "three replicas discovered:\n{stdout}");

    // Every "(pid N)" the script announced has been killed and reaped.
    let pids: Vec<u32> = stdout
        .split("(pid ")
        .skip(1)
        .filter_map(|rest| rest.split(')').next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 4, "3 replicas + Prometheus:\n{stdout}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still running after the demo"
        );
    }
}
