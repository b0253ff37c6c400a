//! A fake replica for the sweep steps' unit tests: a store of groups that answers reads, health
//! checks, DELETEs and wipes the way a Pushgateway does (a DELETE of a missing group is a silent
//! no-op; `/metrics` shows a group without `instance` and one with `instance=""` alike), records
//! every request, and can be told to fail. Its claims are the engine's own, so two sweeps over
//! one fake share them as two policies over one replica do.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::remote::Remote;
use super::{Permit, Read, SweepConfig, Tuning};
use crate::engine::{Engine, ReplicaEntry, Settings};
use crate::gateway::Gateway;
use crate::guard::Limits;
use crate::model::{Group, Labels, Naming, ReplicaStatus, Snapshot, Source};
use crate::plan::{Action, Decision, Reason, Rules};
use crate::report::Failure;
use crate::selector::Selector;
use crate::Error;

/// The fake's clock: every age is counted back from it.
pub(super) const NOW: f64 = 1_700_000_000.0;

/// A grouping key from `name=value` pairs.
pub(super) fn key(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A group last pushed `age` seconds before [`NOW`], with its exact key.
pub(super) fn pushed(pairs: &[(&str, &str)], age: f64) -> Group {
    Group {
        labels: key(pairs),
        instance_unsure: false,
        push_time: NOW - age,
        push_failure_time: 0.0,
        last_push_successful: true,
        declared_ttl: None,
        series: Some(1),
    }
}

/// Called after each DELETE the fake answered, with how many it answered so far.
type Hook = Box<dyn Fn(usize, &mut Store) + Send + Sync>;

/// What the fake holds and how it behaves; tests change it between steps.
#[derive(Default)]
pub(super) struct Store {
    /// The groups, by exact key.
    pub groups: Vec<Group>,
    /// `None`: `/api/v1/status` does not answer.
    pub status: Option<ReplicaStatus>,
    /// Reads that answer before every later one fails; `None`: all answer.
    pub reads_answered: Option<usize>,
    /// DELETEs that answer before the replica stops answering (a timeout); `None`: all answer.
    pub deletes_answered: Option<usize>,
    /// Keys whose DELETE is refused with 400 (as a key the gateway cannot parse).
    pub refused: Vec<Labels>,
    /// `/-/healthy` answers 500 (write queue full) however long one waits.
    pub queue_full: bool,
    /// Every read, by source.
    pub reads: Vec<Source>,
    /// Every DELETE received: the key, and whether it was the `instance=""` twin.
    pub deletes: Vec<(Labels, bool)>,
    /// Wipes received.
    pub wipes: usize,
    after_delete: Option<Hook>,
}

pub(super) struct Fake {
    gateway: Gateway,
    store: Mutex<Store>,
    claims: Arc<ReplicaEntry>,
    /// Holds the claims' engine entry.
    _engine: Engine,
}

fn timeout(url: &Url) -> Error {
    Error::Timeout {
        url: url.to_string(),
        timeout: Duration::from_secs(1),
    }
}

impl Fake {
    /// A healthy 1.11 replica without the admin API, holding `groups`.
    pub fn new(url: &str, groups: Vec<Group>) -> Fake {
        let gateway = Gateway::new(
            url.parse().expect("a test URL"),
            reqwest::Client::new(),
            Duration::from_secs(1),
        );
        let engine = Engine::new(Settings::from_tuning(&Tuning::default()));
        let claims = engine.replica(&gateway);
        let status = ReplicaStatus {
            version: Some("1.11.3".into()),
            ..Default::default()
        };
        Fake {
            gateway,
            store: Mutex::new(Store {
                groups,
                status: Some(status),
                ..Default::default()
            }),
            claims,
            _engine: engine,
        }
    }

    /// The store, to change or inspect.
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `hook` after each DELETE answered (a push landing, leadership lost...).
    pub fn after_delete(&self, hook: impl Fn(usize, &mut Store) + Send + Sync + 'static) {
        self.store().after_delete = Some(Box::new(hook));
    }

    /// The keys of the groups it holds now, sorted.
    pub fn keys(&self) -> Vec<Labels> {
        let mut keys: Vec<Labels> = self
            .store()
            .groups
            .iter()
            .map(|g| g.labels.clone())
            .collect();
        keys.sort();
        keys
    }

    /// Wipes it received.
    pub fn wipes(&self) -> usize {
        self.store().wipes
    }

    /// Every DELETE it received (twins included).
    pub fn deletes(&self) -> usize {
        self.store().deletes.len()
    }

    fn read(&self, source: Source) -> Read {
        let started = Instant::now();
        let mut store = self.store();
        store.reads.push(source);
        let answered = store.reads_answered.is_none_or(|n| store.reads.len() <= n);
        let status = store.status.clone();
        let snapshot = if answered {
            Ok(Snapshot {
                clock: NOW,
                source,
                naming: Naming::of(status.as_ref()),
                groups: store.groups.iter().map(|g| as_read(g, source)).collect(),
                unkeyed: vec![],
            })
        } else {
            Err(timeout(self.gateway.url()))
        };
        Read {
            gateway: self.gateway.clone(),
            status: if answered { status } else { None },
            snapshot,
            started,
            finished: Instant::now(),
            seconds: 0.0,
        }
    }
}

/// A group as a read from `source` shows it: `/metrics` cannot tell no `instance` from an empty
/// one.
fn as_read(g: &Group, source: Source) -> Group {
    let mut g = g.clone();
    if source == Source::Metrics && g.labels.get("instance").is_none_or(str::is_empty) {
        g.labels = g
            .labels
            .iter()
            .filter(|(n, _)| *n != "instance")
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        g.instance_unsure = true;
    }
    g
}

impl Remote for Fake {
    type Slot<'a> = ();

    fn url(&self) -> &Url {
        self.gateway.url()
    }

    async fn read_shared(&self, source: Source) -> Arc<Read> {
        // Lets another sweep run between its read and its acts, as the network would.
        tokio::task::yield_now().await;
        Arc::new(self.read(source))
    }

    async fn read_since(&self, source: Source, _since: Instant) -> Arc<Read> {
        tokio::task::yield_now().await;
        Arc::new(self.read(source))
    }

    async fn wait_healthy(&self) -> Result<(), Failure> {
        if self.store().queue_full {
            return Err(Failure::from("write queue still full after 1s"));
        }
        Ok(())
    }

    async fn slot(&self) -> Result<(), Failure> {
        self.wait_healthy().await
    }

    async fn delete<'a>(
        &'a self,
        _slot: (),
        labels: &'a Labels,
        _naming: Naming,
        twin: bool,
    ) -> Result<(), Error> {
        tokio::task::yield_now().await;
        let mut store = self.store();
        store.deletes.push((labels.clone(), twin));
        let sent = store.deletes.len();
        if store.deletes_answered.is_some_and(|n| sent > n) {
            return Err(timeout(self.gateway.url()));
        }
        if store.refused.contains(labels) {
            return Err(Error::Status {
                url: self.gateway.url().to_string(),
                status: 400,
                body: "bad grouping key".into(),
            });
        }
        let mut exact = labels.clone();
        if twin {
            exact.insert("instance".into(), String::new());
        }
        store.groups.retain(|g| g.labels != exact);
        if let Some(hook) = store.after_delete.take() {
            hook(sent, &mut store);
            store.after_delete = Some(hook);
        }
        Ok(())
    }

    async fn wipe(&self) -> Result<(), Error> {
        let mut store = self.store();
        store.wipes += 1;
        if !store.status.as_ref().is_some_and(|s| s.admin_api) {
            return Err(Error::Status {
                url: self.gateway.url().to_string(),
                status: 404,
                body: "404 page not found".into(),
            });
        }
        store.groups.clear();
        Ok(())
    }

    fn claim(&self, labels: &Labels, push: f64, read_at: Instant, fresh: Duration) -> bool {
        self.claims.claim_delete(labels, push, read_at, fresh)
    }

    fn release(&self, claimed: &[Labels]) {
        self.claims.release_deletes(claimed);
    }
}

