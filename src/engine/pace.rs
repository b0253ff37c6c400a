//! How fast to delete on one replica: a pure rate controller, fed with what the gateway's answers
//! looked like. Additive-increase, multiplicative-decrease between a floor and the configured
//! ceiling, with a slow start: the rate doubles while DELETE latency stays flat and the gateway
//! stays healthy, and halves at once on an error, a full write queue or rising latency.
//!
//! No clock and no IO here: the budget (`budget.rs`) measures, this decides.

use std::time::Duration;

/// The bounds and the start of the pacing, deletes per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceLimits {
    pub floor: f64,
    pub ceiling: f64,
}

impl PaceLimits {
    /// The floor is what a gateway in trouble still gets: low enough to let it recover, high
    /// enough that a sweep still ends.
    pub fn with_ceiling(ceiling: f64) -> Self {
        PaceLimits {
            floor: ceiling.min(10.0),
            ceiling,
        }
    }
}

/// What one window of DELETEs saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// Every DELETE answered; the window's median latency.
    Answered { median: Duration },
    /// A DELETE failed (a 5xx, a timeout), or `/-/healthy` said the write queue is full.
    Trouble,
    /// `/-/healthy` answered 200, in this long.
    Healthy { latency: Duration },
}

/// The controller's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Pace {
    limits: PaceLimits,
    rate: f64,
    /// Still doubling: no trouble seen yet.
    slow_start: bool,
    /// The lowest window median seen: the gateway's latency when not pressed.
    base_latency: Option<Duration>,
    base_health: Option<Duration>,
    /// Windows in a row whose latency was rising: one alone is noise (a busy scheduler, a
    /// garbage collection in the gateway), [`RISING_WINDOWS`] in a row is a gateway falling behind.
    rising_windows: u32,
}

/// Where the slow start begins, deletes per second: five times the fixed rate of old, which
/// no gateway had trouble with.
const START: f64 = 1000.0;
/// Latency this much above the base, plus [`SLACK`], counts as rising.
const RISE: f64 = 3.0;
/// Loopback latencies are tens of microseconds: without an absolute slack, scheduler noise reads
/// as congestion.
const SLACK: Duration = Duration::from_millis(5);
/// Rising windows in a row before the pace falls.
const RISING_WINDOWS: u32 = 2;

impl Pace {
    /// Starts at [`START`] (the slow start finds the gateway's pace within a few windows).
    pub fn new(limits: PaceLimits) -> Self {
        Pace {
            limits,
            rate: START.clamp(limits.floor, limits.ceiling),
            slow_start: true,
            base_latency: None,
            base_health: None,
            rising_windows: 0,
        }
    }

    /// Deletes per second now.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn limits(&self) -> PaceLimits {
        self.limits
    }

    /// Takes one signal in and returns the new rate.
    pub fn observe(&mut self, signal: Signal) -> f64 {
        match signal {
            Signal::Trouble => self.back_off(),
            Signal::Answered { median } => {
                let base = *self.base_latency.get_or_insert(median);
                if rising(median, base) {
                    self.rising_windows += 1;
                    if self.rising_windows >= RISING_WINDOWS {
                        self.back_off();
                    }
                } else {
                    self.rising_windows = 0;
                    self.base_latency = Some(base.min(median));
                    self.speed_up();
                }
            }
            Signal::Healthy { latency } => {
                let base = *self.base_health.get_or_insert(latency);
                if rising(latency, base) {
                    self.back_off();
                } else {
                    self.base_health = Some(base.min(latency));
                }
            }
        }
        self.rate
    }

    fn back_off(&mut self) {
        self.slow_start = false;
        self.rising_windows = 0;
        self.rate = (self.rate / 2.0).max(self.limits.floor);
    }

    fn speed_up(&mut self) {
        let next = if self.slow_start {
            self.rate * 2.0
        } else {
            // Back up by a twentieth of the ceiling (or a fifth of the rate) per calm window.
            self.rate + (self.limits.ceiling / 20.0).max(self.rate / 5.0)
        };
        self.rate = next.clamp(self.limits.floor, self.limits.ceiling);
    }
}

