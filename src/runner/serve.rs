//! The long-running mode: one task per policy, `/livez` `/readyz` `/metrics` `/-/reload`, reloads
//! on `SIGHUP`, on `POST /-/reload` and when the files change, and a graceful stop on SIGTERM or
//! SIGINT that lets sweeps in flight finish.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, LocalSet};

use super::reload::{self, PolicySet, Reloaded};
use super::{record_problems, sweep_policy, unix_now, CheckedDoc, Context, Options};
use crate::crd::PushgatewayRetentionSpec;
use crate::report::exit;
use crate::schedule;
use crate::server::{self, Health};
use crate::sweep::StartTimes;

/// How long the HTTP server may take to close once every policy task has ended.
const SERVER_STOP: Duration = Duration::from_secs(5);

pub(super) async fn run_forever(ctx: Context, policies: PolicySet, args: &Options) -> i32 {
    // The policy loops are local tasks: rustc cannot yet prove the engine's sweep future `Send`
    // (a higher-ranked lifetime limitation in `sweep::run`), and sweeps mostly wait on the network.
    LocalSet::new()
        .run_until(run_local(ctx, policies, args))
        .await
}

/// One policy's loop: what it runs, and how to stop it after its sweep in flight.
struct Loop {
    spec: PushgatewayRetentionSpec,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// Every policy's loop, kept in step with the policies in force.
#[derive(Default)]
struct Loops {
    by_id: BTreeMap<String, Loop>,
    /// Loops told to stop (their policy went or changed), still finishing a sweep.
    retiring: Vec<JoinHandle<()>>,
}

impl Loops {
    /// Starts the loops of new policies, stops those of removed ones, and restarts a changed
    /// one once its old loop has finished its sweep, so one policy never sweeps twice at once.
    fn apply(&mut self, ctx: &Arc<Context>, set: &PolicySet) {
        let mut wanted: BTreeMap<String, &CheckedDoc> = BTreeMap::new();
        for p in set.policies() {
            if p.checked.suspend {
                tracing::info!(policy = %p.id(), origin = %p.origin, "suspended: not run");
            } else {
                wanted.insert(p.id(), p);
            }
        }
        let current: Vec<String> = self.by_id.keys().cloned().collect();
        for id in current {
            if wanted
                .get(&id)
                .is_some_and(|p| p.spec == self.by_id[&id].spec)
            {
                wanted.remove(&id);
                continue;
            }
            let old = self.by_id.remove(&id).expect("listed above");
            let _ = old.stop.send(true);
            tracing::info!(policy = %id, "policy removed or changed: its loop stops after its sweep");
            self.retiring.push(old.handle);
        }
        for (id, policy) in wanted {
            let (stop, stop_rx) = watch::channel(false);
            let ctx = ctx.clone();
            let policy = policy.clone();
            let spec = policy.spec.clone();
            let before = std::mem::take(&mut self.retiring);
            let handle = tokio::task::spawn_local(async move {
                for old in before {
                    let _ = old.await;
                }
                policy_loop(ctx, policy, Timestamp::now(), stop_rx).await;
            });
            self.by_id.insert(id, Loop { spec, stop, handle });
        }
    }

