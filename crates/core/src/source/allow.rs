//! The allow-list of replica addresses: hosts, CIDRs or a regex that a replica's `host:port` must
//! match before the janitor sends it anything.

use std::net::IpAddr;

use ipnet::IpNet;
use regex::Regex;
use url::{Host, Url};

use crate::{Error, Result};

/// Where replicas may be. Empty: no restriction beyond the source itself.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    /// `host` (any port) or `host:port`, compared case-insensitively.
    hosts: Vec<String>,
    cidrs: Vec<IpNet>,
    /// Anchored, matched against `host:port`.
    regex: Option<Regex>,
}

impl PartialEq for AllowList {
    fn eq(&self, other: &Self) -> bool {
        self.hosts == other.hosts
            && self.cidrs == other.cidrs
            && self.regex.as_ref().map(Regex::as_str) == other.regex.as_ref().map(Regex::as_str)
    }
}

impl AllowList {
    /// Checks the entries. `field(list, index)` names an entry in errors in its front door's
    /// words (`--allow-replica-cidr`, `spec.prometheus.allowedReplicas.cidrs[1]`); `list` is
    /// `hosts`, `cidrs` or `regex`.
    pub fn new(
        hosts: &[String],
        cidrs: &[String],
        regex: Option<&str>,
        field: impl Fn(&str, Option<usize>) -> String,
    ) -> Result<AllowList> {
        let mut checked_hosts = Vec::new();
        for (i, host) in hosts.iter().enumerate() {
            let host = host.trim();
            if host.is_empty() || host.contains(['/', '@', ' ']) || host.contains("://") {
                return Err(Error::config(
                    field("hosts", Some(i)),
                    format!("{host:?} is not a host or host:port"),
                ));
            }
            checked_hosts.push(host.to_ascii_lowercase());
        }
        let mut checked_cidrs = Vec::new();
        for (i, cidr) in cidrs.iter().enumerate() {
            let net: IpNet = cidr.trim().parse().map_err(|_| {
                Error::config(
                    field("cidrs", Some(i)),
                    format!("{cidr:?} is not a CIDR such as 10.0.0.0/8 or fd00::/8"),
                )
            })?;
            checked_cidrs.push(net);
        }
        let regex = match regex.filter(|r| !r.is_empty()) {
            Some(r) => Some(Regex::new(&format!("^(?:{r})$")).map_err(|e| {
                Error::config(field("regex", None), format!("{r:?} is not a regex: {e}"))
            })?),
            None => None,
        };
        Ok(AllowList {
            hosts: checked_hosts,
            cidrs: checked_cidrs,
            regex,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.cidrs.is_empty() && self.regex.is_none()
    }

    /// Whether the replica at `url` may be contacted. An empty list allows everything.
    pub fn allows(&self, url: &Url) -> bool {
        if self.is_empty() {
            return true;
        }
        let Some(host) = url.host() else {
            return false;
        };
        let port = url.port_or_known_default().unwrap_or(0);
        let host_text = match &host {
            Host::Domain(d) => d.to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => format!("[{ip}]"),
        };
        let host_port = format!("{host_text}:{port}");
        if self
            .hosts
            .iter()
            .any(|h| *h == host_text || *h == host_port)
        {
            return true;
        }
        let ip: Option<IpAddr> = match host {
            Host::Ipv4(ip) => Some(ip.into()),
            Host::Ipv6(ip) => Some(ip.into()),
            Host::Domain(_) => None,
        };
        if ip.is_some_and(|ip| self.cidrs.iter().any(|net| net.contains(&ip))) {
            return true;
        }
        self.regex.as_ref().is_some_and(|r| r.is_match(&host_port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(hosts: &[&str], cidrs: &[&str], regex: Option<&str>) -> Result<AllowList> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        AllowList::new(&s(hosts), &s(cidrs), regex, |f, i| match i {
            Some(i) => format!("allowedReplicas.{f}[{i}]"),
            None => format!("allowedReplicas.{f}"),
        })
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn hosts_match_with_or_without_a_port() {
        let allow = list(&["pgw-0.pgw", "PGW-1.pgw:9091"], &[], None).unwrap();
        assert!(allow.allows(&url("http://pgw-0.pgw:9091/")));
        assert!(allow.allows(&url("http://pgw-0.pgw:1234/")));
        assert!(allow.allows(&url("http://pgw-1.pgw:9091/")));
        assert!(!allow.allows(&url("http://pgw-1.pgw:9092/")));
        assert!(!allow.allows(&url("http://pgw-0.pgw.evil:9091/")));
        assert!(!allow.allows(&url("http://127.0.0.1:9/")));
    }

    #[test]
    fn cidrs_match_ip_literals_only() {
        let allow = list(&[], &["10.1.0.0/16", "fd00::/8"], None).unwrap();
        assert!(allow.allows(&url("http://10.1.2.3:9091/")));
        assert!(!allow.allows(&url("http://10.2.0.1:9091/")));
        assert!(allow.allows(&url("http://[fd00::1]:9091/")));
        assert!(
            !allow.allows(&url("http://10.1.2.3.nip.example:9091/")),
            "a name is never taken for the address it looks like"
        );
    }

    #[test]
    fn the_regex_is_anchored_on_host_and_port() {
        let allow = list(&[], &[], Some(r"pgw-[0-9]+\.pgw:9091")).unwrap();
        assert!(allow.allows(&url("http://pgw-12.pgw:9091/")));
        assert!(!allow.allows(&url("http://xpgw-1.pgw:9091/")));
        assert!(!allow.allows(&url("http://pgw-1.pgw:80/")));
    }

    #[test]
    fn an_empty_list_allows_everything_and_bad_entries_are_named() {
        assert!(list(&[], &[], None).unwrap().allows(&url("http://a:1/")));
        let err = list(&[], &["10.0.0.0/33"], None).unwrap_err().to_string();
        assert!(err.contains("allowedReplicas.cidrs[0]"), "{err}");
        let err = list(&["http://x"], &[], None).unwrap_err().to_string();
        assert!(err.contains("allowedReplicas.hosts[0]"), "{err}");
        let err = list(&[], &[], Some("(")).unwrap_err().to_string();
        assert!(err.contains("allowedReplicas.regex"), "{err}");
    }
}
