//! Leader election on a Lease (kube-lease-manager), so only one of several controller replicas
//! sweeps. Leadership is a `watch` flag the reconciler reads before touching anything.

use std::time::Duration;

use futures::Stream;
use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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

/// Creates the Lease if needed and starts competing for it.
pub async fn start(client: Client, opts: &LeaseOptions) -> Result<Election> {
    let duration = opts.duration.as_secs();
    if duration < 2 {
        return Err(Error::config("--lease-duration", "must be at least 2s"));
    }
    // Renew a third of the way before expiry: room for a slow API server or a skewed clock.
    let grace = (duration / 3).max(1);
    let manager = LeaseManagerBuilder::new(client, &opts.name)
        .with_namespace(&opts.namespace)
        .with_identity(&opts.identity)
        .with_duration(duration)
        .with_grace(grace)
        .build()
        .await
        .map_err(Error::Lease)?;
    let (tx, flag) = watch::channel(false);
    let stop = CancellationToken::new();
    let task = tokio::spawn(keep(manager, tx, stop.clone(), opts.clone()));
    Ok(Election { flag, stop, task })
}

async fn keep(
    manager: LeaseManager,
    tx: watch::Sender<bool>,
    stop: CancellationToken,
    opts: LeaseOptions,
) {
    let mut retry = Duration::from_millis(500);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            changed = manager.changed() => match changed {
                Ok(leader) => {
                    retry = Duration::from_millis(500);
                    tracing::info!(identity = %opts.identity, lease = %opts.name, leader, "leadership changed");
                    tx.send_replace(leader);
                }
                Err(e) => {
                    // The manager keeps its own view of the lock; the next successful round
                    // reports any change. Until then the last known state stands.
                    tracing::warn!(error = %e, lease = %opts.name, "lease round failed; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(opts.duration / 2);
                }
            }
        }
    }
    tx.send_replace(false);
    match manager.release().await {
        Ok(()) => tracing::info!(identity = %opts.identity, lease = %opts.name, "lease released"),
        Err(e) => tracing::warn!(error = %e, lease = %opts.name, "cannot release the lease"),
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
