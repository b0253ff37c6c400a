//! Progress of long work (many deletes, a big replica's read), told as `tracing` events on the
//! target [`TARGET`], so the engine knows nothing of terminals:
//! - every [`log_interval`] while the work goes on, one INFO event: `task`, `done`, `total`,
//!   `rate` per second, `eta_seconds` (when the total is known);
//! - every [`TICK`], a TRACE event with `task`, `done`, `total` (and `finished` at the end), which
//!   a progress bar on a terminal follows (see `telemetry`).
//!
//! Work that ends within one interval logs nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The `tracing` target of every progress event.
pub const TARGET: &str = "pgw_janitor::progress";

/// How often a progress bar is fed.
pub const TICK: Duration = Duration::from_millis(200);

static LOG_INTERVAL: OnceLock<Duration> = OnceLock::new();

/// Sets how often progress is logged (`--progress-interval`); the first call wins.
pub fn set_log_interval(every: Duration) {
    let _ = LOG_INTERVAL.set(every);
}

/// How often progress is logged: 10 s unless set.
pub fn log_interval() -> Duration {
    *LOG_INTERVAL.get().unwrap_or(&Duration::from_secs(10))
}

/// A counter of work done, reported while it lives. Clones share the count.
#[derive(Clone)]
pub struct Progress {
    done: Arc<AtomicU64>,
    _reporter: Arc<Reporter>,
}

/// Ends the reporting task when the last clone of a [`Progress`] is dropped.
struct Reporter {
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Progress {
    /// Starts reporting `task` (`delete`, `read http://pgw-0:9091/`) of `total` units (`None`
    /// when unknown). Needs a Tokio runtime.
    pub fn start(task: String, total: Option<u64>, unit: &'static str) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let count = done.clone();
        let every = log_interval();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut last_log = started;
            let mut ticks = tokio::time::interval(TICK);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let finished = tokio::select! {
                    _ = ticks.tick() => false,
                    _ = stopped.wait_for(|s| *s) => true,
                };
                let done = count.load(Ordering::Relaxed);
                tracing::trace!(target: TARGET, task = %task, done, total, unit, finished);
                if finished {
                    return;
                }
                if last_log.elapsed() >= every {
                    last_log = Instant::now();
                    let secs = started.elapsed().as_secs_f64();
                    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
                    let eta_seconds = total
                        .filter(|_| rate > 0.0)
                        .map(|t| (t.saturating_sub(done) as f64 / rate).round());
                    tracing::info!(
                        target: TARGET,
                        task = %task,
                        done,
                        total,
                        unit,
                        rate = (rate * 10.0).round() / 10.0,
                        eta_seconds,
                        "progress"
                    );
                }
            }
        });
        Progress {
            done,
            _reporter: Arc::new(Reporter { stop }),
        }
    }

    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}
