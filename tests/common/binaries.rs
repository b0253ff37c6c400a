//! Which Pushgateway and Prometheus binaries the tests run, and their versions.
//!
//! `PGW_JANITOR_TEST_PUSHGATEWAY` and `PGW_JANITOR_TEST_PROMETHEUS` name the binaries (a path, or
//! a name on `PATH`); the defaults are Debian's `prometheus-pushgateway` (1.5.1) and `prometheus`
//! (2.42). `scripts/test.sh` runs the gateway suites once with each gateway and discovery once with
//! each Prometheus. The version is read once per test binary with `--version`; flags that exist
//! only in some versions are chosen from it here, never in a test.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

pub const PUSHGATEWAY_ENV: &str = "PGW_JANITOR_TEST_PUSHGATEWAY";
pub const PROMETHEUS_ENV: &str = "PGW_JANITOR_TEST_PROMETHEUS";

/// A program's `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The gateway binary the tests start.
pub fn pushgateway_bin() -> String {
    std::env::var(PUSHGATEWAY_ENV).unwrap_or_else(|_| "prometheus-pushgateway".to_string())
}

/// The Prometheus binary the tests start.
pub fn prometheus_bin() -> String {
    std::env::var(PROMETHEUS_ENV).unwrap_or_else(|_| "prometheus".to_string())
}

/// The version of [`pushgateway_bin`], read once.
pub fn pushgateway_version() -> Version {
    static V: OnceLock<Version> = OnceLock::new();
    *V.get_or_init(|| version_of(&pushgateway_bin(), PUSHGATEWAY_ENV))
}

/// The version of [`prometheus_bin`], read once.
pub fn prometheus_version() -> Version {
    static V: OnceLock<Version> = OnceLock::new();
    *V.get_or_init(|| version_of(&prometheus_bin(), PROMETHEUS_ENV))
}

/// Whether the gateway under test knows `--push.enable-utf8-names` (1.11.0+).
pub fn gateway_has_utf8_names() -> bool {
    pushgateway_version() >= Version(1, 11, 0)
}

/// For tests whose subject exists only from some version on: panics, naming the environment
/// variable, when the binary under test is older. `scripts/test.sh` runs such tests only in the
/// pass with a binary new enough, so this fails loudly instead of passing on the wrong binary.
pub fn require_pushgateway(at_least: Version) {
    let v = pushgateway_version();
    assert!(
        v >= at_least,
        "this test needs Pushgateway {at_least}+, but {} is {v}: set {PUSHGATEWAY_ENV} to a newer \
         binary (scripts/test-deps.sh builds one into target/test-deps/bin/pushgateway)",
        pushgateway_bin()
    );
}

/// Like [`require_pushgateway`], for Prometheus.
pub fn require_prometheus(at_least: Version) {
    let v = prometheus_version();
    assert!(
        v >= at_least,
        "this test needs Prometheus {at_least}+, but {} is {v}: set {PROMETHEUS_ENV} to a newer \
         binary (scripts/test-deps.sh builds one into target/test-deps/bin/prometheus)",
        prometheus_bin()
    );
}

/// Runs `bin --version` (bounded) and reads the first `version X.Y.Z` it prints.
fn version_of(bin: &str, env: &str) -> Version {
    let mut cmd = Command::new(bin);
    cmd.arg("--version");
    let out = super::run_bounded(cmd, Duration::from_secs(20));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_version(&text).unwrap_or_else(|| {
        panic!(
            "cannot tell the version of {bin} ({env}) from its --version: {text:?}; a Go build \
             without the release ldflags reports none (scripts/test-deps.sh sets them)"
        )
    })
}

/// `pushgateway, version 1.5.1+ds (branch: ...)`, `prometheus, version 3.5.0 (...)`.
fn parse_version(text: &str) -> Option<Version> {
    let rest = text.split("version ").nth(1)?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = digits.split('.').map(|p| p.parse::<u32>());
    Some(Version(
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next().and_then(Result::ok).unwrap_or(0),
    ))
}
