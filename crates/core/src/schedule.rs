//! When a policy is next due: every `interval`, or at the ticks of a cron schedule in a time zone.
//! Pure: the current time comes in as an argument.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::{Error, Result};

/// How often a policy runs.
#[derive(Debug, Clone)]
pub struct Cadence {
    pub interval: Duration,
    /// For scheduled wipes: sweep only at these ticks.
    pub cron: Option<croner::Cron>,
    pub time_zone: TimeZone,
}

/// What to do now about one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    /// Sweep now.
    pub sweep_now: bool,
    /// Look again at this time (the next sweep, or the next check if sooner).
    pub next_check: Timestamp,
    /// For a scheduled policy: the tick after `now`.
    pub next_tick: Option<Timestamp>,
}

impl Cadence {
    /// The first cron tick strictly after `after`.
    pub fn tick_after(&self, after: Timestamp) -> Result<Option<Timestamp>> {
        let Some(cron) = &self.cron else {
            return Ok(None);
        };
        let zoned = after.to_zoned(self.time_zone.clone());
        let next = cron
            .find_next_occurrence(&zoned, false)
            .map_err(|e| Error::config("schedule", format!("no next tick after {after}: {e}")))?;
        Ok(Some(next.timestamp()))
    }

    /// `anchor` is the last sweep's start, or (never swept) when the policy appeared: a new
    /// scheduled wipe waits for its next tick instead of wiping at once, and a new interval policy
    /// sweeps at once. `force` (the spec changed) sweeps an interval policy now.
    pub fn due(
        &self,
        last_sweep: Option<Timestamp>,
        anchor: Timestamp,
        now: Timestamp,
        force: bool,
    ) -> Result<Due> {
        let interval = SignedDuration::try_from(self.interval)
            .map_err(|e| Error::config("interval", e.to_string()))?;
        if self.cron.is_some() {
            let tick = self
                .tick_after(last_sweep.unwrap_or(anchor))?
                .expect("a cron cadence has ticks");
            let sweep_now = tick <= now;
            let next_tick = self.tick_after(now)?.expect("a cron cadence has ticks");
            // Wake at the next tick, or sooner at the interval to refresh status.
            let next_check = next_tick.min(now.saturating_add(interval).unwrap_or(next_tick));
            return Ok(Due {
                sweep_now,
                next_check,
                next_tick: Some(next_tick),
            });
        }
        let sweep_now = force
            || match last_sweep {
                None => true,
                Some(last) => last.saturating_add(interval).map_or(true, |t| t <= now),
            };
        let base = if sweep_now {
            now
        } else {
            last_sweep.unwrap_or(now)
        };
        let next_check = base.saturating_add(interval).unwrap_or(now);
        Ok(Due {
            sweep_now,
            next_check,
            next_tick: None,
        })
    }
}

/// How long from `now` until `at`, never negative.
pub fn until(now: Timestamp, at: Timestamp) -> Duration {
    let d = at.duration_since(now);
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn every(secs: u64) -> Cadence {
        Cadence {
            interval: Duration::from_secs(secs),
            cron: None,
            time_zone: TimeZone::UTC,
        }
    }

    fn nightly(tz: &str) -> Cadence {
        Cadence {
            interval: Duration::from_secs(300),
            cron: Some(croner::Cron::from_str("0 3 * * *").unwrap()),
            time_zone: TimeZone::get(tz).unwrap(),
        }
    }

    #[test]
    fn an_interval_policy_sweeps_at_once_then_every_interval() {
        let c = every(300);
        let now = ts("2026-01-01T00:00:00Z");
        let d = c.due(None, now, now, false).unwrap();
        assert!(d.sweep_now);
        assert_eq!(d.next_check, ts("2026-01-01T00:05:00Z"));
        let later = ts("2026-01-01T00:02:00Z");
        let d = c.due(Some(now), now, later, false).unwrap();
        assert!(!d.sweep_now, "not due before the interval");
        assert_eq!(d.next_check, ts("2026-01-01T00:05:00Z"));
        assert!(
            c.due(Some(now), now, ts("2026-01-01T00:05:00Z"), false)
                .unwrap()
                .sweep_now
        );
    }

    #[test]
    fn a_spec_change_sweeps_an_interval_policy_at_once() {
        let c = every(300);
        let now = ts("2026-01-01T00:01:00Z");
        assert!(
            c.due(Some(ts("2026-01-01T00:00:00Z")), now, now, true)
                .unwrap()
                .sweep_now
        );
    }

    #[test]
    fn a_new_scheduled_wipe_waits_for_its_tick_in_its_time_zone() {
        let c = nightly("Europe/Berlin");
        // 01:00 UTC on a winter day is 02:00 in Berlin: the 03:00 tick is 02:00 UTC.
        let created = ts("2026-01-10T01:00:00Z");
        let d = c.due(None, created, created, false).unwrap();
        assert!(!d.sweep_now);
        assert_eq!(d.next_tick, Some(ts("2026-01-10T02:00:00Z")));
        assert_eq!(
            d.next_check,
            ts("2026-01-10T01:05:00Z"),
            "checks again at the interval"
        );
        let at_tick = ts("2026-01-10T02:00:30Z");
        let d = c.due(None, created, at_tick, false).unwrap();
        assert!(d.sweep_now);
        assert_eq!(d.next_tick, Some(ts("2026-01-11T02:00:00Z")));
        // Swept at the tick: not again until the next one.
        let d = c
            .due(Some(at_tick), created, ts("2026-01-10T02:10:00Z"), false)
            .unwrap();
        assert!(!d.sweep_now);
    }

    #[test]
    fn a_scheduled_wipe_missed_while_down_runs_once_when_back() {
        let c = nightly("UTC");
        let last = ts("2026-01-10T03:00:01Z");
        let back = ts("2026-01-13T12:00:00Z");
        let d = c.due(Some(last), last, back, false).unwrap();
        assert!(d.sweep_now);
        assert_eq!(d.next_tick, Some(ts("2026-01-14T03:00:00Z")));
    }

    #[test]
    fn daylight_saving_is_handled_by_the_time_zone() {
        let c = nightly("Europe/Berlin");
        // The night of 2026-03-29 Berlin moves from UTC+1 to UTC+2: 03:00 local is 01:00 UTC.
        let t = c.tick_after(ts("2026-03-28T12:00:00Z")).unwrap().unwrap();
        assert_eq!(t, ts("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn until_is_never_negative() {
        assert_eq!(
            until(ts("2026-01-01T00:00:10Z"), ts("2026-01-01T00:00:00Z")),
            Duration::ZERO
        );
        assert_eq!(
            until(ts("2026-01-01T00:00:00Z"), ts("2026-01-01T00:00:10Z")),
            Duration::from_secs(10)
        );
    }
}
