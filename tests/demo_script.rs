//! `scripts/demo.sh`, the README's first command, keeps working: everything around the sweep
//! (replicas, Prometheus, pushes, the poisoned replica, the listing) runs, and every process it
//! started is gone when it exits. The sweep itself is covered by the sweep tests.

use std::path::Path;
use std::process::Command;

#[test]
fn demo_script_sets_up_the_scenario_and_cleans_up_after_itself() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let out = Command::new("bash")
        .arg(&script)
        // Never apt-get from a test; skip the release build and the sweep.
        .env("DEMO_NO_INSTALL", "1")
        .env("DEMO_SKIP_SWEEP", "1")
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");

    for expected in [
        r#"{job="disk-backup",path="/var/lib x"}"#,
        r#"{instance="",job="batch"}  phantom"#,
        "GET /metrics answers 500",
        r#"{job="nightly-backup"}"#,
        "answered 400",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let up_lines = stdout
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
