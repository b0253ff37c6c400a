//! Where the janitor may connect, as the cluster admin sets it: the admin's allow-list, not a
//! policy's. A policy author chooses URLs; without this list the controller would send requests
//! to any address it can reach (cloud metadata, internal admin pages) on their behalf.
//!
//! The rule is applied to the address actually connected to: host names go through
//! [`Resolver`], which drops every resolved address the rule refuses (a name that resolves inside
//! the list today and outside tomorrow is refused tomorrow), and IP literals, which never reach a
//! resolver, are checked by [`Egress::check_url`] before any request.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use regex::Regex;
use url::{Host, Url};

use crate::error::NotAllowed;
use crate::{Error, Result};

/// The admin's rule for outgoing connections.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    /// `false`: everything is allowed (the one-shot CLI, run by whoever owns the credentials).
    guarded: bool,
    cidrs: Vec<IpNet>,
    /// Exact host names, lower case.
    hosts: Vec<String>,
    /// Anchored patterns over the whole host name.
    patterns: Vec<Regex>,
    /// Namespaces whose Services a `service` source may use; `None`: any.
    service_namespaces: Option<Vec<String>>,
}

/// The entries of an allow-list as given, with the names of the flags that gave them.
#[derive(Debug, Clone, Default)]
pub struct EgressInput {
    pub cidrs: Vec<String>,
    pub hosts: Vec<String>,
    pub host_patterns: Vec<String>,
    pub service_namespaces: Vec<String>,
}

impl Egress {
    /// No restriction at all.
    pub fn open() -> Egress {
        Egress::default()
    }

    /// The admin's list. Empty lists still refuse link-local addresses (169.254.0.0/16,
    /// fe80::/10: cloud metadata) and loopback (the janitor's own pod); a CIDR that covers them
    /// admits them explicitly.
    pub fn new(input: &EgressInput) -> Result<Egress> {
        let mut cidrs = Vec::new();
        for cidr in input
            .cidrs
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
        {
            let net: IpNet = cidr.parse().map_err(|_| {
                Error::config(
                    "--allow-cidr",
                    format!("{cidr:?} is not a CIDR such as 10.0.0.0/8 or fd00::/8"),
                )
            })?;
            cidrs.push(net.trunc());
        }
        let mut hosts = Vec::new();
        for host in input
            .hosts
            .iter()
            .map(|h| h.trim())
            .filter(|h| !h.is_empty())
        {
            if host.contains([':', '/', '@', ' ', '*']) || host.parse::<IpAddr>().is_ok() {
                return Err(Error::config(
                    "--allow-host",
                    format!("{host:?} is not a host name (addresses go in --allow-cidr)"),
                ));
            }
            hosts.push(host.trim_end_matches('.').to_ascii_lowercase());
        }
        let mut patterns = Vec::new();
        for p in input.host_patterns.iter().filter(|p| !p.trim().is_empty()) {
            let regex = Regex::new(&format!("^(?i:{p})$")).map_err(|e| {
                Error::config("--allow-host-regex", format!("{p:?} is not a regex: {e}"))
            })?;
            patterns.push(regex);
        }
        let namespaces: Vec<String> = input
            .service_namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        Ok(Egress {
            guarded: true,
            cidrs,
            hosts,
            patterns,
            service_namespaces: (!namespaces.is_empty()).then_some(namespaces),
        })
    }

    /// Whether connections are checked at all.
    pub fn is_guarded(&self) -> bool {
        self.guarded
    }

    fn has_list(&self) -> bool {
        !(self.cidrs.is_empty() && self.hosts.is_empty() && self.patterns.is_empty())
    }

    fn name_listed(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&name) || self.patterns.iter().any(|p| p.is_match(&name))
    }

    /// Whether the janitor may connect to `ip`, reached through the host name `name` if any.
    pub fn allows(&self, name: Option<&str>, ip: IpAddr) -> Result<(), NotAllowed> {
        if !self.guarded {
            return Ok(());
        }
        let ip = ip.to_canonical();
        if self.cidrs.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        if let Some(what) = always_refused(ip) {
            return Err(NotAllowed(format!(
                "{ip} is {what}, refused unless an allowed CIDR covers it"
            )));
        }
        if !self.has_list() || name.is_some_and(|n| self.name_listed(n)) {
            return Ok(());
        }
        Err(NotAllowed(match name {
            Some(n) => format!("{n} ({ip}) is outside the allowed hosts and CIDRs"),
            None => format!("{ip} is outside the allowed CIDRs"),
        }))
    }

    /// Checks `url` before anything is sent to it: an IP literal against the rule, a name by
    /// resolving it now (the resolver checks again when connecting). A name that does not
    /// resolve is left to the request, which fails with its own error.
    pub async fn check_url(&self, url: &Url) -> Result<(), NotAllowed> {
        if !self.guarded {
            return Ok(());
        }
        match url.host() {
            Some(Host::Ipv4(ip)) => self.allows(None, ip.into()),
            Some(Host::Ipv6(ip)) => self.allows(None, ip.into()),
            Some(Host::Domain(name)) => {
                let port = url.port_or_known_default().unwrap_or(80);
                let Ok(addrs) = tokio::net::lookup_host((name, port)).await else {
                    return Ok(());
                };
                let mut refused = None;
                for addr in addrs {
                    match self.allows(Some(name), addr.ip()) {
                        Ok(()) => return Ok(()),
                        Err(e) => refused = refused.or(Some(e)),
                    }
                }
                refused.map_or(Ok(()), Err)
            }
            None => Err(NotAllowed("the URL has no host".into())),
        }
    }

    /// Whether a `service` source may use Services of `namespace`.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        !self.guarded
            || self
                .service_namespaces
                .as_ref()
                .is_none_or(|list| list.iter().any(|n| n == namespace))
    }
}

/// Addresses refused unless a CIDR names them: link-local (cloud metadata endpoints), loopback
/// (the janitor's own pod and its sidecars), and the unspecified address (which means this host).
fn always_refused(ip: IpAddr) -> Option<&'static str> {
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        Some("a link-local address (where cloud metadata lives)")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("the unspecified address")
    } else {
        None
    }
}

/// A DNS resolver that keeps only the addresses the rule allows, so the check holds for the
/// address reqwest connects to, at the moment it connects.
#[derive(Debug, Clone)]
pub struct Resolver(pub Arc<Egress>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.0.clone();
        let name = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<_> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<_> = resolved
                .into_iter()
                .filter(|a| match egress.allows(Some(&name), a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused = refused.take().or(Some(e));
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or_else(|| NotAllowed(format!("{name} has no address")));
                return Err(Box::new(why) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
