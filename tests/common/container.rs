//! The janitor's image run as the chart runs it: podman with runc (crun fails on these machines'
//! hybrid cgroups), the chart's own `securityContext` read from its `values.yaml` and turned into
//! podman's flags, on the host's network so the container reaches the gateways and the API server
//! on loopback, as a `hostNetwork` pod would.
//!
//! Needs podman, runc and the image: `bash scripts/test-deps.sh` installs podman, `bash
//! scripts/image.sh` builds `localhost/pushgateway-janitor:<crate version>` (or name another with
//! `PGW_JANITOR_TEST_IMAGE`). Without them a test fails saying which is missing; none is skipped.
//!
//! Every container is named and labelled with this test process's PID; dropping a [`Container`]
//! removes it (`podman rm -f`), and the first container of a test binary removes any left by a
//! test process that no longer runs (one killed before its drops ran).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use super::k8s::repo_root;
use super::process::Proc;
use super::run_bounded;

pub const IMAGE_ENV: &str = "PGW_JANITOR_TEST_IMAGE";
const LABEL: &str = "dev.pgw-janitor.test-pid";

/// The image under test, checked to exist (with podman) before the first use.
pub fn image() -> String {
    let image = std::env::var(IMAGE_ENV).unwrap_or_else(|_| {
        format!(
            "localhost/pushgateway-janitor:{}",
            env!("CARGO_PKG_VERSION")
        )
    });
    // Checked once per test binary; every test that needs it fails with the same message.
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(missing) = CHECKED.get_or_init(|| check(&image)) {
        panic!("{missing}");
    }
    image
}

/// What is missing to run `image`, named with how to get it.
fn check(image: &str) -> Result<(), String> {
    for tool in ["podman", "runc", "skopeo"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!(
                "{tool} is missing: `bash scripts/test-deps.sh` installs Debian's podman, \
                 buildah, runc and skopeo (as root)"
            ));
        }
    }
    if !podman(&["image", "exists", image], 30).status.success() {
        return Err(format!(
            "the image {image} is missing: build it with `bash scripts/image.sh` (or set \
             {IMAGE_ENV} to one that exists)"
        ));
    }
    remove_orphans();
    Ok(())
}

/// `podman ARGS`, bounded by `secs`.
pub fn podman(args: &[&str], secs: u64) -> std::process::Output {
    let mut cmd = Command::new("podman");
    cmd.args(args);
    run_bounded(cmd, Duration::from_secs(secs))
}

/// Containers of test processes that are gone (killed before they could remove their own).
fn remove_orphans() {
    let out = podman(
        &[
            "ps",
            "-a",
            "--filter",
            &format!("label={LABEL}"),
            "--format",
            &format!("{{{{.Names}}}} {{{{index .Labels \"{LABEL}\"}}}}"),
        ],
        30,
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((name, pid)) = line.split_once(' ') {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                podman(&["rm", "-f", "-t", "0", name], 60);
            }
        }
    }
}

/// The chart's `securityContext` and `podSecurityContext` (from `values.yaml`), as podman flags,
/// and its `terminationGracePeriodSeconds`.
#[derive(Debug, Clone)]
pub struct ChartPod {
    pub flags: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub fs_group: Option<u32>,
    pub grace: Duration,
}

/// Reads the chart's defaults. Every key of the two security contexts is mapped or refused: a
/// setting added to the chart fails here until the tests apply it too.
pub fn chart_pod() -> ChartPod {
    let text = std::fs::read_to_string(repo_root().join("charts/pushgateway-janitor/values.yaml"))
        .expect("read the chart's values.yaml");
    let values: Value = serde_saphyr::from_str(&text).expect("values.yaml parses");
    let (pod, ctr) = (&values["podSecurityContext"], &values["securityContext"]);
    let mut flags = Vec::new();
    let num = |v: &Value, what: &str| -> u32 {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or_else(|| panic!("{what} is not a number in values.yaml: {v}"))
    };
    // The container's own fields win over the pod's, as in Kubernetes.
    let pick = |key: &str| -> &Value {
        match &ctr[key] {
            Value::Null => &pod[key],
            v => v,
        }
    };
    let uid = num(pick("runAsUser"), "runAsUser");
    let gid = num(pick("runAsGroup"), "runAsGroup");
    if pick("runAsNonRoot") == &Value::Bool(true) {
        assert_ne!(uid, 0, "runAsNonRoot with runAsUser 0 would not start");
    }
    flags.push(format!("--user={uid}:{gid}"));
    let fs_group = match &pod["fsGroup"] {
        Value::Null => None,
        v => Some(num(v, "fsGroup")),
    };
    // The kubelet adds fsGroup to the container's supplementary groups.
    if let Some(g) = fs_group {
        flags.push(format!("--group-add={g}"));
    }
    if ctr["readOnlyRootFilesystem"] == Value::Bool(true) {
        // No tmpfs on /tmp, /run, /var/tmp either: Kubernetes mounts none.
        flags.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
    }
    if ctr["allowPrivilegeEscalation"] == Value::Bool(false) {
        flags.push("--security-opt=no-new-privileges".into());
    }
    for cap in ctr["capabilities"]["drop"].as_array().into_iter().flatten() {
        flags.push(format!(
            "--cap-drop={}",
            cap.as_str().expect("a capability")
        ));
    }
    for cap in ctr["capabilities"]["add"].as_array().into_iter().flatten() {
        flags.push(format!("--cap-add={}", cap.as_str().expect("a capability")));
    }
    for ctx in [pod, ctr] {
        // RuntimeDefault is podman's own default profile: nothing to pass, nothing to turn off.
        let seccomp = &ctx["seccompProfile"]["type"];
        assert!(
            seccomp.is_null() || seccomp == "RuntimeDefault",
            "seccompProfile {seccomp} is not mapped to podman yet"
        );
    }
    let known_pod = [
        "runAsNonRoot",
        "runAsUser",
        "runAsGroup",
        "fsGroup",
        "seccompProfile",
    ];
    let known_ctr = [
        "runAsNonRoot",
        "runAsUser",
        "runAsGroup",
        "readOnlyRootFilesystem",
        "allowPrivilegeEscalation",
        "capabilities",
        "seccompProfile",
    ];
    for (ctx, known, name) in [
        (pod, &known_pod[..], "podSecurityContext"),
        (ctr, &known_ctr[..], "securityContext"),
    ] {
        for key in ctx.as_object().expect("a mapping").keys() {
            assert!(
                known.contains(&key.as_str()),
                "{name}.{key} in values.yaml: the image tests do not apply it to podman yet"
            );
        }
    }
    let grace = values["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    ChartPod {
        flags,
        uid,
        gid,
        fs_group,
        grace: Duration::from_secs(grace),
    }
}

