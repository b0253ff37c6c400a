//! Leader election on a Lease (kube-lease-manager), so only one of several controller replicas
//! sweeps. Leadership is a `watch` flag the reconciler reads before touching anything and the
//! engine reads before every DELETE; it drops before the Lease could expire (see `expiry`).

use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::expiry::{is_current_for, until, LeaseTiming};
use crate::config::{MayAct, Permit};
use crate::{Error, Result};

/// Where the Lease is and who we are.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    /// How long a lease stays valid after its holder last renewed it: the time another replica
    /// waits before taking over from one that died.
    pub duration: Duration,
}

/// Whether this process may act now.
pub type LeaderFlag = watch::Receiver<bool>;

/// The engine's permit from the flag: it may delete while this process leads.
pub fn permit(flag: LeaderFlag) -> Permit {
    Permit::new(Leading(flag))
}

/// The flag as the right to act; a flag whose sender is gone keeps its last word.
#[derive(Debug)]
struct Leading(LeaderFlag);

impl MayAct for Leading {
    fn may_act(&self) -> bool {
        *self.0.borrow()
    }
}

/// A flag that is always set: leader election off (one replica, or the CLI).
pub fn always_leader() -> LeaderFlag {
    watch::channel(true).1
}

/// A flag fixed at `leader`, for tests.
pub fn fixed(leader: bool) -> LeaderFlag {
    watch::channel(leader).1
}

/// Yields each time this process becomes the leader, so every policy is looked at at once
/// instead of when its next non-leader requeue fires.
pub fn elected(flag: LeaderFlag) -> impl Stream<Item = ()> + Send {
    futures::stream::unfold(flag, |mut flag| async move {
        loop {
            flag.changed().await.ok()?;
            if *flag.borrow_and_update() {
                return Some(((), flag));
            }
        }
    })
}

/// The running election: the flag, and the task that keeps the Lease.
pub struct Election {
    pub flag: LeaderFlag,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The identity of this process in the Lease: the pod's name, else the host name and process id
/// (two processes on one host must not share an identity, or both would hold the Lease).
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME") {
        if !pod.is_empty() {
            return pod;
        }
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "pushgateway-janitor".into());
    format!("{host}-{}", std::process::id())
}

/// Creates the Lease if needed and starts competing for it. `client` should bound its requests
/// (see [`lease_client_config`]): a renewal that hangs is retried only once it fails.
pub async fn start(client: Client, opts: &LeaseOptions) -> Result<Election> {
    let timing =
        LeaseTiming::of(opts.duration).map_err(|why| Error::config("--lease-duration", why))?;
    let manager = LeaseManagerBuilder::new(client.clone(), &opts.name)
        .with_namespace(&opts.namespace)
        .with_identity(&opts.identity)
        .with_duration(timing.duration.as_secs())
        .with_grace(timing.grace_secs)
        .build()
        .await
        .map_err(Error::Lease)?;
    let (tx, flag) = watch::channel(false);
    let stop = CancellationToken::new();
    let leases = Api::namespaced(client, &opts.namespace);
    let task = tokio::spawn(keep(
        manager,
        leases,
        timing,
        tx,
        stop.clone(),
        opts.clone(),
    ));
    Ok(Election { flag, stop, task })
}

/// The client configuration for the Lease: every request bounded well inside the Lease, so a
/// hung renewal fails and is retried before the holder must stop acting.
pub fn lease_client_config(mut config: kube::Config, duration: Duration) -> kube::Config {
    let bound = (duration / 4).max(Duration::from_millis(500));
    config.connect_timeout = Some(bound);
    config.read_timeout = Some(bound);
    config.write_timeout = Some(bound);
    config
}

/// What this process knows of its own claim.
#[derive(Debug, Default)]
struct Claim {
    /// The manager's word: it holds the Lease (it says so only when that changes).
    held: bool,
    /// When the Lease, read back from the server, was last renewed by us (our clock wrote it).
    last_renew: Option<Timestamp>,
}

impl Claim {
    fn may_act(&self, timing: &LeaseTiming, now: Timestamp) -> bool {
        self.held && is_current_for(self.last_renew, timing.duration, timing.margin, now)
    }
}

/// Our last renewal as the server holds it: `Ok(None)` when the Lease is not ours.
async fn read_renewal(
    leases: &Api<Lease>,
    name: &str,
    identity: &str,
    bound: Duration,
) -> std::result::Result<Option<Timestamp>, String> {
    let lease = match tokio::time::timeout(bound, leases.get(name)).await {
        Ok(Ok(lease)) => lease,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("timed out after {bound:?}")),
    };
    let spec = lease.spec.unwrap_or_default();
    Ok((spec.holder_identity.as_deref() == Some(identity))
        .then_some(spec.renew_time.map(|t| t.0))
        .flatten())
}

