//! The Kubernetes front door: a kube-runtime `Controller` over `PushgatewayRetention`s that runs
//! the sweep engine on each policy's cadence and reports in status, events and metrics.

pub mod context;
pub mod events;
pub mod expiry;
pub mod leader;
pub mod reconcile;
pub mod status;
pub mod undecodable;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

pub use context::{Context, Settings, CONTROLLER_NAME, FIELD_MANAGER};
pub use leader::LeaseOptions;
pub use reconcile::{error_policy, reconcile, reconcile_policy, Reconciled};

use crate::metrics::{Metrics, PolicyLabels};
use crate::server::{self, Health};
use crate::{Error, Result};

/// How the controller runs, from its flags.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// Watch these namespaces; empty: all.
    pub namespaces: Vec<String>,
    pub settings: Settings,
    /// `Some`: only the holder of this Lease sweeps.
    pub leader_election: Option<LeaseOptions>,
    /// This process's name on events and in the Lease.
    pub identity: String,
    /// How long a sweep in flight may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    pub max_concurrent_reconciles: u16,
}

/// Resolves on SIGTERM or SIGINT.
async fn signal() -> Result<()> {
    let io = |e: std::io::Error| Error::startup("install a signal handler", e);
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(io)?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        r = tokio::signal::ctrl_c() => { r.map_err(io)?; tracing::info!("SIGINT: shutting down") }
    }
    Ok(())
}

/// Runs until SIGTERM/SIGINT; returns once the sweeps in flight finished (or were abandoned
/// after `shutdown_timeout`) and the Lease was released.
pub async fn run(opts: Options) -> Result<()> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| Error::startup("build the Kubernetes client", e))?;
    let client = kube::Client::try_from(config.clone())
        .map_err(|e| Error::startup("build the Kubernetes client", e))?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());

    // Registered before anything slow, so an early SIGTERM is not lost.
    let shutdown = CancellationToken::new();
    let signals = {
        let shutdown = shutdown.clone();
        let health = health.clone();
        async move {
            if let Err(e) = signal().await {
                tracing::error!(error = %e, "cannot listen for signals");
                return;
            }
            health.set_shutting_down();
            shutdown.cancel();
        }
    };
    tokio::spawn(signals);

    // The server outlives the controller, so /readyz says "shutting down" until the very end.
    let server_stop = CancellationToken::new();
    let (addr, serve) = server::bind(
        opts.listen,
        health.clone(),
        metrics.clone(),
        None,
        server_stop.clone().cancelled_owned(),
    )
    .await?;
    tracing::info!(%addr, "serving /livez, /readyz, /metrics");
    let server = tokio::spawn(serve);

    let election = match &opts.leader_election {
        Some(lease) => {
            tracing::info!(lease = %lease.name, namespace = %lease.namespace, identity = %lease.identity, "leader election on");
            // Its own client, every request bounded inside the Lease.
            let lease_client =
                kube::Client::try_from(leader::lease_client_config(config, lease.duration))
                    .map_err(Error::Kube)?;
            Some(leader::start(lease_client, lease).await?)
        }
        None => None,
    };
    let flag = election
        .as_ref()
        .map_or_else(leader::always_leader, |e| e.flag.clone());
    let ctx = Arc::new(Context::new(
        client.clone(),
        Some(opts.identity.clone()),
        opts.settings.clone(),
        metrics.clone(),
        health.clone(),
        flag.clone(),
    ));

    // One kube-runtime Controller per watched namespace (or one over all of them): each keeps
    // its own store, and their reconciles share the Context.
    // Through the guard: one policy that cannot be decoded must not fail the watch of the rest.
    let apis: Vec<Api<undecodable::Watched>> = if opts.namespaces.is_empty() {
        vec![Api::all(client)]
    } else {
        opts.namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let controllers: Vec<_> = apis
        .into_iter()
        .map(|api| Controller::new(api, watcher::Config::default()))
        .collect();
    // Ready once every first watch list is in: from then on every policy is being reconciled.
    let stores: Vec<_> = controllers.iter().map(Controller::store).collect();
    let ready = health.clone();
    tokio::spawn(async move {
        for store in stores {
            // kube-runtime's store wakes only the LAST task waiting for its first list (the
            // applier waits too, and after us), so one long wait here would never wake. Short
            // waits, each a fresh waiter, see the value as soon as it is stored.
            loop {
                match tokio::time::timeout(Duration::from_millis(500), store.wait_until_ready())
                    .await
                {
                    Ok(Ok(())) => break,
                    Ok(Err(_)) => return, // the controller went away before its first list
                    Err(_) => {}
                }
            }
        }
        ready.set_ready();
    });
    let runs = controllers.into_iter().map(|c| {
        c.with_config(controller::Config::default().concurrency(opts.max_concurrent_reconciles))
            .reconcile_all_on(leader::elected(flag.clone()))
            .graceful_shutdown_on(shutdown.clone().cancelled_owned())
            .run(reconcile, error_policy, ctx.clone())
            .boxed()
    });
    let forget = metrics.clone();
    let controller = futures::stream::select_all(runs).for_each(move |result| {
        match result {
            Ok((obj, _)) => tracing::debug!(policy = %obj, "reconciled"),
            // No finalizer: a deleted policy just stops being reconciled; its gauges go when
            // its next requeue finds it gone.
            Err(controller::Error::ObjectNotFound(obj)) => {
                forget.forget(&PolicyLabels {
                    namespace: obj.namespace.clone().unwrap_or_default(),
                    policy: obj.name.clone(),
                });
            }
            Err(controller::Error::ReconcilerFailed(..)) => {} // logged by error_policy
            Err(e) => tracing::warn!(error = %e, "controller"),
        }
        futures::future::ready(())
    });
    // Boxed so it can be dropped below: dropping the stream aborts abandoned reconciles.
    let mut controller = Box::pin(controller);
    let bound = opts.shutdown_timeout;
    tokio::select! {
        _ = &mut controller => {}
        _ = async { shutdown.cancelled().await; tokio::time::sleep(bound).await } => {
            tracing::warn!("sweeps still running after {bound:?}: abandoned");
        }
    }
    drop(controller);

    if let Some(election) = election {
        election.release(Duration::from_secs(5)).await;
    }
    server_stop.cancel();
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server"),
        Err(_) => tracing::warn!("server did not stop within 5s"),
        _ => {}
    }
    tracing::info!("stopped");
    Ok(())
}
