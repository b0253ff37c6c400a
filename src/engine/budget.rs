//! One replica's delete budget, shared by every policy that deletes on it: at most
//! `delete_concurrency` DELETEs in flight and a rate set by [`Pace`] from what the answers look
//! like, never above `delete_rate`.
//!
//! Pacing hands out one slot at a time: the DELETE at the head of the queue waits for its slot
//! alone, the others queue behind it, so a change of the rate applies to the very next slot.
//! (Reserving slots ahead at the rate of the moment made a slow start cost the whole queue's
//! worth of slots at the slowest rate: 64 DELETEs at 1 000/s are 64 ms, each time.)
//!
//! A health check runs before the first DELETE, which waits for it, and then every
//! [`HEALTH_EVERY`] DELETEs or [`HEALTH_INTERVAL`] beside the DELETEs, which do not wait for it;
//! once a check finds the write queue full, every DELETE to the replica waits until it drains.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::pace::{Pace, PaceLimits, Signal};
use crate::gateway::Gateway;
use crate::http::redact_url;
use crate::report::Failure;

/// DELETEs between health checks.
const HEALTH_EVERY: u64 = 200;
/// Time between health checks, however slow the deletes.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);
/// Answers per latency window.
const WINDOW: usize = 16;
/// The timer's granularity.
const TICK: Duration = Duration::from_millis(1);

pub struct Budget {
    slots: Semaphore,
    state: Mutex<State>,
    /// Held while the write queue is full: every DELETE to this replica waits behind it.
    gate: tokio::sync::Mutex<()>,
    /// Held by the DELETE waiting for the next slot of the pace.
    pacer: tokio::sync::Mutex<()>,
    unhealthy_wait: Duration,
}

struct State {
    pace: Pace,
    next_at: Instant,
    window: Vec<Duration>,
    sent: u64,
    last_health: Option<Instant>,
}

