//! `run --policies` takes the controller's allow-list (`--allow-cidr`, ...): its files may come
//! from many teams. An address outside it is refused before any request, whether the policy
//! names it as an IP or as a host name that resolves to it; without a list, loopback is refused.
//! Tripwires on loopback addresses play the hosts that must not be reached, and count every
//! connection.

use super::*;
use common::Tripwire;

fn refused_before_any_request(out: &Once, name: &str, wire: &Tripwire, why: &str) {
    let report = out.report(name);
    let error = report["summary"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("spec.static.urls[0]")
            && error.contains("not allowed")
            && error.contains(why),
        "{name}: {report}"
    );
    assert_eq!(
        report["summary"]["exit_code"], 2,
        "the policy's input: {report}"
    );
    assert_eq!(
        wire.connections(),
        0,
        "{name}: {} was contacted",
        wire.address()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_refuses_addresses_outside_the_admin_list_before_any_request() {
    let gw = TestGateway::start(GatewayOpts::default());
    let here = Tripwire::start();
    let elsewhere = Tripwire::start_on("127.0.0.2");
    gw.push(&[("job", "stale")], "x 1\n").await;
    sleep_past(2.0).await;
    let dir = tempfile::tempdir().unwrap();
    let policies = |files: &[(&str, String)]| {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        for (name, url) in files {
            write(
                sub.path(),
                &format!("{name}.yaml"),
                &static_policy_at("team-a", name, url, ""),
            );
        }
        sub
    };

    // The list admits 127.0.0.1 only: the gateway there is swept, 127.0.0.2 is never contacted.
    let set = policies(&[
        ("inside", gw.base_url.clone()),
        ("outside", format!("http://{}/", elsewhere.address())),
    ]);
    let out = once_json(set.path(), &["--allow-cidr", "127.0.0.1/32"]);
    assert_eq!(
        out.report("inside")["summary"]["exit_code"],
        0,
        "{}",
        out.stdout
    );
    assert!(
        !gw.has_group(&[("job", "stale")]).await,
        "the allowed gateway was swept"
    );
    refused_before_any_request(
        &out,
        "outside",
        &elsewhere,
        "127.0.0.2 is a loopback address",
    );

    // A host name is judged by what it resolves to: `localhost` is 127.0.0.1 here, outside a
    // list of 127.0.0.2 alone.
    let set = policies(&[("by-name", format!("http://localhost:{}/", here.port))]);
    let out = once_json(set.path(), &["--allow-cidr", "127.0.0.2/32"]);
    refused_before_any_request(&out, "by-name", &here, "loopback");

    // No list at all: everything but link-local and loopback, so the same tripwire is refused.
    let set = policies(&[
        ("loopback", format!("http://{}/", here.address())),
        ("metadata", "http://169.254.169.254/".to_string()),
    ]);
    let mut cmd = janitor();
    cmd.env_remove("PGW_JANITOR_ALLOW_CIDRS").args([
        "run",
        "--policies",
        set.path().to_str().unwrap(),
        "--once",
        "--min-ttl",
        "1s",
        "--output",
        "json",
    ]);
    let raw = run_bounded(cmd, ONCE);
    let out = Once {
        code: raw.status.code().expect("exited"),
        stdout: String::from_utf8_lossy(&raw.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&raw.stderr).into_owned(),
    };
    refused_before_any_request(&out, "loopback", &here, "loopback");
    refused_before_any_request(&out, "metadata", &here, "link-local");
    assert_eq!(out.code, 2, "{}", out.stderr);
}
