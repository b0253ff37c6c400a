//! The engine as one long-lived service: replicas, not policies, own the IO.
//!
//! The engine keeps one entry per replica it knows (by URL): its latest reads, its delete budget,
//! the deletes in flight on it. A policy that is due asks for a read no older than a bound; reads
//! of one replica wanted at the same time share one read (the first asker reads, the others wait
//! for its answer), and so do the re-reads that confirm deletes. With N policies over M replicas
//! one cycle costs M reads, not N×M. Every policy's DELETEs to a replica draw on the replica's one
//! budget, so `--delete-rate` and `--delete-concurrency` mean what they say however many policies
//! there are. A replica nobody asked about for a while is forgotten.
//!
//! Reads are shared only between callers with the same credentials and the same declared-TTL
//! gauge: a policy never sees data its own credentials could not read.

mod budget;
mod pace;
mod reads;

pub use budget::{Budget, Ticket};
pub use pace::{Pace, PaceLimits, Signal};
pub use reads::{plan_inputs, read_all};

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::gateway::Gateway;
use crate::http::redact_url;
use crate::http::{build_client, Credentials, Egress, HttpAuth};
use crate::model::{Labels, Naming, ReplicaStatus, Snapshot, Source};
use crate::Error;

/// How the engine shares and paces, from the tuning every front door builds.
#[derive(Debug, Clone)]
pub struct Settings {
    /// DELETEs in flight at once on one replica, for all policies together.
    pub delete_concurrency: usize,
    /// The most DELETEs per second on one replica, for all policies together.
    pub delete_rate: f64,
    pub unhealthy_wait: Duration,
    /// A read this recent is good enough for a policy that becomes due.
    pub share_within: Duration,
    /// A replica nobody asked about for this long is forgotten (its pace starts over).
    pub forget_after: Duration,
    /// Where every client the engine builds may connect (the admin's allow-list).
    pub egress: Arc<Egress>,
}

impl Settings {
    pub fn from_tuning(t: &crate::tuning::Tuning) -> Self {
        Settings {
            delete_concurrency: t.delete_concurrency,
            delete_rate: t.delete_rate,
            unhealthy_wait: t.unhealthy_wait,
            // Short: a policy swept every second still sees every second's state. Policies due
            // together share anyway, since a read under way is joined whatever its age.
            share_within: (t.replan_after / 2).min(Duration::from_secs(2)),
            forget_after: Duration::from_secs(600),
            egress: Arc::new(Egress::open()),
        }
    }
}

/// What reading one replica gave: its status, then its groups.
pub struct Read {
    pub gateway: Gateway,
    pub status: Option<ReplicaStatus>,
    pub snapshot: Result<Snapshot, Error>,
    /// When the read started: the earliest moment the snapshot may describe.
    pub started: Instant,
    /// When it ended.
    pub finished: Instant,
    pub seconds: f64,
}

