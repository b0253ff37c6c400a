//! Progress of long work (many deletes, a big replica's read), so the engine knows nothing of
//! terminals:
//! - every [`log_interval`] while the work goes on, one INFO `tracing` event on the target
//!   [`TARGET`]: `task`, `done`, `total`, `rate` per second, `eta_seconds` (when the total is
//!   known);
//! - every [`TICK`], a typed [`Tick`] to the [`Watcher`] installed with [`watch`], if any: the
//!   progress bars on a terminal (see `telemetry`).
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

/// Where the ticks of every task go.
static WATCHER: OnceLock<Box<dyn Watcher>> = OnceLock::new();

/// Where a task stands, every [`TICK`] and once more when it ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick<'a> {
    /// `delete`, `read http://pgw-0:9091/`: one bar per task.
    pub task: &'a str,
    pub done: u64,
    /// `None` when the total is not known.
    pub total: Option<u64>,
    /// What `done` counts: `groups`, `bytes`.
    pub unit: &'static str,
    /// The last tick of the task.
    pub finished: bool,
}

/// Follows every task's ticks (a terminal's progress bars).
pub trait Watcher: Send + Sync {
    fn tick(&self, tick: Tick<'_>);
}

/// Installs the one watcher of this process; the first call wins.
pub fn watch(watcher: impl Watcher + 'static) {
    let _ = WATCHER.set(Box::new(watcher));
}

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
                if let Some(watcher) = WATCHER.get() {
                    let task = &task;
                    watcher.tick(Tick {
                        task,
                        done,
                        total,
                        unit,
                        finished,
                    });
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends the ticks of one task on, so the test reads them typed.
    struct Recorder {
        task: &'static str,
        ticks: std::sync::Mutex<tokio::sync::mpsc::UnboundedSender<(u64, Option<u64>, bool)>>,
    }

    impl Watcher for Recorder {
        fn tick(&self, tick: Tick<'_>) {
            // Other tests' tasks may tick through the one watcher of the process too.
            if tick.task == self.task {
                assert_eq!(tick.unit, "groups");
                let ticks = self.ticks.lock().unwrap();
                let _ = ticks.send((tick.done, tick.total, tick.finished));
            }
        }
    }

    #[tokio::test]
    async fn the_watcher_gets_every_task_typed_and_its_last_tick_finished() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = "progress-tests-delete";
        watch(Recorder {
            task,
            ticks: std::sync::Mutex::new(tx),
        });
        let progress = Progress::start(task.into(), Some(5), "groups");
        progress.add(2);
        progress.add(1);
        drop(progress);
        let mut last = None;
        let wait = Duration::from_secs(10);
        while let Ok(Some(tick)) = tokio::time::timeout(wait, rx.recv()).await {
            last = Some(tick);
            if tick.2 {
                break;
            }
        }
        assert_eq!(last, Some((3, Some(5), true)));
    }
}