enum Check<'a> {
    /// Before the replica's first DELETE, holding the gate: every DELETE waits for the answer.
    First(Option<tokio::sync::MutexGuard<'a, ()>>),
    /// Beside the DELETEs: only one that finds the queue full makes the others wait.
    Beside,
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
            pacer: tokio::sync::Mutex::new(()),
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
    pub async fn acquire(&self, gateway: &Gateway) -> Result<Ticket<'_>, Failure> {
        let slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| Failure::from("delete budget closed"))?;
        let check = {
            let mut s = self.state();
            let check = match s.last_health {
                // The gate is taken before the state is let go, so no DELETE slips past the
                // first check.
                None => Some(Check::First(self.gate.try_lock().ok())),
                Some(t) if s.sent.is_multiple_of(HEALTH_EVERY) || t.elapsed() > HEALTH_INTERVAL => {
                    Some(Check::Beside)
                }
                Some(_) => None,
            };
            if check.is_some() {
                s.last_health = Some(Instant::now());
            }
            s.sent += 1;
            check
        };
        match check {
            Some(Check::First(gate)) => {
                let _gate = match gate {
                    Some(gate) => gate,
                    None => self.gate.lock().await,
                };
                self.wait_healthy(gateway).await?;
            }
            Some(Check::Beside) => {
                if !self.check_healthy(gateway).await? {
                    let _gate = self.gate.lock().await;
                    self.wait_healthy(gateway).await?;
                }
            }
            // Wait behind a health check that found the write queue full.
            None => drop(self.gate.lock().await),
        }
        self.pace_slot().await;
        Ok(Ticket {
            _slot: slot,
            sent: Instant::now(),
        })
    }

    /// Waits for the next slot of the pace. A slot due now is taken at once; one further off is
    /// waited for alone (the rest queue on `pacer`), so each slot is spaced at the rate of the
    /// moment it is taken.
    async fn pace_slot(&self) {
        if self.take_slot(false).is_some() {
            return;
        }
        let _pacer = self.pacer.lock().await;
        if let Some(at) = self.take_slot(true) {
            if at > Instant::now() {
                tokio::time::sleep_until(at).await;
            }
        }
    }

    /// Takes the next slot when it is due now, or whenever it is with `wait`; returns when.
    /// The timer ticks in milliseconds, so a slot less than [`TICK`] away is due now, and the
    /// schedule may lag by [`TICK`] to make up for a wait the timer overslept: the average rate
    /// holds either way.
    fn take_slot(&self, wait: bool) -> Option<Instant> {
        let mut s = self.state();
        let now = Instant::now();
        let at = s.next_at.max(now.checked_sub(TICK).unwrap_or(now));
        if at > now + TICK && !wait {
            return None;
        }
        s.next_at = at + Duration::from_secs_f64(1.0 / s.pace.rate());
        Some(at)
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

    /// One `/-/healthy`: `true` when it answered 200 (its latency feeds the pace), `false` when
    /// the write queue is full (the pace halves).
    async fn check_healthy(&self, gateway: &Gateway) -> Result<bool, Failure> {
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
                Ok(true)
            }
            Ok(false) => {
                let rate = self.state().pace.observe(Signal::Trouble);
                tracing::info!(
                    gateway = %redact_url(gateway.url()),
                    rate,
                    "write queue full: backing off"
                );
                Ok(false)
            }
            Err(e) => Err(Failure::of("health check failed", &e)),
        }
    }

    /// Waits while `/-/healthy` answers 500 (the write queue is full), backing off, for at most
    /// `unhealthy_wait`. Sending more while the queue is full only blocks the gateway's handlers.
    pub async fn wait_healthy(&self, gateway: &Gateway) -> Result<(), Failure> {
        let deadline = Instant::now() + self.unhealthy_wait;
        let mut pause = Duration::from_millis(200);
        loop {
            if self.check_healthy(gateway).await? {
                return Ok(());
            }
            if Instant::now() + pause > deadline {
                return Err(Failure::from(format!(
                    "write queue still full after {:?}",
                    self.unhealthy_wait
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::join_all;

    /// Waiting DELETEs reserve no slots ahead: only the head of the queue holds one, so a rate
    /// that changes applies to every DELETE still waiting. (Slots reserved at the rate of the
    /// moment made a slow start cost a whole queue's worth of slots at the slowest rate.)
    #[tokio::test]
    async fn waiting_deletes_take_their_slots_at_the_rate_of_the_moment() {
        // Ceiling 100/s: the pace starts there, 10 ms a slot.
        let budget = Budget::new(8, 100.0, Duration::from_secs(1));
        let start = budget.state().next_at;
        let mut waiting = Vec::new();
        for _ in 0..8 {
            let mut f = Box::pin(budget.pace_slot());
            if futures::poll!(f.as_mut()).is_pending() {
                waiting.push(f);
            }
        }
        assert_eq!(waiting.len(), 7, "only the first slot was due now");
        // The first slot was due now, the second is waited for; the other six reserve nothing.
        let reserved = budget.state().next_at - start;
        assert!(reserved <= Duration::from_millis(25), "{reserved:?}");

        // The gateway is in trouble: the pace halves to 50/s, 20 ms a slot, for all six.
        budget.state().pace.observe(Signal::Trouble);
        join_all(waiting).await;
        // Two slots at 10 ms, then six at 20 ms at the least (a late timer only adds to it).
        let scheduled = budget.state().next_at - start;
        assert!(scheduled >= Duration::from_millis(135), "{scheduled:?}");
    }

    #[tokio::test]
    async fn a_slot_due_now_is_taken_at_once() {
        let budget = Budget::new(8, 1000.0, Duration::from_secs(1));
        assert!(
            budget.take_slot(false).is_some(),
            "the first slot is due now"
        );
        // 1 000/s: the next slot is 1 ms away, within the timer's tick.
        assert!(budget.take_slot(false).is_some());
        // Now 2 ms away: not due, and asking does not reserve it.
        let next = budget.state().next_at;
        assert!(budget.take_slot(false).is_none());
        assert_eq!(budget.state().next_at, next);
        assert_eq!(budget.take_slot(true), Some(next));
    }
}