/// An HTTP client for the gateways with the identity of its credentials, so reads are shared
/// only between callers that could each have made them.
#[derive(Clone)]
pub struct Access {
    pub http: reqwest::Client,
    key: u64,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("key", &self.key).finish()
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct ReadKey {
    access: u64,
    ttl_metric: Option<String>,
    /// What the caller asked for: a light read (which may fall back to the JSON API) is never
    /// handed to a caller that needs exact keys, and the other way round.
    source: Source,
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Read>>>>;

/// One replica the engine knows.
pub struct ReplicaEntry {
    pub budget: Budget,
    reads: Mutex<HashMap<ReadKey, Slot>>,
    /// Deletes sent to this replica and not yet old. A second policy that plans the same delete
    /// from a read made before the first one's was confirmed waits for it instead.
    deletes: Mutex<HashMap<Labels, Claim>>,
    last_used: Mutex<Instant>,
}

/// One delete sent: the push time of the copy it deletes, when it was claimed, and when its
/// sweep finished confirming it.
struct Claim {
    push_time: f64,
    at: Instant,
    released: Option<Instant>,
}

impl ReplicaEntry {
    /// Lets go of the claims of a sweep whose deletes are confirmed (or given up): a later sweep
    /// that finds the same copy again (a replica restarted from its persistence file) deletes it
    /// again.
    pub fn release_deletes<'a>(&self, claimed: impl IntoIterator<Item = &'a Labels>) {
        let mut deletes = lock(&self.deletes);
        let now = Instant::now();
        for labels in claimed {
            if let Some(c) = deletes.get_mut(labels) {
                c.released = Some(now);
            }
        }
    }

    /// Claims the delete of `labels` (the copy pushed at `push_time`, as seen by a read that
    /// started at `read_at`): `true` when this caller should send it, `false` when another
    /// sweep sent the same delete within `fresh` and either is still confirming it or confirmed
    /// it after `read_at` (this caller's plan predates that delete). A copy found again by a
    /// later read (a replica restarted from its persistence file) is deleted again.
    pub fn claim_delete(
        &self,
        labels: &Labels,
        push_time: f64,
        read_at: Instant,
        fresh: Duration,
    ) -> bool {
        let mut deletes = lock(&self.deletes);
        if deletes.len() >= deletes.capacity() {
            // Pruned only when the map would grow, so a big sweep's claims stay O(1) each.
            deletes.retain(|_, c| c.at.elapsed() < fresh);
        }
        match deletes.get(labels) {
            Some(c)
                if c.push_time >= push_time
                    && c.at.elapsed() < fresh
                    && c.released.is_none_or(|r| read_at < r) =>
            {
                false
            }
            _ => {
                let claim = Claim {
                    push_time,
                    at: Instant::now(),
                    released: None,
                };
                deletes.insert(labels.clone(), claim);
                true
            }
        }
    }
}

struct Inner {
    settings: Settings,
    replicas: Mutex<HashMap<String, Arc<ReplicaEntry>>>,
    clients: Mutex<HashMap<u64, (reqwest::Client, Instant)>>,
    hasher: RandomState,
    reads: AtomicU64,
    next_private: AtomicU64,
}

/// The engine: cheap to clone, one per process.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    pub fn new(settings: Settings) -> Self {
        Engine {
            inner: Arc::new(Inner {
                settings,
                replicas: Mutex::new(HashMap::new()),
                clients: Mutex::new(HashMap::new()),
                hasher: RandomState::new(),
                reads: AtomicU64::new(0),
                next_private: AtomicU64::new(1),
            }),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Where the engine's clients may connect.
    pub fn egress(&self) -> &Arc<Egress> {
        &self.inner.settings.egress
    }

    /// Reads of replicas this engine made (shared reads count once).
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(Ordering::Relaxed)
    }

    /// The gateway client for these credentials: one per distinct credentials, kept while used,
    /// so connections are kept alive across sweeps and policies.
    pub fn access(
        &self,
        what: &str,
        auth: &HttpAuth,
        connect_timeout: Duration,
    ) -> crate::Result<Access> {
        let key = self.fingerprint(what, auth, connect_timeout);
        let mut clients = lock(&self.inner.clients);
        let forget = self.inner.settings.forget_after;
        clients.retain(|_, (_, used)| used.elapsed() < forget);
        if let Some((http, used)) = clients.get_mut(&key) {
            *used = Instant::now();
            return Ok(Access {
                http: http.clone(),
                key,
            });
        }
        let http = build_client(what, auth, connect_timeout, &self.inner.settings.egress)?;
        clients.insert(key, (http.clone(), Instant::now()));
        Ok(Access { http, key })
    }

