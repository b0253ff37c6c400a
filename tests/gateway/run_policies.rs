//! `pushgateway-janitor run --policies`: the policy files users `kubectl apply`, enforced without a
//! cluster, against real Pushgateway replicas and a real Prometheus.
//!
//! Every wait is bounded; `--once` runs go through the shared bounded `run_bounded`, the loop is a
//! `Proc`, killed by its PID if a test fails.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::process::Proc;
use common::{
    free_port, janitor, run_bounded, sleep_past, GatewayOpts, TestGateway, TestNginx,
    TestPrometheus,
};
use serde_json::Value;

/// Longest a `--once` run may take: a few sweeps of a local replica.
const ONCE: Duration = Duration::from_secs(60);

/// A policy document with a static source, a 2s TTL and the 1s floor these tests run with.
fn static_policy(namespace: &str, name: &str, gw: &TestGateway, extra: &str) -> String {
    static_policy_at(namespace, name, &gw.base_url, extra)
}

fn static_policy_at(namespace: &str, name: &str, url: &str, extra: &str) -> String {
    format!(
        "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
         name: {name}\n  namespace: {namespace}\nspec:\n  static:\n    urls: [\"{url}\"]\n  \
         ttl: 2s\n  minTtl: 1s\n{extra}"
    )
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write policy file");
    path
}

/// Output of a `--once` run.
struct Once {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Once {
    fn json(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
            .as_array()
            .expect("a JSON array of policy reports")
            .clone()
    }

    fn report(&self, name: &str) -> Value {
        self.json()
            .into_iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no report for {name}:\n{}", self.stdout))["report"]
            .clone()
    }
}

/// Runs `janitor args` through the shared bounded runner: killed by its PID after [`ONCE`].
fn run_once(args: &[&str]) -> Once {
    let mut cmd = janitor();
    cmd.args(args);
    let out = run_bounded(cmd, ONCE);
    Once {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `run --policies POLICIES --once --min-ttl 1s --output json EXTRA…`, bounded.
fn once_json(policies: impl AsRef<Path>, extra: &[&str]) -> Once {
    let policies = policies.as_ref().to_str().expect("a UTF-8 path");
    let mut args = vec![
        "run",
        "--policies",
        policies,
        "--once",
        "--min-ttl",
        "1s",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    run_once(&args)
}

mod allow;
mod engine;
mod once;
mod secrets;
mod serve;
