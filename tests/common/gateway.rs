//! A real Pushgateway replica on a free loopback port (the binary `PGW_JANITOR_TEST_PUSHGATEWAY`
//! names, see `binaries.rs`), and a client that talks to it the way pushers do (text exposition
//! format over `PUT`), written independently from the crate.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use super::binaries::{gateway_has_utf8_names, pushgateway_bin, pushgateway_version};
use super::process::{send_signal, Proc, StartError};
use super::{free_port, http_client};

// Pushing, deleting and reading groups: the second half of `TestGateway`.
mod client;

/// How to start a replica.
#[derive(Debug, Clone, Default)]
pub struct GatewayOpts {
    /// Pass `--web.enable-admin-api` (enables `PUT api/v1/admin/wipe`).
    pub admin_api: bool,
    /// `--web.route-prefix`, e.g. `Some("/pg".into())`; every route (`-/ready` too) moves under it.
    pub route_prefix: Option<String>,
    /// `--push.enable-utf8-names` (1.11+; panics on an older binary).
    pub utf8_names: bool,
    /// `--persistence.file` (with `--persistence.interval` in `extra_args` if wanted); without
    /// it, no persistence.
    pub persistence_file: Option<std::path::PathBuf>,
    /// Appended to the command line as is.
    pub extra_args: Vec<String>,
    /// Content of a `--web.config.file` (TLS, basic auth). Readiness then accepts any HTTP
    /// answer, since `-/ready` itself is behind the auth.
    pub web_config: Option<String>,
}

/// A grouping key as the JSON API reports it: label name → value, `job` included.
pub type Key = BTreeMap<String, String>;

/// Builds a [`Key`] from `[("job", "a"), ("instance", "")]`.
pub fn key(pairs: &[(&str, &str)]) -> Key {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The path of a group below the route prefix: `metrics/job@base64/<b64>/<name>@base64/<b64>...`,
/// URL-safe base64 without padding, an empty value written `=`. The first pair must be the job.
pub fn group_path(pairs: &[(&str, &str)]) -> String {
    let (first, job) = pairs
        .first()
        .expect("a grouping key needs at least the job");
    assert_eq!(
        *first, "job",
        "the first pair of a grouping key must be (\"job\", ..)"
    );
    let mut path = format!("metrics/job@base64/{}", b64(job));
    for (name, value) in &pairs[1..] {
        path.push_str(&format!("/{name}@base64/{}", b64(value)));
    }
    path
}

fn b64(value: &str) -> String {
    if value.is_empty() {
        // A bare empty segment would become `//`, which the gateway's router redirects away.
        "=".to_string()
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value)
    }
}

/// Reads a gauge family's first value from a group object of `api/v1/metrics`
/// (e.g. `push_time_seconds`); values are Go-formatted floats in strings.
pub fn gauge_value(group: &Value, family: &str) -> Option<f64> {
    group
        .get(family)?
        .get("metrics")?
        .get(0)?
        .get("value")?
        .as_str()?
        .parse()
        .ok()
}

/// One running replica. Dropping it kills the process (by PID) and removes its temp dir.
pub struct TestGateway {
    pub port: u16,
    /// `http://127.0.0.1:PORT/<prefix>/`, always ending with `/`.
    pub base_url: String,
    /// Route prefix without slashes, `""` when none.
    prefix: String,
    proc: Proc,
    client: reqwest::Client,
    /// The command line, for [`TestGateway::restart`].
    args: Vec<String>,
    any_answer: bool,
    // Dropped after `proc` (field order), so the log outlives the process.
    _dir: tempfile::TempDir,
}

