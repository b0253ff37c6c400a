use super::*;

fn egress(cidrs: &[&str], hosts: &[&str], patterns: &[&str]) -> Egress {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Egress::new(&EgressInput {
        cidrs: s(cidrs),
        hosts: s(hosts),
        host_patterns: s(patterns),
        service_namespaces: vec![],
    })
    .unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn without_a_list_only_link_local_loopback_and_unspecified_are_refused() {
    let e = egress(&[], &[], &[]);
    for refused in [
        "169.254.169.254",
        "fe80::1",
        "127.0.0.1",
        "127.0.0.2",
        "::1",
        "0.0.0.0",
        // The same metadata address written as an IPv4-mapped IPv6 address.
        "::ffff:169.254.169.254",
    ] {
        assert!(e.allows(None, ip(refused)).is_err(), "{refused}");
    }
    for allowed in ["10.1.2.3", "192.168.0.1", "fd00::7", "8.8.8.8"] {
        assert!(e.allows(Some("pgw"), ip(allowed)).is_ok(), "{allowed}");
    }
}

#[test]
fn cidrs_admit_addresses_even_loopback_when_named() {
    let e = egress(&["127.0.0.1/32", "10.0.0.0/8"], &[], &[]);
    assert!(e.allows(None, ip("127.0.0.1")).is_ok());
    assert!(e.allows(None, ip("10.9.9.9")).is_ok());
    let why = e.allows(None, ip("127.0.0.2")).unwrap_err().to_string();
    assert!(
        why.contains("127.0.0.2") && why.contains("loopback"),
        "{why}"
    );
    let why = e
        .allows(Some("db"), ip("192.168.1.1"))
        .unwrap_err()
        .to_string();
    assert!(why.contains("outside"), "{why}");
}

#[test]
fn hosts_admit_names_but_never_link_local_or_loopback_addresses() {
    let e = egress(
        &[],
        &["PGW.monitoring.svc"],
        &[r"pgw-[0-9]+\.pgw\.monitoring\.svc"],
    );
    assert!(e
        .allows(Some("pgw.monitoring.svc."), ip("10.0.0.1"))
        .is_ok());
    assert!(e
        .allows(Some("pgw-3.pgw.monitoring.svc"), ip("10.0.0.2"))
        .is_ok());
    assert!(e
        .allows(Some("xpgw-3.pgw.monitoring.svc"), ip("10.0.0.2"))
        .is_err());
    assert!(e
        .allows(Some("pgw-3.pgw.monitoring.svc.evil"), ip("10.0.0.2"))
        .is_err());
    assert!(
        e.allows(None, ip("10.0.0.1")).is_err(),
        "an IP literal is no name"
    );
    assert!(e
        .allows(Some("pgw.monitoring.svc"), ip("169.254.169.254"))
        .is_err());
}

#[test]
fn the_open_rule_allows_everything() {
    let e = Egress::open();
    assert!(e.allows(None, ip("169.254.169.254")).is_ok());
    assert!(e.allows_namespace("any"));
}

#[test]
fn service_namespaces_are_listed_or_all_allowed() {
    assert!(egress(&[], &[], &[]).allows_namespace("team-a"));
    let e = Egress::new(&EgressInput {
        service_namespaces: vec!["monitoring".into()],
        ..Default::default()
    })
    .unwrap();
    assert!(e.allows_namespace("monitoring"));
    assert!(!e.allows_namespace("team-a"));
}

#[test]
fn bad_entries_name_their_flag() {
    let bad = |input: EgressInput| Egress::new(&input).unwrap_err().to_string();
    let err = bad(EgressInput {
        cidrs: vec!["10.0.0.0/33".into()],
        ..Default::default()
    });
    assert!(err.contains("--allow-cidr"), "{err}");
    let err = bad(EgressInput {
        hosts: vec!["10.0.0.1".into()],
        ..Default::default()
    });
    assert!(err.contains("--allow-host"), "{err}");
    let err = bad(EgressInput {
        host_patterns: vec!["(".into()],
        ..Default::default()
    });
    assert!(err.contains("--allow-host-regex"), "{err}");
}

#[tokio::test]
async fn urls_are_checked_by_literal_and_by_what_a_name_resolves_to() {
    let e = egress(&["127.0.0.1/32"], &[], &[]);
    let url = |t: &str| Url::parse(t).unwrap();
    assert!(e.check_url(&url("http://127.0.0.1:9091/")).await.is_ok());
    assert!(e.check_url(&url("http://127.0.0.2:9091/")).await.is_err());
    assert!(e.check_url(&url("http://[::1]:9091/")).await.is_err());
    // `localhost` resolves to 127.0.0.1 (and maybe ::1): one allowed address is enough here,
    // the resolver drops the others when connecting.
    assert!(e.check_url(&url("http://localhost:9091/")).await.is_ok());
    let closed = egress(&["10.0.0.0/8"], &[], &[]);
    let why = closed
        .check_url(&url("http://localhost:9091/"))
        .await
        .unwrap_err();
    assert!(why.to_string().contains("loopback"), "{why}");
}
