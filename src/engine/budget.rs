//! One replica's delete budget, shared by every policy that deletes on it: at most
//! `delete_concurrency` DELETEs in flight and a rate set by [`Pace`] from what the answers look
//! like, never above `delete_rate`. A health check runs before the first DELETE and then every
//! [`HEALTH_EVERY`] DELETEs or [`HEALTH_INTERVAL`]; while the write queue is full, every DELETE
//! to the replica waits.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::pace::{Pace, PaceLimits, Signal};
use crate::gateway::Gateway;
use crate::http::redact_url;

/// DELETEs between health checks.
const HEALTH_EVERY: u64 = 200;
/// Time between health checks, however slow the deletes.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);
/// Answers per latency window.
const WINDOW: usize = 16;

pub struct Budget {
    slots: Semaphore,
    state: Mutex<State>,
    /// Held while the write queue is full: every DELETE to this replica waits behind it.
    gate: tokio::sync::Mutex<()>,
    unhealthy_wait: Duration,
}

struct State {
    pace: Pace,
    next_at: Instant,
    window: Vec<Duration>,
    sent: u64,
    last_health: Option<Instant>,
}

/// One DELETE's right to be sent now.
pub struct Ticket<'a> {
    _slot: SemaphorePermit<'a>,
    sent: Instant,
}

impl Budget {
    pub fn new(concurrency: usize, ceiling: f64, unhealthy_wait: Duration) -> Self {
        Budget {
            slots: Semaphore::new(concurrency.max(1)),
            state: Mutex::new(State {
                pace: Pace::new(PaceLimits::with_ceiling(ceiling)),
                next_at: Instant::now(),
                window: Vec::with_capacity(WINDOW),
                sent: 0,
                last_health: None,
            }),
            gate: tokio::sync::Mutex::new(()),
            unhealthy_wait,
        }
    }

    /// The pace now, deletes per second.
    pub fn rate(&self) -> f64 {
        self.state().pace.rate()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot, for the gateway to be healthy when a check is due, and for the pace.
    pub async fn acquire(&self, gateway: &Gateway) -> Result<Ticket<'_>, String> {
        let slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| "delete budget closed".to_string())?;
        let check = {
            let mut s = self.state();
            let due = s.sent.is_multiple_of(HEALTH_EVERY)
                || s.last_health.is_none_or(|t| t.elapsed() > HEALTH_INTERVAL);
            if due {
                s.last_health = Some(Instant::now());
            }
            s.sent += 1;
            due
        };
        if check {
            let _gate = self.gate.lock().await;
            self.wait_healthy(gateway).await?;
        } else {
            // Wait behind a health check that found the write queue full.
            drop(self.gate.lock().await);
        }
        let at = {
            let mut s = self.state();
            let at = s.next_at.max(Instant::now());
            s.next_at = at + Duration::from_secs_f64(1.0 / s.pace.rate());
            at
        };
        // The timer ticks in milliseconds: a slot less than one away is taken now (the schedule
        // still advances by one slot, so the average rate holds).
        if at > Instant::now() + Duration::from_millis(1) {
            tokio::time::sleep_until(at).await;
        }
        Ok(Ticket {
            _slot: slot,
            sent: Instant::now(),
        })
    }

    /// Feeds a DELETE's answer back into the pace.
    pub fn answered(&self, ticket: Ticket<'_>, ok: bool) {
        let latency = ticket.sent.elapsed();
        drop(ticket);
        let mut s = self.state();
        if !ok {
            s.window.clear();
            let rate = s.pace.observe(Signal::Trouble);
            tracing::debug!(rate, "delete failed: pace halved");
            return;
        }
        s.window.push(latency);
        if s.window.len() >= WINDOW {
            s.window.sort_unstable();
            let median = s.window[s.window.len() / 2];
            s.window.clear();
            let before = s.pace.rate();
            let rate = s.pace.observe(Signal::Answered { median });
            if rate < before {
                tracing::debug!(rate, ?median, "delete latency rising: pace halved");
            }
        }
    }

    /// Waits while `/-/healthy` answers 500 (the write queue is full), backing off, for at most
    /// `unhealthy_wait`. Sending more while the queue is full only blocks the gateway's handlers.
    pub async fn wait_healthy(&self, gateway: &Gateway) -> Result<(), String> {
        let deadline = Instant::now() + self.unhealthy_wait;
        let mut pause = Duration::from_millis(200);
        loop {
            let started = Instant::now();
            match gateway.healthy().await {
                Ok(true) => {
                    let latency = started.elapsed();
                    let mut s = self.state();
                    let before = s.pace.rate();
                    let rate = s.pace.observe(Signal::Healthy { latency });
                    if rate < before {
                        tracing::debug!(rate, ?latency, "health check slow: pace halved");
                    }
                    return Ok(());
                }
                Ok(false) => {
                    let rate = self.state().pace.observe(Signal::Trouble);
                    tracing::info!(
                        gateway = %redact_url(gateway.url()),
                        rate,
                        "write queue full: backing off"
                    );
                }
                Err(e) => return Err(format!("health check failed: {e}")),
            }
            if Instant::now() + pause > deadline {
                return Err(format!(
                    "write queue still full after {:?}",
                    self.unhealthy_wait
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}
