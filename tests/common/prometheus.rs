//! A real Prometheus scraping the test replicas, so discovery through `up{job="..."}` is tested
//! against the real thing.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::binaries::prometheus_bin;
use super::process::{Proc, StartError};
use super::{free_port, http_client};

/// One running Prometheus. Dropping it kills the process (by PID) and removes its temp dir.
pub struct TestPrometheus {
    /// `http://127.0.0.1:PORT` (no trailing slash), what `sweep --prometheus` takes.
    pub url: String,
    pub port: u16,
    proc: Proc,
    client: reqwest::Client,
    /// The command line, for [`TestPrometheus::restart`].
    args: Vec<String>,
    any_answer: bool,
    _dir: tempfile::TempDir,
}

impl TestPrometheus {
    /// Starts Prometheus with one scrape job named `job` (`honor_labels: true`, 1s interval) over
    /// the static `targets` (`host:port`), and waits (bounded) for `-/ready`.
    pub fn start(job: &str, targets: &[String]) -> TestPrometheus {
        Self::start_with_web_config(job, targets, None)
    }

    /// Like [`TestPrometheus::start`], with a `--web.config.file` (basic auth, TLS). Readiness
    /// then accepts any HTTP answer, since `-/ready` itself is behind the auth.
    pub fn start_with_web_config(
        job: &str,
        targets: &[String],
        web_config: Option<&str>,
    ) -> TestPrometheus {
        let targets_yaml = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let scrape_config = format!(
            "  - job_name: \"{job}\"\n    honor_labels: true\n    \
             static_configs:\n      - targets: [{targets_yaml}]\n"
        );
        Self::start_with_scrape_configs(&scrape_config, web_config)
    }

    /// Starts Prometheus with `scrape_configs` given as YAML list items (indented by two spaces),
    /// 1s scrape and evaluation interval, and waits (bounded) for `-/ready`.
    pub fn start_with_scrape_configs(
        scrape_configs: &str,
        web_config: Option<&str>,
    ) -> TestPrometheus {
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n{scrape_configs}"
        );
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("pgw-test-prometheus-")
                .tempdir()
                .expect("create temp dir");
            let config_path = dir.path().join("prometheus.yml");
            std::fs::write(&config_path, &config).expect("write prometheus.yml");
            let port = free_port();
            let mut args = vec![
                format!("--config.file={}", config_path.display()),
                format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ];
            if let Some(web_config) = web_config {
                let path = dir.path().join("web.yml");
                std::fs::write(&path, web_config).expect("write web config");
                args.push(format!("--web.config.file={}", path.display()));
            }
            let mut cmd = Command::new(prometheus_bin());
            cmd.args(&args);
            let mut proc = Proc::spawn(&prometheus_bin(), cmd, &dir.path().join("prometheus.log"));
            let addr = format!("127.0.0.1:{port}");
            match proc.wait_ready(
                &addr,
                "/-/ready",
                Duration::from_secs(60),
                web_config.is_some(),
            ) {
                Ok(()) => {
                    return TestPrometheus {
                        url: format!("http://{addr}"),
                        port,
                        proc,
                        client: http_client(),
                        args,
                        any_answer: web_config.is_some(),
                        _dir: dir,
                    }
                }
                Err(StartError::PortTaken) => continue,
            }
        }
        panic!("prometheus: no free port after 5 attempts");
    }

    /// Kills Prometheus now (SIGKILL): its API refuses connections until [`TestPrometheus::start_again`].
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// Starts Prometheus again with the same command line, port and data directory, and waits
    /// (bounded) for `-/ready`. Panics if another program took the port meanwhile.
    pub fn start_again(&mut self) {
        self.proc.kill();
        let mut cmd = Command::new(prometheus_bin());
        cmd.args(&self.args);
        let log = self._dir.path().join("prometheus-again.log");
        let mut proc = Proc::spawn(&prometheus_bin(), cmd, &log);
        let addr = format!("127.0.0.1:{}", self.port);
        match proc.wait_ready(&addr, "/-/ready", Duration::from_secs(60), self.any_answer) {
            Ok(()) => self.proc = proc,
            Err(StartError::PortTaken) => {
                panic!(
                    "prometheus: cannot start again on port {}: taken meanwhile",
                    self.port
                )
            }
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }

    /// `up{job="<job>"}` now: instance → value (1 up, 0 down or failing scrape).
    pub async fn up(&self, job: &str) -> BTreeMap<String, f64> {
        let query = format!("up{{job=\"{job}\"}}");
        let resp = self
            .client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query.as_str())])
            .send()
            .await
            .expect("query Prometheus");
        let doc: Value = resp.json().await.expect("Prometheus answers JSON");
        let mut out = BTreeMap::new();
        for series in doc["data"]["result"].as_array().into_iter().flatten() {
            let instance = series["metric"]["instance"].as_str().unwrap_or_default();
            let value = series["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            out.insert(instance.to_string(), value);
        }
        out
    }

    /// Polls `up{job=...}` until it has `n_targets` series (whatever their value), bounded.
    pub async fn wait_for_up(
        &self,
        job: &str,
        n_targets: usize,
        timeout: Duration,
    ) -> BTreeMap<String, f64> {
        self.wait_for_up_matching(job, |up| up.len() >= n_targets, timeout)
            .await
    }

    /// Polls `up{job=...}` until `pred` holds, bounded; panics with the last answer otherwise.
    pub async fn wait_for_up_matching<F>(
        &self,
        job: &str,
        pred: F,
        timeout: Duration,
    ) -> BTreeMap<String, f64>
    where
        F: Fn(&BTreeMap<String, f64>) -> bool,
    {
        let deadline = Instant::now() + timeout;
        loop {
            let up = self.up(job).await;
            if pred(&up) {
                return up;
            }
            if Instant::now() >= deadline {
                panic!(
                    "up{{job=\"{job}\"}} never matched within {timeout:?}; last: {up:?}\n\
                     prometheus log tail:\n{}",
                    self.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