    /// A client the caller built itself: its reads are shared only with callers holding this
    /// same `Access`.
    pub fn private_access(&self, http: reqwest::Client) -> Access {
        Access {
            http,
            // Fingerprints are full 64-bit hashes; a private key is marked by its top bit.
            key: (1 << 63) | self.inner.next_private.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn fingerprint(&self, what: &str, auth: &HttpAuth, connect_timeout: Duration) -> u64 {
        let mut h = self.inner.hasher.build_hasher();
        what.hash(&mut h);
        connect_timeout.hash(&mut h);
        match &auth.credentials {
            Credentials::None => 0u8.hash(&mut h),
            Credentials::Basic { username, password } => {
                1u8.hash(&mut h);
                username.hash(&mut h);
                password.hash(&mut h);
            }
            Credentials::Bearer(token) => {
                2u8.hash(&mut h);
                token.hash(&mut h);
            }
        }
        auth.ca_pem.hash(&mut h);
        auth.identity_pem.hash(&mut h);
        h.finish() & !(1 << 63)
    }

    /// The entry of the replica at `gateway`'s URL, made when first asked for. Forgets the
    /// replicas nobody asked about for `forget_after`.
    pub fn replica(&self, gateway: &Gateway) -> Arc<ReplicaEntry> {
        let s = &self.inner.settings;
        let mut replicas = lock(&self.inner.replicas);
        replicas.retain(|_, r| {
            Arc::strong_count(r) > 1 || lock(&r.last_used).elapsed() < s.forget_after
        });
        let entry = replicas
            .entry(gateway.url().as_str().to_string())
            .or_insert_with(|| {
                Arc::new(ReplicaEntry {
                    budget: Budget::new(s.delete_concurrency, s.delete_rate, s.unhealthy_wait),
                    reads: Mutex::new(HashMap::new()),
                    deletes: Mutex::new(HashMap::new()),
                    last_used: Mutex::new(Instant::now()),
                })
            })
            .clone();
        *lock(&entry.last_used) = Instant::now();
        entry
    }

    /// How many replicas the engine knows now.
    pub fn known_replicas(&self) -> usize {
        lock(&self.inner.replicas).len()
    }

    /// A read of `gateway` that started no earlier than `fresh_since`: the newest one made for
    /// the same credentials and gauge when it is recent enough, else a new one. Callers that ask
    /// while a read is under way wait for it; with `join` they take it whatever its start
    /// (nothing newer exists), without it (a confirmation must see its own deletes) they read
    /// again if it started too early. `source`: [`Source::Metrics`] reads `/metrics` (the JSON
    /// API only where it cannot give the groups exactly), [`Source::Json`] the JSON API.
    pub async fn read(
        &self,
        gateway: &Gateway,
        access: &Access,
        ttl_metric: Option<&str>,
        source: Source,
        fresh_since: Instant,
        join: bool,
    ) -> Arc<Read> {
        let asked = Instant::now();
        let replica = self.replica(gateway);
        let slot: Slot = lock(&replica.reads)
            .entry(ReadKey {
                access: access.key,
                ttl_metric: ttl_metric.map(str::to_string),
                source,
            })
            .or_default()
            .clone();
        let mut cached = slot.lock().await;
        if let Some(read) = cached.as_ref() {
            if read.started >= fresh_since || (join && read.finished >= asked) {
                return read.clone();
            }
        }
        // Drop the old snapshot before reading the new one: two copies of a big store at once
        // would double the peak.
        *cached = None;
        let read = Arc::new(read_replica(gateway.clone(), ttl_metric, source).await);
        self.inner.reads.fetch_add(1, Ordering::Relaxed);
        *cached = Some(read.clone());
        drop(cached);
        forget_later(
            Arc::downgrade(&slot),
            Arc::downgrade(&read),
            self.inner.settings.share_within,
        );
        read
    }

    /// A read recent enough to be shared with a policy that becomes due now.
    pub async fn read_for_plan(
        &self,
        gateway: &Gateway,
        access: &Access,
        ttl_metric: Option<&str>,
        source: Source,
    ) -> Arc<Read> {
        let since = Instant::now()
            .checked_sub(self.inner.settings.share_within)
            .unwrap_or_else(Instant::now);
        self.read(gateway, access, ttl_metric, source, since, true)
            .await
    }
}

/// Lets go of a shared read once it is too old to be shared, so a big store is not kept in
/// memory between cycles. The sweeps using it keep their own reference.
fn forget_later(
    slot: Weak<tokio::sync::Mutex<Option<Arc<Read>>>>,
    read: Weak<Read>,
    after: Duration,
) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let Some(slot) = slot.upgrade() else { return };
        let mut cached = slot.lock().await;
        let same = match (cached.as_ref(), read.upgrade()) {
            (Some(c), Some(r)) => Arc::ptr_eq(c, &r),
            _ => false,
        };
        if same {
            *cached = None;
        }
    });
}

async fn read_replica(gateway: Gateway, ttl_metric: Option<&str>, source: Source) -> Read {
    let started = Instant::now();
    // The status comes first: it tells how the replica reads label names in a path, which decides
    // which of its groups can be addressed (read status → snapshot knows the naming → act encodes).
    let status = match gateway.status().await {
        Ok(status) => Some(status),
        Err(e) => {
            // Without it, wipes go group by group and only names that mean the same on every
            // version are deleted (`Naming::Unknown`).
            tracing::warn!(gateway = %redact_url(gateway.url()), error = %e, "cannot read status");
            None
        }
    };
    let naming = Naming::of(status.as_ref());
    let snapshot = match source {
        Source::Metrics => gateway.read(ttl_metric, naming).await,
        Source::Json => gateway.read_json(ttl_metric, naming).await,
    };
    match &snapshot {
        Ok(s) => tracing::debug!(
            gateway = %redact_url(gateway.url()),
            read = s.source.as_str(),
            groups = s.groups.len(),
            "replica read"
        ),
        Err(e) => {
            tracing::warn!(gateway = %redact_url(gateway.url()), error = %e, "cannot read groups")
        }
    }
    let finished = Instant::now();
    Read {
        gateway,
        status,
        snapshot,
        started,
        finished,
        seconds: (finished - started).as_secs_f64(),
    }
}

#[cfg(test)]
mod tests;