/// Keeps the Lease through the manager, and the flag true only while the claim is current: the
/// manager has it AND its last renewal seen on the server is recent enough. A renewal that hangs
/// or fails lets the flag drop at the margin before expiry, whatever the manager believes.
async fn keep(
    manager: LeaseManager,
    leases: Api<Lease>,
    timing: LeaseTiming,
    tx: watch::Sender<bool>,
    stop: CancellationToken,
    opts: LeaseOptions,
) {
    let mut claim = Claim::default();
    let manager = &manager;
    // One round of the manager at a time, never dropped half way (a renewal in flight).
    let mut round: BoxFuture<'_, _> = manager.changed().boxed();
    let mut retry = Duration::from_millis(500);
    loop {
        let now = Timestamp::now();
        let acting = claim.may_act(&timing, now);
        if *tx.borrow() != acting {
            match (acting, claim.last_renew) {
                (true, _) => {
                    tracing::info!(identity = %opts.identity, lease = %opts.name, "leading")
                }
                (false, Some(r)) if claim.held => tracing::warn!(
                    identity = %opts.identity, lease = %opts.name, last_renew = %r,
                    acts_until = %timing.acts_until(r), expires = %expiry(r, timing.duration),
                    "lease not renewed in time: stop acting"
                ),
                (false, _) => {
                    tracing::info!(identity = %opts.identity, lease = %opts.name, "not leading")
                }
            }
            tx.send_replace(acting);
        }
        let stop_acting = tokio::time::Instant::now()
            + claim
                .last_renew
                .map_or(Duration::ZERO, |r| until(now, timing.acts_until(r)));
        let poll_at =
            tokio::time::Instant::now() + until(now, timing.next_poll(claim.last_renew, now));
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            changed = &mut round => match changed {
                Ok(held) => {
                    retry = Duration::from_millis(500);
                    tracing::info!(identity = %opts.identity, lease = %opts.name, held, "lease manager: leadership changed");
                    claim.held = held;
                    claim.last_renew = None;
                    if held {
                        // Acting starts once the renewal is read back: its time is the clock.
                        poll(&leases, &opts, &timing, &mut claim).await;
                    }
                    round = manager.changed().boxed();
                }
                Err(e) => {
                    // The manager keeps its own view of the lock; the next successful round
                    // reports any change, and the flag drops on its own if no renewal lands.
                    tracing::warn!(error = %e, lease = %opts.name, "lease round failed; retrying");
                    let pause = retry;
                    retry = (retry * 2).min(timing.duration / 4);
                    round = async move {
                        tokio::time::sleep(pause).await;
                        manager.changed().await
                    }
                    .boxed();
                }
            },
            _ = tokio::time::sleep_until(stop_acting), if acting => {}
            _ = tokio::time::sleep_until(poll_at), if claim.held => {
                poll(&leases, &opts, &timing, &mut claim).await;
            }
        }
    }
    drop(round);
    tx.send_replace(false);
    match manager.release().await {
        Ok(()) => tracing::info!(identity = %opts.identity, lease = %opts.name, "lease released"),
        Err(e) => tracing::warn!(error = %e, lease = %opts.name, "cannot release the lease"),
    }
}

fn expiry(last_renew: Timestamp, duration: Duration) -> Timestamp {
    super::expiry::acts_until(last_renew, duration, Duration::ZERO)
}

/// Reads the Lease back, bounded by the poll so the stop is never late by more than that.
async fn poll(leases: &Api<Lease>, opts: &LeaseOptions, timing: &LeaseTiming, claim: &mut Claim) {
    match read_renewal(leases, &opts.name, &opts.identity, timing.poll).await {
        Ok(Some(renewed)) => claim.last_renew = Some(renewed),
        Ok(None) => {
            tracing::warn!(identity = %opts.identity, lease = %opts.name, "the Lease is not ours");
            claim.last_renew = None;
        }
        Err(e) => tracing::debug!(error = %e, lease = %opts.name, "cannot read the Lease"),
    }
}

impl Election {
    /// Stops competing and releases the Lease if held, within `bound`.
    pub async fn release(self, bound: Duration) {
        self.stop.cancel();
        if tokio::time::timeout(bound, self.task).await.is_err() {
            tracing::warn!("lease not released within {bound:?}; it expires on its own");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permit_follows_its_flag_both_ways() {
        let (tx, rx) = watch::channel(true);
        let permit = permit(rx);
        assert!(permit.may_act());
        tx.send_replace(false);
        assert!(!permit.may_act());
        tx.send_replace(true);
        assert!(permit.may_act());
    }

    #[test]
    fn a_flag_whose_sender_is_gone_keeps_its_last_word() {
        let (tx, rx) = watch::channel(false);
        drop(tx);
        assert!(!permit(rx).may_act());
    }
}
