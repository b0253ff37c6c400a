use super::*;
use crate::discover::{AllowList, InstanceUrl};

fn source(mode: Mode, allow: AllowList) -> Query {
    Query(ViaPrometheus {
        url: Url::parse("http://prometheus:9090/").unwrap(),
        job: "pushgateway".into(),
        mode,
        instance_url: InstanceUrl::default(),
        allow,
    })
}

fn target(instance: &str, scrape_url: &str) -> ActiveTarget {
    ActiveTarget {
        scrape_pool: "pushgateway".into(),
        scrape_url: scrape_url.into(),
        labels: [("job", "pushgateway"), ("instance", instance)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        health: "up".into(),
        last_error: String::new(),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn job_names_are_escaped_in_promql() {
    assert_eq!(up_query("pushgateway"), r#"up{job="pushgateway"}"#);
    assert_eq!(up_query(r#"a"b\c"#), r#"up{job="a\"b\\c"}"#);
}

#[test]
fn an_up_series_with_no_target_is_refused_and_never_a_replica() {
    let found = source(Mode::Targets, AllowList::default())
        .targets_to_replicas(
            vec![target("10.0.0.7:9091", "http://10.0.0.7:9091/metrics")],
            &strings(&["10.0.0.7:9091", "127.0.0.1:9"]),
        )
        .unwrap();
    assert_eq!(found.replicas.len(), 1);
    assert_eq!(found.replicas[0].url.as_str(), "http://10.0.0.7:9091/");
    assert_eq!(found.refused.len(), 1);
    assert_eq!(found.refused[0].instance, "127.0.0.1:9");
    assert!(found.refused[0].url.is_none(), "a fake is never made a URL");
}

#[test]
fn relabeled_instances_use_the_scrape_url_with_its_scheme_and_prefix() {
    let found = source(Mode::Targets, AllowList::default())
        .targets_to_replicas(
            vec![
                target("pgw-0", "https://10.0.0.7:9091/pgw/metrics?x=1"),
                target("pgw-1", "http://10.0.0.8:9091/metrics"),
            ],
            &strings(&["pgw-0", "pgw-1"]),
        )
        .unwrap();
    let urls: Vec<&str> = found.replicas.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        ["http://10.0.0.8:9091/", "https://10.0.0.7:9091/pgw/"]
    );
    assert!(found.refused.is_empty());
}

#[test]
fn a_configured_prefix_wins_and_an_odd_scrape_path_needs_one() {
    let mut s = source(Mode::Targets, AllowList::default());
    let err = s
        .base_from_scrape_url("http://a:9091/federate", "a")
        .unwrap_err()
        .to_string();
    assert!(err.contains("path prefix"), "{err}");
    s.instance_url.path_prefix = "/pgw".into();
    assert_eq!(
        s.base_from_scrape_url("http://a:9091/metrics", "a")
            .unwrap()
            .as_str(),
        "http://a:9091/pgw/"
    );
}

#[test]
fn the_allow_list_also_bounds_real_targets() {
    let allow = AllowList::new(&strings(&["10.0.0.7"]), &[], None, |f, _| f.into()).unwrap();
    let found = source(Mode::Targets, allow)
        .targets_to_replicas(
            vec![
                target("a", "http://10.0.0.7:9091/metrics"),
                target("b", "http://10.9.9.9:9091/metrics"),
            ],
            &strings(&["a", "b"]),
        )
        .unwrap();
    assert_eq!(found.replicas.len(), 1);
    assert_eq!(found.refused[0].instance, "b");
}

#[test]
fn without_targets_only_allowed_instances_are_replicas() {
    let allow = AllowList::new(&[], &strings(&["10.0.0.0/24"]), None, |f, _| f.into()).unwrap();
    let found = source(Mode::Up, allow).up_to_replicas(&strings(&[
        "10.0.0.7:9091",
        "127.0.0.1:9",
        "not a host:x",
    ]));
    assert_eq!(found.replicas.len(), 1);
    assert_eq!(found.replicas[0].url.as_str(), "http://10.0.0.7:9091/");
    let refused: Vec<&str> = found.refused.iter().map(|r| r.instance.as_str()).collect();
    assert_eq!(refused, ["127.0.0.1:9", "not a host:x"]);
}
