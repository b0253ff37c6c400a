//! `run --policies` reloads as Prometheus does: when a mounted ConfigMap swaps its files, on
//! SIGHUP and on `POST /-/reload`; a broken file keeps its last good policies running and says so
//! in the logs, the metrics and the reload's answer. Real gateways, the real binary.

use crate::common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::process::Proc;
use common::{free_port, janitor, GatewayOpts, TestGateway};

const WAIT: Duration = Duration::from_secs(40);

fn policy(gw: &TestGateway, selector: &str) -> String {
    format!(
        "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
         name: p\n  namespace: reload\nspec:\n  static:\n    urls: [\"{}\"]\n  ttl: 1s\n  \
         minTtl: 1s\n  interval: 1s\n  selector: '{selector}'\n",
        gw.base_url
    )
}

/// The `run` loop, a [`Proc`]: killed by its PID and reaped on drop.
struct Run {
    proc: Proc,
    port: u16,
}

impl Run {
    fn start(policies: &Path, log: PathBuf, extra: &[&str]) -> Run {
        let port = free_port();
        let mut cmd = janitor();
        cmd.args(["run", "--policies"])
            .arg(policies)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--min-ttl", "1s"])
            .args(extra);
        let proc = Proc::spawn("pushgateway-janitor run", cmd, &log);
        Run { proc, port }
    }

    fn log(&self) -> String {
        self.proc.log_text()
    }

    async fn metrics(&self) -> String {
        match reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn post_reload(&self) -> (u16, String) {
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/-/reload", self.port))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("POST /-/reload");
        (r.status().as_u16(), r.text().await.unwrap())
    }

    fn signal(&mut self, name: &str) {
        self.proc.signal(name);
    }
}

/// Polls `check` until it holds, bounded by [`WAIT`]; panics with `what` and the janitor's log.
async fn until<F, Fut>(run: &Run, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}; log:\n{}",
            run.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes a new version of the ConfigMap's files and swaps `..data` to it, as the kubelet does.
fn swap_configmap(dir: &Path, version: &str, text: &str) {
    let v = dir.join(format!("..{version}"));
    std::fs::create_dir(&v).unwrap();
    std::fs::write(v.join("policy.yaml"), text).unwrap();
    std::os::unix::fs::symlink(format!("..{version}"), dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
}

const RELOAD_OK: &str = "pgw_janitor_config_last_reload_successful{} 1";
const RELOAD_FAILED: &str = "pgw_janitor_config_last_reload_successful{} 0";

#[tokio::test(flavor = "multi_thread")]
async fn a_configmap_swap_is_picked_up_and_a_broken_version_keeps_the_last_good_policy() {
    let gw = TestGateway::start(GatewayOpts::default());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("policies");
    std::fs::create_dir(&dir).unwrap();
    swap_configmap(&dir, "v1", &policy(&gw, r#"{job="one"}"#));
    std::os::unix::fs::symlink("..data/policy.yaml", dir.join("policy.yaml")).unwrap();
    gw.push(&[("job", "one")], "x 1\n").await;
    gw.push(&[("job", "two")], "x 1\n").await;
    let run = Run::start(
        &dir,
        tmp.path().join("janitor.log"),
        &["--reload-check-interval", "500ms"],
    );

    until(&run, "job one deleted by v1", || async {
        !gw.has_group(&[("job", "one")]).await
    })
    .await;
    assert!(
        gw.has_group(&[("job", "two")]).await,
        "v1 selects only job one"
    );
    assert!(run.metrics().await.contains(RELOAD_OK));

    swap_configmap(&dir, "v2", &policy(&gw, r#"{job="two"}"#));
    until(&run, "job two deleted by v2", || async {
        !gw.has_group(&[("job", "two")]).await
    })
    .await;
    assert!(run.log().contains("policy files changed"), "{}", run.log());

    swap_configmap(&dir, "v3", &policy(&gw, r#"{job=~"("}"#));
    until(&run, "the failed reload in the metrics", || async {
        run.metrics().await.contains(RELOAD_FAILED)
    })
    .await;
    let log = run.log();
    assert!(
        log.contains("spec.selector") && log.contains("last good version stays in force"),
        "{log}"
    );
    // v2 is still in force: a new stale copy of job two goes again.
    gw.push(&[("job", "two")], "x 2\n").await;
    until(&run, "job two deleted by the last good version", || async {
        !gw.has_group(&[("job", "two")]).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_and_post_reload_reload_and_the_answer_says_whether_it_worked() {
    let gw = TestGateway::start(GatewayOpts::default());
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("policy.yaml");
    std::fs::write(&file, policy(&gw, r#"{job="one"}"#)).unwrap();
    gw.push(&[("job", "one")], "x 1\n").await;
    // No polling: only SIGHUP and POST /-/reload reload.
    let mut run = Run::start(
        &file,
        tmp.path().join("janitor.log"),
        &["--reload-check-interval", "0s"],
    );
    until(&run, "job one deleted", || async {
        !gw.has_group(&[("job", "one")]).await
    })
    .await;

    std::fs::write(&file, policy(&gw, r#"{job="two"}"#)).unwrap();
    gw.push(&[("job", "two")], "x 1\n").await;
    run.signal("HUP");
    until(&run, "job two deleted after SIGHUP", || async {
        !gw.has_group(&[("job", "two")]).await
    })
    .await;
    assert!(run.log().contains("SIGHUP"), "{}", run.log());

    std::fs::write(&file, policy(&gw, r#"{job=~"("}"#)).unwrap();
    let (status, body) = run.post_reload().await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("policy.yaml") && body.contains("spec.selector"),
        "{body}"
    );
    assert!(run.metrics().await.contains(RELOAD_FAILED));

    std::fs::write(&file, policy(&gw, r#"{job="three"}"#)).unwrap();
    let (status, body) = run.post_reload().await;
    assert_eq!((status, body.as_str()), (200, "reloaded: 1 policies"));
    assert!(run.metrics().await.contains(RELOAD_OK));
    gw.push(&[("job", "three")], "x 1\n").await;
    until(&run, "job three deleted after POST /-/reload", || async {
        !gw.has_group(&[("job", "three")]).await
    })
    .await;
}
