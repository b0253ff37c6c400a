//! Finding the gateway replicas: from Prometheus (its scrape targets) or from a static list.
//!
//! Kubernetes discovery (a Service's EndpointSlices) is in `k8s::discovery`; `prepare` picks the
//! one a policy's source needs. This module knows nothing of policies.

mod prometheus;

use std::collections::BTreeSet;

use url::Url;

// Where the replicas are, as a checked policy says it, is the core's: this module finds them.
pub use prometheus::via_prometheus;
pub use pushgateway_janitor_core::source::{
    parse_base_url, up_query, AllowList, InstanceUrl, Mode, ViaPrometheus,
};
// Refused candidates are report data; discovery only finds them.
pub use crate::report::Refused;

/// One replica to sweep.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Replica {
    /// Base URL, ending in `/`, route prefix included.
    pub url: Url,
    /// The `instance` label it was found under, when discovered through Prometheus.
    pub instance: Option<String>,
}

/// What discovery found: the replicas to sweep, and the candidates it refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovered {
    pub replicas: Vec<Replica>,
    pub refused: Vec<Refused>,
}

impl From<Vec<Replica>> for Discovered {
    fn from(replicas: Vec<Replica>) -> Self {
        Discovered {
            replicas,
            refused: Vec::new(),
        }
    }
}

/// A static list: deduplicated, in a stable order.
pub fn from_static(urls: &[Url]) -> Vec<Replica> {
    let set: BTreeSet<Replica> = urls
        .iter()
        .map(|url| Replica {
            url: url.clone(),
            instance: None,
        })
        .collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    // Where the replicas are is checked in the core, with the core's errors.
    use pushgateway_janitor_core::{Error, Result};

    #[test]
    fn instances_become_base_urls_under_the_route_prefix() {
        let plain = InstanceUrl::default();
        assert_eq!(
            plain.to_url("10.0.0.7:9091").unwrap().as_str(),
            "http://10.0.0.7:9091/"
        );
        let prefixed = InstanceUrl {
            scheme: "https".into(),
            path_prefix: "/pushgateway/".into(),
        };
        assert_eq!(
            prefixed.to_url("pgw-1.pgw:9091").unwrap().as_str(),
            "https://pgw-1.pgw:9091/pushgateway/"
        );
    }

    /// The error the user sees for `text` as `--gateway`: a configuration error, named.
    fn refused(result: Result<impl std::fmt::Debug>, what: &str) -> String {
        match result {
            Err(Error::Config {
                what: named,
                message,
            }) if named == what => message,
            other => panic!("want a config error naming {what:?}, got {other:?}"),
        }
    }

    #[test]
    fn bad_schemes_and_prefixes_are_refused() {
        let bad = InstanceUrl {
            scheme: "ftp".into(),
            ..Default::default()
        };
        assert_eq!(
            refused(bad.validate(), "gateway scheme"),
            r#""ftp" is neither http nor https"#
        );
        let bad = InstanceUrl {
            path_prefix: "pgw".into(),
            ..Default::default()
        };
        assert_eq!(
            refused(bad.validate(), "gateway path prefix"),
            r#""pgw" must start with '/'"#
        );
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            r#"invalid gateway path prefix: "pgw" must start with '/'"#
        );
        // Both checks pass for what the defaults and a rooted prefix give.
        let good = InstanceUrl {
            scheme: "https".into(),
            path_prefix: "/pgw".into(),
        };
        assert!(good.validate().is_ok());
    }

    #[test]
    fn instances_that_make_no_url_are_named() {
        let plain = InstanceUrl::default();
        for (instance, says) in [
            (":9091", "does not make a URL"),
            ("pgw:notaport", "does not make a URL"),
        ] {
            match plain.to_url(instance) {
                Err(message) => {
                    let named = format!("instance {instance:?} {says}");
                    assert!(message.starts_with(&named), "{message}");
                }
                other => panic!("{instance:?}: want a discovery error, got {other:?}"),
            }
        }
    }

    #[test]
    fn base_urls_get_a_trailing_slash_and_bad_ones_are_named() {
        assert_eq!(
            parse_base_url("--gateway", "http://pgw:9091/prefix")
                .unwrap()
                .as_str(),
            "http://pgw:9091/prefix/"
        );
        let err = parse_base_url("--gateway", "pgw:9091")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--gateway") && err.contains("pgw:9091"),
            "{err}"
        );
        assert_eq!(
            refused(parse_base_url("--gateway", "ftp://pgw:9091/"), "--gateway"),
            r#""ftp://pgw:9091/": scheme must be http or https"#
        );
        assert_eq!(
            refused(parse_base_url("--gateway", "http://"), "--gateway"),
            r#""http://" is not a URL: empty host"#
        );
        for text in ["http://pgw:9091/?x=1", "http://pgw:9091/#top"] {
            assert_eq!(
                refused(parse_base_url("--gateway", text), "--gateway"),
                format!("{text:?}: a base URL takes no query or fragment")
            );
        }
    }

    #[test]
    fn static_lists_are_deduplicated() {
        let a = parse_base_url("--gateway", "http://a:9091").unwrap();
        let b = parse_base_url("--gateway", "http://b:9091/").unwrap();
        let replicas = from_static(&[b.clone(), a.clone(), b]);
        assert_eq!(replicas.len(), 2);
        assert_eq!(replicas[0].url, a);
    }
}
