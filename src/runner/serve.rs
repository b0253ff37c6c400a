//! The long-running mode: one task per policy, `/livez` `/readyz` `/metrics`, and a graceful stop
//! on SIGTERM or SIGINT that lets sweeps in flight finish.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use jiff::Timestamp;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinSet, LocalSet};

use super::{sweep_policy, Context, RunnablePolicy};
use crate::cli::run::RunArgs;
use crate::report::exit;
use crate::schedule;
use crate::server::{self, Health};
use crate::sweep::StartTimes;

/// How long the HTTP server may take to close once every policy task has ended.
const SERVER_STOP: Duration = Duration::from_secs(5);

pub(super) async fn run_forever(
    ctx: Context,
    policies: Vec<RunnablePolicy>,
    args: &RunArgs,
) -> i32 {
    // The policy loops are local tasks: rustc cannot yet prove the engine's sweep future `Send`
    // (a higher-ranked lifetime limitation in `sweep::run`), and sweeps mostly wait on the network.
    LocalSet::new()
        .run_until(run_local(ctx, policies, args))
        .await
}

async fn run_local(ctx: Context, policies: Vec<RunnablePolicy>, args: &RunArgs) -> i32 {
    let health = Arc::new(Health::default());
    let (server_stop_tx, server_stop_rx) = oneshot::channel::<()>();
    let bound = server::bind(args.listen, health.clone(), ctx.metrics.clone(), async {
        let _ = server_stop_rx.await;
    })
    .await;
    let (addr, serve) = match bound {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let mut server = tokio::spawn(serve);
    tracing::info!(%addr, "serving /livez, /readyz and /metrics");

    // Every policy counts its first interval, or waits for its first cron tick, from here.
    let anchor = Timestamp::now();
    let ctx = Arc::new(ctx);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let count = policies.len();
    for policy in policies {
        tasks.spawn_local(policy_loop(ctx.clone(), policy, anchor, stop_rx.clone()));
    }
    health.set_ready();
    tracing::info!(policies = count, "policies loaded; their loops are running");

    let mut code = exit::OK;
    tokio::select! {
        signal = shutdown_signal() => tracing::info!(signal, "shutting down"),
        ended = &mut server => {
            // Without the server no probe can see the janitor: stop rather than run blind.
            tracing::error!(result = ?ended, "the HTTP server stopped; shutting down");
            code = exit::REPLICA_FAILED;
        }
    }
    health.set_shutting_down();
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(args.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            timeout = ?args.shutdown_timeout,
            still_running = tasks.len(),
            "sweeps still in flight at the shutdown timeout; stopping them"
        );
        tasks.abort_all();
    }
    let _ = server_stop_tx.send(());
    if !server.is_finished()
        && tokio::time::timeout(SERVER_STOP, &mut server)
            .await
            .is_err()
    {
        server.abort();
    }
    tracing::info!("stopped");
    code
}

/// One policy, forever: sweep when due, then sleep until the next check or the stop signal. A
/// sweep in flight is never cut short by the stop; the shutdown timeout bounds it.
async fn policy_loop(
    ctx: Arc<Context>,
    policy: RunnablePolicy,
    anchor: Timestamp,
    mut stop: watch::Receiver<bool>,
) {
    let cadence = &policy.checked.cadence;
    let mut last_sweep: Option<Timestamp> = None;
    let mut starts = StartTimes::default();
    loop {
        if *stop.borrow() {
            return;
        }
        let now = Timestamp::now();
        let wait = match cadence.due(last_sweep, anchor, now, false) {
            Ok(due) if due.sweep_now => {
                last_sweep = Some(now);
                // A panic in one sweep must not end this policy's loop (nor touch the others).
                let swept = AssertUnwindSafe(sweep_policy(&ctx, &policy, &mut starts))
                    .catch_unwind()
                    .await;
                if swept.is_err() {
                    tracing::error!(policy = %policy.id(), "sweep panicked; the loop goes on");
                }
                continue;
            }
            Ok(due) => {
                if let Some(tick) = due.next_tick {
                    tracing::debug!(policy = %policy.id(), %tick, "next scheduled sweep");
                }
                schedule::until(now, due.next_check)
            }
            Err(e) => {
                tracing::error!(policy = %policy.id(), error = %e, "cannot tell when the policy is due");
                cadence.interval
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
    }
}

/// Resolves on SIGTERM (what Kubernetes sends) or SIGINT; names the signal.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
