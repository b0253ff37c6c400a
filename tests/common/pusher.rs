//! Pushes as real clients push: the test pusher (`tools/pusher`, Go's `client_golang` `push`
//! package), built by `scripts/test-deps.sh` into `target/test-deps/bin/pusher`;
//! `PGW_JANITOR_TEST_PUSHER` points at another build. A missing pusher fails the test, never skips it.
//!
//! Also the `U__` escaping of label names written here, independently of the crate, for pushes
//! of names a client cannot put in a path itself (a `/` in a name, a name starting with `U__`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::gateway::TestGateway;
use super::run::run_bounded;

pub const PUSHER_ENV: &str = "PGW_JANITOR_TEST_PUSHER";

pub fn pusher_bin() -> PathBuf {
    let bin = std::env::var_os(PUSHER_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-deps/bin/pusher")
        });
    assert!(
        bin.exists(),
        "the test pusher {} is missing: run `bash scripts/test-deps.sh` (or set {PUSHER_ENV})",
        bin.display()
    );
    bin
}

/// One push with the pusher: `kind` is counter, gauge, summary, histogram, native-histogram or
/// untyped; `format` text or protobuf; `method` put or post. Returns (exit ok, stderr).
pub fn push_with_client(
    gw: &TestGateway,
    job: &str,
    labels: &[(&str, &str)],
    kind: &str,
    format: &str,
    method: &str,
) -> (bool, String) {
    let mut cmd = Command::new(pusher_bin());
    cmd.args(["--url", gw.base_url.trim_end_matches('/'), "--job", job])
        .args(["--kind", kind, "--format", format, "--method", method]);
    for (name, value) in labels {
        cmd.arg("--label").arg(format!("{name}={value}"));
    }
    let out = run_bounded(cmd, Duration::from_secs(30));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`push_with_client`], panicking with the pusher's message unless the push succeeded.
pub fn client_push(gw: &TestGateway, job: &str, labels: &[(&str, &str)], kind: &str, format: &str) {
    let (ok, stderr) = push_with_client(gw, job, labels, kind, format, "put");
    assert!(
        ok,
        "pusher --job {job} {labels:?} --kind {kind} --format {format}: {stderr}"
    );
}

/// `U__` value escaping as the gateway's `model.UnescapeName` reads it, written from the rule in
/// PUSHGATEWAY.md: `U__`, `_` doubled, ASCII letters and (not leading) digits kept, any other
/// character as `_<hex>_`.
pub fn escape_label_name(name: &str) -> String {
    let mut out = "U__".to_string();
    for (i, c) in name.chars().enumerate() {
        if c == '_' {
            out += "__";
        } else if c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()) {
            out.push(c);
        } else {
            out += &format!("_{:x}_", u32::from(c));
        }
    }
    out
}

/// The path of a group on a UTF-8 replica, every name but the job escaped, values base64.
pub fn utf8_group_path(pairs: &[(&str, &str)]) -> String {
    let escaped: Vec<(String, &str)> = pairs
        .iter()
        .map(|(n, v)| {
            let n = if *n == "job" {
                n.to_string()
            } else {
                escape_label_name(n)
            };
            (n, *v)
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = escaped.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    super::gateway::group_path(&borrowed)
}
