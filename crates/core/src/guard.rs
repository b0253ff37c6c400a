//! Blast-radius limits: a plan that deletes more than the user allows is refused as a whole.
//!
//! Refusing the whole plan (instead of deleting the first N groups) is deliberate: a plan that big
//! usually means a wrong selector, a wrong TTL or a replica clock far off, and any part of it would be
//! an arbitrary slice of a mistake.

use crate::field::{Door, Field};
use crate::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// At most this many group deletions per run (`--max-deletions`, `spec.maxDeletions.count`).
    pub max_deletions: Option<u64>,
    /// At most this share of the groups seen, in percent.
    pub max_deletions_percent: Option<f64>,
    /// Whose words a tripped guard names its limit in: a trip ends up in a resource's status.
    pub door: Door,
}

impl Limits {
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = self.max_deletions_percent {
            if !(p.is_finite() && p > 0.0 && p <= 100.0) {
                return Err(Error::invalid(
                    Field::MaxDeletionsPercent,
                    format!("{p} is not in (0, 100]"),
                ));
            }
        }
        Ok(())
    }
}

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardTrip {
    /// The flag that refused it: `"max-deletions"` or `"max-deletions-percent"`.
    pub limit: &'static str,
    pub planned: u64,
    pub allowed: u64,
    pub message: String,
}

impl std::fmt::Display for GuardTrip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GuardTrip {}

/// Checks a plan's size against the limits; the absolute limit is checked first.
///
/// `planned` is the number of group deletions in the plan (a wipe counts each group it removes).
/// `groups_seen` is every group on every replica that was read in this run, in or out of the
/// selector, unkeyed ones included; replicas that could not be read add nothing. The percentage is
/// of that total, rounded down, so a tiny store may allow zero deletions: that errs on the safe side.
pub fn check(
    limits: &Limits,
    planned: u64,
    groups_seen: u64,
) -> std::result::Result<(), GuardTrip> {
    if let Some(max) = limits.max_deletions {
        if planned > max {
            return Err(GuardTrip {
                limit: "max-deletions",
                planned,
                allowed: max,
                message: format!(
                    "plan deletes {planned} groups, {} allows {max} ({} over)",
                    limits.door.name(Field::MaxDeletions),
                    planned - max
                ),
            });
        }
    }
    if let Some(pct) = limits.max_deletions_percent {
        let allowed = (groups_seen as f64 * pct / 100.0).floor() as u64;
        if planned > allowed {
            let share = if groups_seen == 0 {
                100.0
            } else {
                planned as f64 * 100.0 / groups_seen as f64
            };
            return Err(GuardTrip {
                limit: "max-deletions-percent",
                planned,
                allowed,
                message: format!(
                    "plan deletes {share:.1}% of {groups_seen} groups seen ({planned}), \
                     {} allows {pct}% ({allowed}); {} over",
                    limits.door.name(Field::MaxDeletionsPercent),
                    planned - allowed
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(max: Option<u64>, pct: Option<f64>) -> Limits {
        Limits {
            max_deletions: max,
            max_deletions_percent: pct,
            door: Door::Flags,
        }
    }

    #[test]
    fn no_limits_allow_everything() {
        assert_eq!(check(&Limits::default(), 1_000_000, 1), Ok(()));
    }

    #[test]
    fn absolute_limit_trips_above_and_says_by_how_much() {
        let l = limits(Some(100), None);
        assert_eq!(check(&l, 100, 1000), Ok(()));
        let trip = check(&l, 150, 1000).unwrap_err();
        assert_eq!(trip.limit, "max-deletions");
        assert_eq!((trip.planned, trip.allowed), (150, 100));
        assert_eq!(
            trip.message,
            "plan deletes 150 groups, --max-deletions allows 100 (50 over)"
        );
    }

    #[test]
    fn percent_limit_trips_above_and_says_by_how_much() {
        let l = limits(None, Some(10.0));
        assert_eq!(check(&l, 50, 500), Ok(()));
        let trip = check(&l, 200, 500).unwrap_err();
        assert_eq!(trip.limit, "max-deletions-percent");
        assert_eq!((trip.planned, trip.allowed), (200, 50));
        assert_eq!(
            trip.message,
            "plan deletes 40.0% of 500 groups seen (200), \
             --max-deletions-percent allows 10% (50); 150 over"
        );
    }

    #[test]
    fn a_trip_in_a_spec_names_the_spec_field_not_a_flag() {
        let mut l = limits(Some(100), None);
        l.door = Door::Spec;
        assert_eq!(
            check(&l, 150, 1000).unwrap_err().message,
            "plan deletes 150 groups, spec.maxDeletions.count allows 100 (50 over)"
        );
        let l = Limits {
            max_deletions_percent: Some(10.0),
            door: Door::Spec,
            ..Limits::default()
        };
        let trip = check(&l, 200, 500).unwrap_err().message;
        assert!(
            trip.contains("spec.maxDeletions.percent allows 10%"),
            "{trip}"
        );
        assert!(!trip.contains("--"), "{trip}");
    }

    #[test]
    fn percent_rounds_allowance_down() {
        let l = limits(None, Some(10.0));
        assert_eq!(check(&l, 0, 9), Ok(()));
        assert_eq!(check(&l, 1, 9).unwrap_err().allowed, 0);
        assert_eq!(check(&l, 1, 10), Ok(()));
    }

    #[test]
    fn absolute_limit_is_reported_first_when_both_trip() {
        let trip = check(&limits(Some(1), Some(1.0)), 50, 100).unwrap_err();
        assert_eq!(trip.limit, "max-deletions");
    }

    #[test]
    fn nothing_seen_nothing_planned_passes() {
        assert_eq!(check(&limits(Some(0), Some(5.0)), 0, 0), Ok(()));
        let trip = check(&limits(None, Some(5.0)), 1, 0).unwrap_err();
        assert!(trip.message.starts_with("plan deletes 100.0% of 0 groups"));
    }

    #[test]
    fn percent_must_be_in_zero_to_hundred() {
        for bad in [0.0, -1.0, 100.5, f64::NAN, f64::INFINITY] {
            let err = limits(None, Some(bad)).validate().unwrap_err();
            assert_eq!(err.field(), Some(Field::MaxDeletionsPercent), "{err}");
        }
        for ok in [0.1, 50.0, 100.0] {
            assert!(limits(Some(0), Some(ok)).validate().is_ok());
        }
    }

    proptest! {
        #[test]
        fn passes_exactly_when_within_both_limits(
            max in proptest::option::of(0u64..1000),
            pct in proptest::option::of(1u32..=100),
            planned in 0u64..2000,
            seen in 0u64..2000,
        ) {
            let l = limits(max, pct.map(f64::from));
            let within_max = max.is_none_or(|m| planned <= m);
            let within_pct = pct.is_none_or(|p| planned * 100 <= seen * u64::from(p));
            prop_assert_eq!(check(&l, planned, seen).is_ok(), within_max && within_pct);
        }
    }
}