    /// Stops every loop, letting sweeps in flight finish within `timeout`; aborts the rest.
    async fn stop_all(self, timeout: Duration) {
        let mut handles = self.retiring;
        for (_, l) in self.by_id {
            let _ = l.stop.send(true);
            handles.push(l.handle);
        }
        let aborts: Vec<_> = handles.iter().map(JoinHandle::abort_handle).collect();
        let drained = tokio::time::timeout(timeout, futures::future::join_all(handles)).await;
        if drained.is_err() {
            tracing::warn!(
                ?timeout,
                "sweeps still in flight at the shutdown timeout; stopping them"
            );
            for a in aborts {
                a.abort();
            }
        }
    }
}

async fn run_local(ctx: Context, policies: PolicySet, args: &Options) -> i32 {
    // Registered before anything slow, so an early SIGTERM is not lost.
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    let health = Arc::new(Health::default());
    let (server_stop_tx, server_stop_rx) = oneshot::channel::<()>();
    let (reload_tx, mut reload_rx) = mpsc::channel(4);
    let bound = server::bind(
        args.listen,
        health.clone(),
        ctx.metrics.clone(),
        Some(reload_tx),
        async {
            let _ = server_stop_rx.await;
        },
    )
    .await;
    let (addr, serve) = match bound {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    let mut server = tokio::spawn(serve);
    tracing::info!(%addr, "serving /livez, /readyz, /metrics and /-/reload");

    let ctx = Arc::new(ctx);
    let mut loops = Loops::default();
    loops.apply(&ctx, &policies);
    let mut current = policies;
    health.set_ready();
    tracing::info!(
        policies = current.len(),
        "policies loaded; their loops are running"
    );

    let mut reloader = Reloader {
        args,
        tuning: args.tuning.clone(),
        ctx: ctx.clone(),
        seen: reload::fingerprint(&args.policies),
    };
    let polling = !args.reload_check_interval.is_zero();
    let mut poll =
        tokio::time::interval(args.reload_check_interval.max(Duration::from_millis(100)));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hangups = hangup_signals();
    tokio::pin!(shutdown);

    let mut code = exit::OK;
    loop {
        tokio::select! {
            signal = &mut shutdown => {
                tracing::info!(signal, "shutting down");
                break;
            }
            ended = &mut server => {
                // Without the server no probe can see the janitor: stop rather than run blind.
                tracing::error!(result = ?ended, "the HTTP server stopped; shutting down");
                code = exit::REPLICA_FAILED;
                break;
            }
            Some(()) = hangups.recv() => {
                reloader.reload("SIGHUP", &mut current, &mut loops);
            }
            Some(reply) = reload_rx.recv() => {
                let r = reloader.reload("POST /-/reload", &mut current, &mut loops);
                let _ = reply.send((r.ok(), r.describe()));
            }
            _ = poll.tick(), if polling => {
                if reload::fingerprint(&args.policies) != reloader.seen {
                    reloader.reload("policy files changed", &mut current, &mut loops);
                }
            }
        }
    }
    health.set_shutting_down();
    loops.stop_all(args.shutdown_timeout).await;
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

/// Reloads the policy files and brings the loops in step.
struct Reloader<'a> {
    args: &'a Options,
    tuning: crate::tuning::Tuning,
    ctx: Arc<Context>,
    /// What the files held at the last reload, to tell a change.
    seen: u64,
}

impl Reloader<'_> {
    fn reload(&mut self, cause: &str, current: &mut PolicySet, loops: &mut Loops) -> Reloaded {
        self.seen = reload::fingerprint(&self.args.policies);
        let r = reload::reload(
            &self.args.policies,
            self.args.min_ttl,
            &self.tuning,
            current,
        );
        if r.ok() {
            tracing::info!(cause, policies = r.set.len(), "policies reloaded");
        } else {
            tracing::error!(cause, "{}", r.describe());
        }
        record_problems(&self.ctx.metrics, &r.problems);
        self.ctx.metrics.record_reload(r.ok(), unix_now());
        loops.apply(&self.ctx, &r.set);
        *current = r.set.clone();
        r
    }
}

/// One policy, forever: sweep when due, then sleep until the next check or the stop signal. A
/// sweep in flight is never cut short by the stop; the shutdown timeout bounds it.
async fn policy_loop(
    ctx: Arc<Context>,
    policy: CheckedDoc,
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

/// One message per SIGHUP. Where the signal cannot be listened for, none ever comes (and the
/// other reload triggers still work).
fn hangup_signals() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        // A reload already pending covers this one too.
                        let _ = tx.try_send(());
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /-/reload")
            }
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// Resolves on SIGTERM (what Kubernetes sends) or SIGINT; names the signal. The handler is
/// installed now: a janitor that could not stop gracefully does not start.
fn shutdown_signal() -> crate::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| crate::Error::startup("install a SIGTERM handler", e))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        }
    })
}
