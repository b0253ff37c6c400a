//! Credentials from `--secrets-dir`: a token that is found is sent (nginx enforces it), a missing
//! Secret names its field.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_read_from_the_secrets_dir_and_a_missing_one_names_its_field() {
    let gw = TestGateway::start(GatewayOpts::default());
    // The gateway has no bearer auth of its own: nginx in front of it enforces the token, so a
    // token that was only read and never sent would fail the run.
    let front = TestNginx::start(
        "",
        &format!(
            "location / {{\n      if ($http_authorization != \"Bearer s3cret\") {{ return 401; }}\n      \
             proxy_pass http://{};\n    }}",
            gw.address()
        ),
    );
    let url = format!("{}/", front.url);
    let unauthenticated = reqwest::get(format!("{url}api/v1/metrics")).await.unwrap();
    assert_eq!(unauthenticated.status(), 401, "nginx enforces the token");
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(secrets.join("gw-token")).unwrap();
    std::fs::write(secrets.join("gw-token").join("token"), "s3cret\n").unwrap();
    let auth = |secret: &str| {
        format!(
            "  selector: '{{job=\"with-auth\"}}'\n  gatewayAuth:\n    bearerToken:\n      \
             name: {secret}\n      key: token\n"
        )
    };
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    write(
        &policies,
        "a.yaml",
        &static_policy_at("default", "token-found", &url, &auth("gw-token")),
    );
    write(
        &policies,
        "b.yaml",
        &static_policy_at("default", "token-missing", &url, &auth("no-such-secret")),
    );
    gw.push(&[("job", "with-auth")], "x 1\n").await;
    sleep_past(2.0).await;

    let out = once_json(&policies, &["--secrets-dir", secrets.to_str().unwrap()]);
    let found = out.report("token-found");
    assert_eq!(found["summary"]["exit_code"], 0, "{found}");
    assert!(!gw.has_group(&[("job", "with-auth")]).await);
    let missing = out.report("token-missing");
    let error = missing["summary"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("spec.gatewayAuth.bearerToken") && error.contains("no-such-secret"),
        "{missing}"
    );
    // A missing Secret is the user's input, as a missing `--gateway-*-file` is for `sweep`.
    assert_eq!(missing["summary"]["exit_code"], 2, "{missing}");
    assert_eq!(out.code, 2, "the worst of the two: {}", out.stderr);
    assert!(!out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"));
}

/// `--secrets-by-namespace`: Secrets under `DIR/<namespace>/`, and a policy reads only its own
/// namespace's, as the controller does; another namespace's Secret of the same name is refused.
#[tokio::test(flavor = "multi_thread")]
async fn by_namespace_a_policy_reads_only_its_own_namespaces_secret() {
    let gw = TestGateway::start(GatewayOpts::default());
    let front = TestNginx::start(
        "",
        &format!(
            "location / {{\n      if ($http_authorization != \"Bearer team-a-token\") {{ return 401; }}\n      \
             proxy_pass http://{};\n    }}",
            gw.address()
        ),
    );
    let url = format!("{}/", front.url);
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(secrets.join("team-a").join("gw-token")).unwrap();
    std::fs::write(secrets.join("team-a/gw-token/token"), "team-a-token\n").unwrap();
    let auth = "  selector: '{job=\"with-auth\"}'\n  gatewayAuth:\n    bearerToken:\n      \
                name: gw-token\n      key: token\n";
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    write(
        &policies,
        "a.yaml",
        &static_policy_at("team-a", "own", &url, auth),
    );
    write(
        &policies,
        "b.yaml",
        &static_policy_at("team-b", "foreign", &url, auth),
    );
    gw.push(&[("job", "with-auth")], "x 1\n").await;
    sleep_past(2.0).await;

    let out = once_json(
        &policies,
        &[
            "--secrets-dir",
            secrets.to_str().unwrap(),
            "--secrets-by-namespace",
        ],
    );
    let own = out.report("own");
    assert_eq!(own["summary"]["exit_code"], 0, "{own}");
    assert!(
        !gw.has_group(&[("job", "with-auth")]).await,
        "team-a's token was sent"
    );
    let foreign = out.report("foreign");
    let error = foreign["summary"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("spec.gatewayAuth.bearerToken") && error.contains("team-b"),
        "team-a's Secret is not team-b's: {foreign}"
    );
    assert_eq!(foreign["summary"]["exit_code"], 2, "{foreign}");
}
