//! When a Lease holder must stop acting, as pure arithmetic on (last renewal, duration, now).
//!
//! The Lease manager renews on its own and says nothing while it is still the holder, so a
//! leader whose renewals hang or fail would go on believing it leads. Other replicas take over
//! once `renewTime + duration` has passed on *their* clocks; the holder therefore stops a margin
//! earlier on its own clock (linkerd's `is_current_for`), whatever the manager believes.

use std::time::Duration;

use jiff::Timestamp;

/// The timing of one Lease duration: when the manager renews, when the holder stops acting
/// without a renewal, and how often the holder reads its Lease to learn of renewals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// `leaseDurationSeconds`: how long a renewal holds for the other replicas.
    pub duration: Duration,
    /// Whole seconds before expiry at which the manager renews (its `grace`).
    pub grace_secs: u64,
    /// How long before expiry the holder stops acting: room for clock skew between replicas and
    /// for a DELETE already on the wire.
    pub margin: Duration,
    /// How often the holder reads its Lease once a renewal is due.
    pub poll: Duration,
}

impl LeaseTiming {
    /// Renew halfway (rounded earlier), stop acting at three quarters without a renewal, read the Lease every
    /// tenth once a renewal is due: a renewal that goes through is seen well before the margin.
    pub fn of(duration: Duration) -> Result<LeaseTiming, &'static str> {
        let secs = duration.as_secs();
        if secs < 2 {
            return Err("must be at least 2s");
        }
        Ok(LeaseTiming {
            duration: Duration::from_secs(secs),
            grace_secs: secs.div_ceil(2),
            margin: Duration::from_secs(secs) / 4,
            poll: (Duration::from_secs(secs) / 10).max(Duration::from_millis(200)),
        })
    }

    /// How long after a renewal the manager renews again.
    pub fn renew_after(&self) -> Duration {
        self.duration
            .saturating_sub(Duration::from_secs(self.grace_secs))
    }

    /// The last moment a holder last renewed at `last_renew` may act.
    pub fn acts_until(&self, last_renew: Timestamp) -> Timestamp {
        acts_until(last_renew, self.duration, self.margin)
    }

    /// When to read the Lease next: once the renewal after `last_renew` is due (plus one poll,
    /// for it to land), then every poll until it is seen.
    pub fn next_poll(&self, last_renew: Option<Timestamp>, now: Timestamp) -> Timestamp {
        let due = last_renew.map_or(now, |r| add(r, self.renew_after()).max(now));
        add(due, self.poll)
    }
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// The last moment a holder whose last successful renewal (or acquisition) was at `last_renew`
/// may act: `margin` before the Lease expires.
pub fn acts_until(last_renew: Timestamp, duration: Duration, margin: Duration) -> Timestamp {
    add(last_renew, duration.saturating_sub(margin))
}

/// Whether a holder last renewed at `last_renew` may still act at `now`. `None`: never renewed,
/// or the Lease is someone else's.
pub fn is_current_for(
    last_renew: Option<Timestamp>,
    duration: Duration,
    margin: Duration,
    now: Timestamp,
) -> bool {
    last_renew.is_some_and(|r| now < acts_until(r, duration, margin))
}

/// How long from `now` until `t`; zero when `t` has passed.
pub fn until(now: Timestamp, t: Timestamp) -> Duration {
    Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64) -> Timestamp {
        Timestamp::from_millisecond((1_700_000_000_000.0 + secs * 1000.0) as i64).unwrap()
    }

    const D: Duration = Duration::from_secs(15);
    const M: Duration = Duration::from_secs(3);

    #[test]
    fn a_holder_acts_until_the_margin_before_expiry_and_not_after() {
        assert!(is_current_for(Some(at(0.0)), D, M, at(0.0)));
        assert!(is_current_for(Some(at(0.0)), D, M, at(11.999)));
        assert!(!is_current_for(Some(at(0.0)), D, M, at(12.0)));
        assert!(!is_current_for(Some(at(0.0)), D, M, at(15.0)));
        assert!(!is_current_for(Some(at(0.0)), D, M, at(3600.0)));
    }

    #[test]
    fn a_holder_that_never_renewed_does_not_act() {
        assert!(!is_current_for(None, D, M, at(0.0)));
    }

    #[test]
    fn a_later_renewal_moves_the_end_and_an_earlier_now_still_acts() {
        assert!(is_current_for(Some(at(10.0)), D, M, at(21.0)));
        // A renewal stamped after now (a clock step back): acting, for at most the duration.
        assert!(is_current_for(Some(at(5.0)), D, M, at(0.0)));
        assert_eq!(acts_until(at(5.0), D, M), at(17.0));
    }

    #[test]
    fn a_margin_longer_than_the_lease_never_acts() {
        assert!(!is_current_for(Some(at(0.0)), D, D * 2, at(0.0)));
    }

    #[test]
    fn timing_renews_halfway_and_stops_at_three_quarters() {
        let t = LeaseTiming::of(Duration::from_secs(15)).unwrap();
        assert_eq!(t.grace_secs, 8);
        assert_eq!(t.renew_after(), Duration::from_secs(7));
        assert_eq!(t.acts_until(at(0.0)), at(11.25));
        assert_eq!(t.poll, Duration::from_millis(1500));
        let t = LeaseTiming::of(Duration::from_millis(2900)).unwrap();
        assert_eq!((t.duration, t.grace_secs), (Duration::from_secs(2), 1));
        assert_eq!(
            LeaseTiming::of(Duration::from_millis(1999)),
            Err("must be at least 2s")
        );
    }

    #[test]
    fn every_renewal_is_due_and_polled_before_the_holder_must_stop() {
        for secs in 2..=300 {
            let t = LeaseTiming::of(Duration::from_secs(secs)).unwrap();
            let first_poll = t.next_poll(Some(at(0.0)), at(0.0));
            // The renewal is sent, and read back one poll later, before acting must end; the
            // room left is what a slow API server may take.
            assert!(first_poll < t.acts_until(at(0.0)), "{secs}s: {t:?}");
            assert!(t.margin > Duration::ZERO, "{secs}s");
        }
    }

    #[test]
    fn polls_wait_for_the_renewal_then_repeat() {
        let t = LeaseTiming::of(Duration::from_secs(10)).unwrap();
        assert_eq!(t.next_poll(Some(at(0.0)), at(1.0)), at(6.0));
        assert_eq!(t.next_poll(Some(at(0.0)), at(7.0)), at(8.0));
        assert_eq!(t.next_poll(None, at(3.0)), at(4.0));
    }

    #[test]
    fn until_is_zero_once_passed() {
        assert_eq!(until(at(0.0), at(1.5)), Duration::from_millis(1500));
        assert_eq!(until(at(2.0), at(1.5)), Duration::ZERO);
    }
}
