//! Auth and TLS against real gateways and a real Prometheus secured with their own
//! `--web.config.file` (Prometheus exporter-toolkit): basic auth, and TLS with a client
//! certificate from a CA made for the test. Secrets never appear in the janitor's output.

use crate::common;

use std::path::Path;

use common::{group_path, janitor, sleep_past, GatewayOpts, TestGateway, TestPrometheus};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

const PASSWORD: &str = "correct horse battery staple";

fn basic_auth_config() -> String {
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    format!("basic_auth_users:\n  ops: '{hash}'\n")
}

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "janitor test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "janitor");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

fn sweep(args: &[&str]) -> (i32, String, String) {
    let mut cmd = janitor();
    cmd.arg("sweep").args(args).args([
        "--ttl",
        "1s",
        "--min-ttl",
        "1s",
        "--output",
        "json",
        "--request-timeout",
        "5s",
    ]);
    let out = common::run_bounded(cmd, std::time::Duration::from_secs(120));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn basic_auth_to_gateways_is_sent_and_the_password_never_shows() {
    let gw = TestGateway::start(GatewayOpts {
        web_config: Some(basic_auth_config()),
        ..Default::default()
    });
    let http = reqwest::Client::new();
    let key = [("job", "old")];
    let put = http
        .put(format!("{}{}", gw.base_url, group_path(&key)))
        .basic_auth("ops", Some(PASSWORD))
        .body("x 1\n")
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    sleep_past(1.5).await;
    let count = || async {
        let r = http
            .get(format!("{}api/v1/metrics", gw.base_url))
            .basic_auth("ops", Some(PASSWORD))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        v["data"].as_array().unwrap().len()
    };

    // Without credentials the replica fails; it is not taken for an empty one.
    let (code, stdout, _) = sweep(&["--gateway", &gw.base_url]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("401"), "{stdout}");
    assert_eq!(count().await, 1);

    let dir = tempfile::tempdir().unwrap();
    let pw = write(dir.path(), "password", &format!("{PASSWORD}\n"));
    let (code, stdout, stderr) = sweep(&[
        "--gateway",
        &gw.base_url,
        "--gateway-basic-user",
        "ops",
        "--gateway-password-file",
        &pw,
        "--log-level",
        "debug",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(count().await, 0, "the group was deleted with credentials");
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "no secret in output or logs"
    );
    assert!(
        !stderr.contains("Y29ycmVjdCBob3Jz"),
        "not even base64-encoded"
    );
}

#[tokio::test]
async fn tls_with_a_client_certificate_to_gateways() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.crt", &pki.ca);
    let server_cert = write(dir.path(), "server.crt", &pki.server_cert);
    let server_key = write(dir.path(), "server.key", &pki.server_key);
    let client_cert = write(dir.path(), "client.crt", &pki.client_cert);
    let client_key = write(dir.path(), "client.key", &pki.client_key);
    let gw = TestGateway::start(GatewayOpts {
        web_config: Some(format!(
            "tls_server_config:\n  cert_file: {server_cert}\n  key_file: {server_key}\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca}\n"
        )),
        ..Default::default()
    });
    let base = format!("https://127.0.0.1:{}/", gw.port);
    let http = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(pki.ca.as_bytes()).unwrap())
        .identity(
            reqwest::Identity::from_pem(
                format!("{}\n{}", pki.client_cert, pki.client_key).as_bytes(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let put = http
        .put(format!("{base}{}", group_path(&[("job", "old")])))
        .body("x 1\n")
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    sleep_past(1.5).await;

    let (code, stdout, _) = sweep(&["--gateway", &base, "--gateway-ca-file", &ca]);
    assert_eq!(
        code, 1,
        "without a client certificate the replica fails: {stdout}"
    );

    let (code, stdout, stderr) = sweep(&[
        "--gateway",
        &base,
        "--gateway-ca-file",
        &ca,
        "--gateway-cert-file",
        &client_cert,
        "--gateway-key-file",
        &client_key,
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let left: serde_json::Value = http
        .get(format!("{base}api/v1/metrics"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        left["data"].as_array().unwrap().len(),
        0,
        "deleted over TLS"
    );
}

#[tokio::test]
async fn prometheus_behind_basic_auth_gets_its_own_credentials() {
    let gw = TestGateway::start(GatewayOpts::default());
    gw.push(&[("job", "old")], "x 1\n").await;
    let prom = TestPrometheus::start_with_web_config(
        "pushgateway",
        &[gw.address()],
        Some(&basic_auth_config()),
    );
    let dir = tempfile::tempdir().unwrap();
    let pw = write(dir.path(), "password", PASSWORD);
    sleep_past(1.5).await;

    let (code, stdout, _) = sweep(&["--prometheus", &prom.url, "--job", "pushgateway"]);
    assert_eq!(code, 1, "without credentials discovery fails: {stdout}");
    assert!(
        stdout.contains("401") || stdout.contains("Unauthorized"),
        "{stdout}"
    );
    assert!(gw.has_group(&[("job", "old")]).await, "nothing touched");

    // Discovery answers only after Prometheus scraped the gateway once; retry a few times.
    let mut last = String::new();
    for _ in 0..20 {
        let (code, stdout, stderr) = sweep(&[
            "--prometheus",
            &prom.url,
            "--job",
            "pushgateway",
            "--prometheus-basic-user",
            "ops",
            "--prometheus-password-file",
            &pw,
        ]);
        assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
        if code == 0 {
            assert!(!gw.has_group(&[("job", "old")]).await);
            return;
        }
        last = stdout;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!("never swept through an authenticated Prometheus: {last}");
}