/// What a container gets besides the chart's pod settings.
#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    /// After the image's entrypoint (`pushgateway-janitor`).
    pub args: Vec<String>,
    /// `(host path, container path)`, read-only, as Kubernetes mounts Secrets and ConfigMaps.
    pub mounts: Vec<(PathBuf, String)>,
    pub env: Vec<(String, String)>,
}

/// The limits a container may have here: this process's, capped. The runtime cannot raise a limit
/// without CAP_SYS_RESOURCE, which these machines lack, and podman's process tree holds
/// RLIMIT_NPROC at 32768 (measured), below the shell's own.
fn ulimit_flags() -> Vec<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let soft = |name: &str| -> u64 {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l[name.len()..].split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX) // "unlimited"
    };
    let nofile = soft("Max open files").min(65_536);
    let nproc = soft("Max processes").min(4_096);
    vec![
        format!("--ulimit=nofile={nofile}:{nofile}"),
        format!("--ulimit=nproc={nproc}:{nproc}"),
    ]
}

/// The whole `podman run` command line for `opts` in a container named `name`.
fn run_command(name: &str, opts: &RunOpts) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc", "run", "--rm", "--name", name])
        .arg(format!("--label={LABEL}={}", std::process::id()))
        .args(["--network", "host", "--pull", "never"])
        .args(chart_pod().flags)
        .args(ulimit_flags());
    for (host, target) in &opts.mounts {
        cmd.arg(format!("--volume={}:{target}:ro", host.display()));
    }
    for (k, v) in &opts.env {
        cmd.arg(format!("--env={k}={v}"));
    }
    cmd.arg(image()).args(&opts.args);
    cmd
}

fn fresh_name() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "pgwj-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs the image to its end (`sweep`, `validate`), bounded: its exit status and output. The
/// container is removed however it ends.
pub fn run_to_end(opts: &RunOpts, timeout: Duration) -> std::process::Output {
    let name = fresh_name();
    let _cleanup = Removal(name.clone());
    run_bounded(run_command(&name, opts), timeout)
}

/// Removes the named container when dropped (also on panic).
struct Removal(String);

impl Drop for Removal {
    fn drop(&mut self) {
        // Gone already (--rm) is fine: podman then says so and exits non-zero.
        podman(&["rm", "-f", "-t", "0", &self.0], 60);
    }
}

/// A long-running container (`controller`): the `podman run` client is a [`Proc`] whose log holds
/// the container's output and whose exit status is the container's.
pub struct Container {
    pub name: String,
    proc: Proc,
    _removal: Removal,
}

impl Container {
    pub fn start(opts: &RunOpts, log_dir: &Path) -> Container {
        let name = fresh_name();
        let removal = Removal(name.clone());
        let proc = Proc::spawn(
            "podman run",
            run_command(&name, opts),
            &log_dir.join(format!("{name}.log")),
        );
        Container {
            name,
            proc,
            _removal: removal,
        }
    }

    /// The host PID of the container's first process (the janitor), once it runs.
    pub fn host_pid(&mut self) -> u32 {
        for _ in 0..100 {
            if let Some(status) = self.proc.try_exit() {
                panic!(
                    "container {} exited ({status}):\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            let out = podman(&["inspect", "--format", "{{.State.Pid}}", &self.name], 30);
            let pid = String::from_utf8_lossy(&out.stdout).trim().parse::<u32>();
            if let Ok(pid) = pid
                .map_err(|_| ())
                .and_then(|p| (p > 0).then_some(p).ok_or(()))
            {
                return pid;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("container {} has no PID after 10s", self.name);
    }

    /// `podman kill --signal NAME`: the signal to the container's first process, as the kubelet
    /// sends SIGTERM through the runtime.
    pub fn signal(&mut self, name: &str) {
        let out = podman(&["kill", "--signal", name, &self.name], 30);
        assert!(
            out.status.success(),
            "podman kill --signal {name} {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits, at most `timeout`, for the container to end: its exit status, `None` if it runs on.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.proc.wait_exit(timeout)
    }

    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.proc.try_exit()
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }
}
