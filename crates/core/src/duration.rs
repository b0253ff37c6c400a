//! Durations as users write them: humantime (`90s`, `1h 30m`, `30min`) and Prometheus (`1h30m`, `7d`,
//! `2w`, `1y`, `500ms`).
//!
//! The two agree on every unit except the year: humantime counts 365.25 days, Prometheus 365. A string
//! in Prometheus form is read with Prometheus meaning, so `1y` means what it means in a Prometheus
//! config; anything else goes to humantime.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use crate::{Error, Result};

/// Prometheus' own duration grammar (`model.ParseDuration`): units in decreasing order, each at most once.
static PROMETHEUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$",
    )
    .expect("static regex")
});

const DAY: u64 = 24 * 60 * 60;
/// Milliseconds per unit, in the order of the capture groups above.
const PROMETHEUS_UNITS_MS: [u64; 7] = [
    365 * DAY * 1000,
    7 * DAY * 1000,
    DAY * 1000,
    3_600_000,
    60_000,
    1000,
    1,
];

/// Parses a duration in humantime or Prometheus form. Zero (`0`, `0s`) is accepted; callers that
/// need a positive duration use [`parse_nonzero_duration`].
pub fn parse_duration(s: &str) -> Result<Duration> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(invalid(s, "empty, expected e.g. 90s, 1h30m, 7d"));
    }
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if let Some(caps) = PROMETHEUS.captures(trimmed) {
        let mut ms: u64 = 0;
        for (i, unit_ms) in PROMETHEUS_UNITS_MS.iter().enumerate() {
            if let Some(m) = caps.get(i + 1) {
                let n: u64 = m
                    .as_str()
                    .parse()
                    .map_err(|_| invalid(s, "number too large"))?;
                ms = n
                    .checked_mul(*unit_ms)
                    .and_then(|v| ms.checked_add(v))
                    .ok_or_else(|| invalid(s, "number too large"))?;
            }
        }
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(trimmed).map_err(|e| invalid(s, &e.to_string()))
}

/// Like [`parse_duration`], but zero is an error: for TTLs, intervals and timeouts.
pub fn parse_nonzero_duration(s: &str) -> Result<Duration> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(invalid(s, "must be greater than zero"));
    }
    Ok(d)
}

/// Formats a duration so that [`parse_duration`] reads it back exactly (`1h 30m`, `500ms`, `0s`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Formats an age or TTL for people: whole seconds, no sub-second noise (`7h 2m 3s`).
/// Negative or non-finite values (a push time ahead of the replica's clock) show as such.
pub fn format_seconds(secs: f64) -> String {
    if !secs.is_finite() {
        return format!("{secs}s");
    }
    let rounded = secs.round();
    if rounded < 0.0 {
        return format!("-{}", format_duration(Duration::from_secs(-rounded as u64)));
    }
    format_duration(Duration::from_secs(rounded as u64))
}

fn invalid(input: &str, why: &str) -> Error {
    Error::config(format!("duration {input:?}"), why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: &str) -> u64 {
        parse_duration(s).unwrap().as_secs()
    }

    #[test]
    fn reads_humantime_forms() {
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("1h 30m"), 5400);
        assert_eq!(secs("30min"), 1800);
        assert_eq!(secs("2 hours"), 7200);
        assert_eq!(secs(" 6h "), 6 * 3600);
    }

    #[test]
    fn reads_prometheus_forms_with_prometheus_units() {
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("7d"), 7 * DAY);
        assert_eq!(secs("2w"), 14 * DAY);
        assert_eq!(secs("1y"), 365 * DAY, "a Prometheus year is 365 days");
        assert_eq!(
            secs("1y2w3d4h5m6s"),
            365 * DAY + 17 * DAY + 4 * 3600 + 5 * 60 + 6
        );
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("1s500ms").unwrap(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn zero_is_accepted_unless_the_caller_forbids_it() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        let err = parse_nonzero_duration("0s").unwrap_err().to_string();
        assert_eq!(err, r#"invalid duration "0s": must be greater than zero"#);
        assert_eq!(
            parse_nonzero_duration("1m").unwrap(),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn empty_input_is_an_error() {
        for s in ["", "   "] {
            let err = parse_duration(s).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid duration {s:?}: empty")),
                "{err}"
            );
        }
    }

    #[test]
    fn unknown_unit_error_echoes_the_input_and_names_the_unit() {
        let err = parse_duration("7x").unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(r#"invalid duration "7x": unknown time unit "x""#),
            "{msg}"
        );
    }

    #[test]
    fn garbage_and_missing_units_are_errors() {
        for s in ["abc", "10", "-5m", "1h-", "h"] {
            assert!(parse_duration(s).is_err(), "{s} should not parse");
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let err = parse_duration("99999999999999999999y")
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large"), "{err}");
        assert!(parse_duration("999999999999y").is_err());
    }

    #[test]
    fn format_seconds_rounds_and_keeps_sign() {
        assert_eq!(format_seconds(25_323.4), "7h 2m 3s");
        assert_eq!(format_seconds(-2.0), "-2s");
        assert_eq!(format_seconds(0.2), "0s");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(ms in 0u64..(200 * 365 * DAY * 1000)) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }
}