impl TestGateway {
    /// Starts a replica and waits (bounded) until `-/ready` answers 200.
    pub fn start(opts: GatewayOpts) -> TestGateway {
        let prefix = opts
            .route_prefix
            .as_deref()
            .unwrap_or("")
            .trim_matches('/')
            .to_string();
        // A port can be taken between free_port() and the bind; a few fresh ports settle it.
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("pgw-test-gateway-")
                .tempdir()
                .expect("create temp dir");
            let port = free_port();
            let bin = pushgateway_bin();
            let mut args = vec![
                format!("--web.listen-address=127.0.0.1:{port}"),
                // Debian defaults this to a file shared by every replica; empty = no persistence.
                format!(
                    "--persistence.file={}",
                    opts.persistence_file
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
            ];
            if opts.admin_api {
                args.push("--web.enable-admin-api".into());
            }
            if !prefix.is_empty() {
                args.push(format!("--web.route-prefix=/{prefix}"));
            }
            if opts.utf8_names {
                assert!(
                    gateway_has_utf8_names(),
                    "--push.enable-utf8-names needs Pushgateway 1.11+, {bin} is {}",
                    pushgateway_version()
                );
                args.push("--push.enable-utf8-names".into());
            }
            args.extend(opts.extra_args.iter().cloned());
            if let Some(web_config) = &opts.web_config {
                let path = dir.path().join("web.yml");
                std::fs::write(&path, web_config).expect("write web config");
                args.push(format!("--web.config.file={}", path.display()));
            }
            let mut cmd = Command::new(&bin);
            cmd.args(&args);
            let mut proc = Proc::spawn(&bin, cmd, &dir.path().join("gateway.log"));
            let ready = if prefix.is_empty() {
                "/-/ready".to_string()
            } else {
                format!("/{prefix}/-/ready")
            };
            let addr = format!("127.0.0.1:{port}");
            let any_answer = opts.web_config.is_some();
            match proc.wait_ready(&addr, &ready, Duration::from_secs(20), any_answer) {
                Ok(()) => {
                    let base_url = if prefix.is_empty() {
                        format!("http://{addr}/")
                    } else {
                        format!("http://{addr}/{prefix}/")
                    };
                    return TestGateway {
                        port,
                        base_url,
                        prefix,
                        proc,
                        client: http_client(),
                        args,
                        any_answer,
                        _dir: dir,
                    };
                }
                Err(StartError::PortTaken) => continue,
            }
        }
        panic!("{}: no free port after 5 attempts", pushgateway_bin());
    }

    /// Kills the replica now, to simulate one that is down. Its port is not reused by the harness.
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// Kills the replica (SIGKILL, if still running) and starts it again with the same command
    /// line on the same port, so it comes back as the same replica with a new `start_time` (and,
    /// with a persistence file, whatever that file holds). Waits (bounded) until it is ready.
    pub fn restart(&mut self) {
        self.proc.kill();
        let bin = pushgateway_bin();
        let mut cmd = Command::new(&bin);
        cmd.args(&self.args);
        let log = self._dir.path().join("gateway-restarted.log");
        let mut proc = Proc::spawn(&bin, cmd, &log);
        let ready = if self.prefix.is_empty() {
            "/-/ready".to_string()
        } else {
            format!("/{}/-/ready", self.prefix)
        };
        match proc.wait_ready(
            &self.address(),
            &ready,
            Duration::from_secs(20),
            self.any_answer,
        ) {
            Ok(()) => self.proc = proc,
            Err(StartError::PortTaken) => panic!(
                "{}: cannot restart on port {}: another program took it meanwhile",
                bin, self.port
            ),
        }
    }

    /// Sends a signal to the replica's process by its PID (`kill -STOP`, `-CONT`): a stopped
    /// replica keeps its port open and answers nothing. Panics if it is not running.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the replica is not running");
        send_signal(pid, signal);
    }

    /// `127.0.0.1:PORT`, as Prometheus targets and `up{instance=...}` spell it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The route prefix without slashes, `""` when none.
    pub fn route_prefix(&self) -> &str {
        &self.prefix
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }

    pub fn log_dir(&self) -> &Path {
        self._dir.path()
    }

    /// `base_url` joined with a path relative to the route prefix (no leading `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path.trim_start_matches('/'))
    }
}