fn rising(latency: Duration, base: Duration) -> bool {
    latency > base.mul_f64(RISE) + SLACK
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    fn pace(ceiling: f64) -> Pace {
        Pace::new(PaceLimits::with_ceiling(ceiling))
    }

    #[test]
    fn flat_latency_doubles_the_rate_up_to_the_ceiling() {
        let mut p = pace(5000.0);
        let start = p.rate();
        assert_eq!(p.observe(Signal::Answered { median: MS }), start * 2.0);
        for _ in 0..20 {
            p.observe(Signal::Answered { median: MS });
        }
        assert_eq!(p.rate(), 5000.0);
    }

    #[test]
    fn trouble_halves_at_once_and_ends_the_slow_start() {
        let mut p = pace(5000.0);
        for _ in 0..5 {
            p.observe(Signal::Answered { median: MS });
        }
        let before = p.rate();
        assert_eq!(p.observe(Signal::Trouble), before / 2.0);
        // After trouble the rate climbs back additively, not by doubling.
        let after = p.observe(Signal::Answered { median: MS });
        assert!(
            after < before,
            "{after} climbed back by doubling from {}",
            before / 2.0
        );
        assert!(after > before / 2.0);
    }

    #[test]
    fn delete_latency_rising_two_windows_in_a_row_backs_off_and_one_alone_does_not() {
        let mut p = pace(5000.0);
        p.observe(Signal::Answered { median: MS });
        let before = p.rate();
        assert_eq!(p.observe(Signal::Answered { median: 20 * MS }), before);
        assert_eq!(
            p.observe(Signal::Answered { median: 20 * MS }),
            before / 2.0
        );
        // A calm window between two slow ones resets the count.
        let mut p = pace(5000.0);
        p.observe(Signal::Answered { median: MS });
        p.observe(Signal::Answered { median: 20 * MS });
        let calm = p.observe(Signal::Answered { median: MS });
        assert_eq!(p.observe(Signal::Answered { median: 20 * MS }), calm);
    }

    #[test]
    fn a_slow_health_check_backs_off_and_a_quick_one_does_not() {
        let mut p = pace(5000.0);
        p.observe(Signal::Healthy { latency: MS });
        let before = p.rate();
        assert_eq!(p.observe(Signal::Healthy { latency: MS }), before);
        assert_eq!(
            p.observe(Signal::Healthy { latency: 50 * MS }),
            before / 2.0
        );
    }

    #[test]
    fn scheduler_noise_on_loopback_is_not_congestion() {
        let mut p = pace(5000.0);
        p.observe(Signal::Answered {
            median: Duration::from_micros(50),
        });
        let before = p.rate();
        let after = p.observe(Signal::Answered {
            median: Duration::from_micros(4000),
        });
        assert!(after > before);
    }

    fn signal() -> impl Strategy<Value = Signal> {
        prop_oneof![
            Just(Signal::Trouble),
            (0u64..100_000).prop_map(|us| Signal::Answered {
                median: Duration::from_micros(us)
            }),
            (0u64..100_000).prop_map(|us| Signal::Healthy {
                latency: Duration::from_micros(us)
            }),
        ]
    }

    proptest! {
        #[test]
        fn the_rate_stays_between_floor_and_ceiling(
            ceiling in 1.0f64..100_000.0,
            signals in proptest::collection::vec(signal(), 0..200),
        ) {
            let mut p = pace(ceiling);
            let limits = p.limits();
            for s in signals {
                let r = p.observe(s);
                prop_assert!(r >= limits.floor && r <= limits.ceiling, "{r} outside {limits:?}");
            }
        }

        #[test]
        fn trouble_never_raises_the_rate(
            signals in proptest::collection::vec(signal(), 0..100),
        ) {
            let mut p = pace(5000.0);
            for s in signals {
                p.observe(s);
            }
            let before = p.rate();
            prop_assert!(p.observe(Signal::Trouble) <= before);
        }
    }
}
