//! Shared harness for integration tests: real programs on loopback, not mocks.
//!
//! - [`TestGateway`]: a real Pushgateway (Debian's 1.5.1, or the binary `PGW_JANITOR_TEST_PUSHGATEWAY`
//!   names: `scripts/test.sh` runs the gateway suites with 1.11.3 too) on a free port, with its
//!   own temp dir and `--persistence.file=` empty (Debian defaults it to one file shared by every
//!   replica). Pushes go over HTTP in text exposition format with grouping keys encoded by the
//!   harness itself (`job@base64/...`, URL-safe, `=` for an empty value), independently from the
//!   crate's code, so a shared encoding bug cannot hide.
//! - [`TestPrometheus`]: a real Prometheus scraping replicas with `honor_labels: true` every 1 s,
//!   so `up{job="..."}` discovery is real. A stopped or poisoned replica shows `up` = 0.
//! - [`TestNginx`]: a real nginx, where a proxy or load balancer belongs in the picture.
//! - [`Tripwire`]: a listener that only counts connections, at an address nothing may contact.
//! - [`FaultServer`]: the one mock, for faults a real gateway cannot produce.
//! - [`container`]: the janitor's image run with podman as the chart runs it; [`chart`]: the chart
//!   rendered by Helm's SDK, its RBAC applied, tokens minted for its ServiceAccount.
//! - [`janitor()`]: the crate's binary, for end-to-end runs, always run through [`run_bounded`]
//!   or a [`process::Proc`].
//!
//! Ageing groups: `push_time_seconds` is the gateway's own `time.Now()` at the push and cannot be
//! backdated. Tests use a short TTL (e.g. `--ttl 2s --min-ttl 1s`, below the tool's 1m floor) and
//! [`sleep_past`] that TTL. The gateway's `Date` header, which the janitor measures age against,
//! has 1-second resolution, so `sleep_past` adds a margin of more than a second.
//!
//! Every process started here is killed by its own PID when its struct drops (also on panic), every
//! wait is bounded, and only 127.0.0.1 is used. One child type, [`process::Proc`], for every
//! long-running program; [`run_bounded`] (and [`sweep_json`] over it) for every run to its end.
//!
//! Each test binary (one per area: `tests/gateway/`, `tests/controller/`, `tests/offline/`, and
//! the few that need a process of their own) declares this module `pub mod common;` at its root
//! (`#[path = "../common/mod.rs"]` from an area's `main.rs`): the harness is then that binary's
//! public interface, so a helper some binary does not use is not dead code there, with no
//! `allow(dead_code)` over it; a private helper that nothing uses is still reported. The tests of
//! one binary share its process: no test sets a process-wide environment variable.

pub mod binaries;
pub mod chart;
pub mod container;
mod controller;
mod fault;
mod gateway;
pub mod k8s;
mod nginx;
pub mod process;
mod prometheus;
pub mod pusher;
pub mod run;
mod tripwire;

use std::time::Duration;

pub use fault::{Fault, FaultServer};
pub use gateway::{gauge_value, group_path, key, GatewayOpts, Key, TestGateway};
pub use nginx::TestNginx;
pub use prometheus::TestPrometheus;
pub use run::{run_bounded, sweep_json};
pub use tripwire::Tripwire;

/// A port that was free on 127.0.0.1 a moment ago. Starters retry with another port if a program
/// still finds it taken.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Held by the heaviest tests (many groups, several gateways, a memory limit), so that no two of
/// them run at once in one test binary and starve the machine or each other's timing; lighter
/// tests still run beside them.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

/// Sleeps long enough that a group pushed just before is older than `secs` on the gateway's
/// clock as the janitor reads it (the `Date` header, whole seconds): `secs` + 1.25 s.
pub async fn sleep_past(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs + 1.25)).await;
}

/// The janitor binary built by cargo for this test run. Its allow-list admits loopback, where
/// every test program listens (the controller and `run` refuse loopback without one); a test of
/// the list itself overrides it with `--allow-cidr` or removes it.
pub fn janitor() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pushgateway-janitor"));
    cmd.env("PGW_JANITOR_ALLOW_CIDRS", "127.0.0.0/8");
    cmd
}

/// An HTTP client for loopback: no proxy from the environment, no redirects followed (a `//` path
/// must show its redirect), and a timeout so a stuck program fails the test instead of hanging it.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .expect("build HTTP client")
}
