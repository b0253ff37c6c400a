//! Runs a short-lived program (the janitor, the pusher) to its end, bounded in time: on timeout
//! it is killed by its PID and the test fails with what it printed so far. A long-running one
//! (`run --policies`) is a [`Proc`], polled with [`wait_until`].

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::process::Proc;

/// Runs `cmd` with no stdin; its output goes to files, so a chatty child can never block on a
/// full pipe. Panics (after killing it) when it does not exit within `timeout`.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
    let dir = tempfile::Builder::new()
        .prefix("pgw-test-run-")
        .tempdir()
        .expect("temp dir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {program}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{program} did not exit within {timeout:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    }
}

/// Polls `cond` every 200 ms until it holds, at most `timeout`; panics naming `what`, with the
/// log of `program`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, program: &Proc, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; log:\n{}",
            program.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `pushgateway-janitor sweep ARGS --output json --min-ttl 1s --confirm-timeout 10s`,
/// bounded: the exit code, the JSON report (`null` when stdout held none) and stderr.
pub fn sweep_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut cmd = super::janitor();
    cmd.arg("sweep").args(args).args([
        "--output",
        "json",
        "--min-ttl",
        "1s",
        "--confirm-timeout",
        "10s",
    ]);
    let out = run_bounded(cmd, Duration::from_secs(120));
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code().unwrap_or(-1), report, stderr)
}
