//! Durations on the command line and in htgettoken options: `3600`, `30m`,
//! `24h`, `7d`, `1h30m`, range-checked when they are parsed, so a huge value
//! is a usage error (exit 2) instead of an overflow later.

use std::time::Duration;

/// The longest duration any option accepts: ten years.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86400);
/// The longest Vault token lifetime we ask for or compare with: 400 days.
pub const MAX_TTL: Duration = Duration::from_secs(400 * 86400);
/// The longest `--retry-time`: one day.
pub const MAX_RETRY_TIME: Duration = Duration::from_secs(86400);
/// The longest `--request-timeout`: one hour.
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest wait for a browser login (`--oidc-timeout`): one day.
pub const MAX_OIDC_TIMEOUT: Duration = Duration::from_secs(86400);
/// The largest number of seconds a `--minsecs` option accepts (ten years).
pub const MAX_SECONDS: u64 = MAX_DURATION.as_secs();

/// Parses `3600`, `3600s`, `30m`, `24h`, `7d` or humantime forms like `1h30m`,
/// up to [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_within(s, Duration::ZERO, MAX_DURATION)
}

/// A Vault token lifetime (`--vaulttokenttl`, `--vaulttokenminttl`, `--restore-before`).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    parse_within(s, Duration::ZERO, MAX_TTL)
}

/// `--retry-time`: how long transient failures are retried.
pub fn parse_retry_time(s: &str) -> Result<Duration, String> {
    parse_within(s, Duration::ZERO, MAX_RETRY_TIME)
}

/// `--request-timeout`: the time allowed for one request (at least 1 ms).
pub fn parse_request_timeout(s: &str) -> Result<Duration, String> {
    parse_within(s, Duration::from_millis(1), MAX_REQUEST_TIMEOUT)
}

/// `--oidc-timeout`: the wait for a browser login (at least one second).
pub fn parse_oidc_timeout(s: &str) -> Result<Duration, String> {
    parse_within(s, Duration::from_secs(1), MAX_OIDC_TIMEOUT)
}

/// Parses a duration and checks that `min <= d <= max`.
pub fn parse_within(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_any(s)?;
    if d < min || d > max {
        return Err(format!(
            "duration '{}' is out of range (use {} to {})",
            s.trim(),
            show(min),
            show(max)
        ));
    }
    Ok(d)
}

/// Parses without a range check (humantime itself refuses overflowing values).
fn parse_any(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
        return Err(format!(
            "duration '{t}' is out of range (use at most {})",
            show(MAX_DURATION)
        ));
    }
    humantime::parse_duration(t)
        .map_err(|_| format!("invalid duration '{t}' (use seconds, or e.g. 30m, 24h, 7d)"))
}

/// A short human form of a limit: `0s`, `1ms`, `1h`, `400d`.
fn show(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 if d.subsec_millis() > 0 => format!("{}ms", d.subsec_millis()),
        s if s >= 86400 && s % 86400 == 0 => format!("{}d", s / 86400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        for (s, secs) in [
            ("3600", 3600),
            ("24h", 86400),
            ("7d", 604800),
            ("30m", 1800),
            ("10s", 10),
            ("1h30m", 5400),
            (" 5m ", 300),
        ] {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_secs(secs), "{s}");
        }
        assert_eq!(
            parse_retry_time("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn range_table() {
        type Parser = fn(&str) -> Result<Duration, String>;
        // (parser, value, accepted)
        let cases: &[(Parser, &str, bool)] = &[
            (parse_retry_time, "1d", true),
            (parse_retry_time, "0", true),
            (parse_retry_time, "86401", false),
            (parse_retry_time, "99999999999999999999", false),
            (parse_retry_time, "500000000000000000000000000d", false),
            (parse_request_timeout, "0", false),
            (parse_request_timeout, "1h", true),
            (parse_request_timeout, "2h", false),
            (parse_ttl, "400d", true),
            (parse_ttl, "401d", false),
            (parse_oidc_timeout, "0s", false),
            (parse_oidc_timeout, "10m", true),
            (parse_duration, "3650d", true),
            (parse_duration, "3651d", false),
            (parse_duration, "18446744073709551615", false),
        ];
        for (parse, value, ok) in cases {
            let got = parse(value);
            assert_eq!(got.is_ok(), *ok, "{value}: {got:?}");
            if let Err(e) = got {
                assert!(e.contains(value.trim()), "{e}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// No input panics, and whatever is accepted lies within the limits.
        #[test]
        fn never_panics_and_stays_in_range(s in "\\PC{0,40}") {
            for (parse, max) in [
                (parse_duration as fn(&str) -> Result<Duration, String>, MAX_DURATION),
                (parse_ttl, MAX_TTL),
                (parse_retry_time, MAX_RETRY_TIME),
                (parse_request_timeout, MAX_REQUEST_TIMEOUT),
                (parse_oidc_timeout, MAX_OIDC_TIMEOUT),
            ] {
                if let Ok(d) = parse(&s) {
                    prop_assert!(d <= max);
                }
            }
        }

        /// Numbers and unit forms: accepted exactly when within range.
        #[test]
        fn numbers_with_units(n in any::<u64>(), unit in prop::sample::select(vec!["", "s", "m", "h", "d", "ms"])) {
            let s = format!("{n}{unit}");
            let scale: u128 = match unit { "m" => 60_000, "h" => 3_600_000, "d" => 86_400_000, "ms" => 1, _ => 1000 };
            let millis = u128::from(n) * scale;
            let ok = millis <= MAX_RETRY_TIME.as_millis();
            prop_assert_eq!(parse_retry_time(&s).is_ok(), ok, "{}", s);
            if ok {
                prop_assert_eq!(parse_retry_time(&s).unwrap().as_millis(), millis);
            }
        }
    }
}