/// A policy that expires groups older than `ttl_secs`, superseded copies after 5 minutes.
pub(super) fn policy(ttl_secs: u64) -> Rules {
    Rules {
        ttl: Duration::from_secs(ttl_secs),
        selector: Selector::default(),
        superseded_grace: Some(Duration::from_secs(300)),
        ttl_from_metric: None,
        min_ttl: Duration::from_secs(60),
        max_ttl: None,
        action: Action::DeleteGroups,
    }
}

/// A sweep of `policy` that confirms within a fraction of a second and never re-plans.
pub(super) fn sweep(policy: Rules) -> SweepConfig {
    SweepConfig {
        name: "test".into(),
        policy,
        limits: Limits::default(),
        dry_run: false,
        tuning: Tuning {
            confirm_timeout: Duration::from_millis(300),
            replan_after: Duration::from_secs(3600),
            unhealthy_wait: Duration::from_secs(1),
            ..Tuning::default()
        },
        permit: Permit::always(),
    }
}

/// The decision to delete `labels` (as an exact key) for its age.
pub(super) fn decision(labels: Labels) -> Decision {
    Decision {
        replica: 0,
        labels,
        instance_unsure: false,
        reason: Reason::Expired,
        age_seconds: Some(7200.0),
        detail: "age 2h over ttl 1h".into(),
    }
}

/// A permit that follows a flag the test flips, as the controller's leadership flag does (the
/// controller's own adapter lives above the sweep).
pub(super) fn permit(flag: tokio::sync::watch::Receiver<bool>) -> Permit {
    #[derive(Debug)]
    struct Flag(tokio::sync::watch::Receiver<bool>);
    impl crate::config::MayAct for Flag {
        fn may_act(&self) -> bool {
            *self.0.borrow()
        }
    }
    Permit::new(Flag(flag))
}
