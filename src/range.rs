//! Threshold ranges in the Monitoring Plugins syntax (development guidelines,
//! "Threshold and ranges"), for a value measured in seconds.
//!
//! | text | alert when the value is |
//! |---|---|
//! | `3600:` or `3600` | below 3600 |
//! | `~:600` | above 600 |
//! | `10:20` | outside 10..=20 |
//! | `@10:20` | inside 10..=20 |
//!
//! Every number may also be a duration (`1h:`, `90m`). A plain number means
//! `N:` here: for a time-left metric "alert when less is left" is the only
//! useful reading (the guidelines' `0:N` would alert on plenty of time left).

use std::fmt;

/// A threshold range; `None` ends are infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Lower end (inclusive), or minus infinity.
    pub start: Option<i64>,
    /// Upper end (inclusive), or infinity.
    pub end: Option<i64>,
    /// `@`: alert inside the range instead of outside it.
    pub inside: bool,
}

impl Range {
    /// Alert below `secs`: the range `secs:`.
    pub fn at_least(secs: i64) -> Self {
        Range {
            start: Some(secs),
            end: None,
            inside: false,
        }
    }

    /// Alert above `secs` (or below 0): the range `0:secs`.
    pub fn at_most(secs: i64) -> Self {
        Range {
            start: Some(0),
            end: Some(secs),
            inside: false,
        }
    }

    /// Whether `value` raises the alert.
    pub fn alerts(&self, value: i64) -> bool {
        let within = self.start.is_none_or(|s| value >= s) && self.end.is_none_or(|e| value <= e);
        within == self.inside
    }

    /// The lower bound when the range is only that (`N:`), for ordering checks.
    pub fn lower_bound_only(&self) -> Option<i64> {
        match (self.start, self.end, self.inside) {
            (Some(s), None, false) => Some(s),
            _ => None,
        }
    }

    /// Parses a range (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid threshold '{text}': {why} (use e.g. 3600:, 1h, ~:600, 10:20 or @10:20)"
            )
        };
        let t = text.trim();
        let (inside, body) = match t.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        if body.is_empty() {
            return Err(bad("it is empty"));
        }
        let (start, end) = match body.split_once(':') {
            None => (Some(point(body).map_err(|e| bad(&e))?), None),
            Some((s, e)) => {
                let start = match s {
                    "~" => None,
                    "" => Some(0),
                    s => Some(point(s).map_err(|e| bad(&e))?),
                };
                let end = match e {
                    "" => None,
                    e => Some(point(e).map_err(|e| bad(&e))?),
                };
                (start, end)
            }
        };
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(bad("its start is above its end"));
        }
        Ok(Range { start, end, inside })
    }
}

impl std::str::FromStr for Range {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Range::parse(s)
    }
}

/// One end of a range: whole seconds (may be negative) or a duration.
fn point(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let d = crate::duration::parse_duration(s)?;
    i64::try_from(d.as_secs()).map_err(|_| format!("'{s}' is too large"))
}

impl fmt::Display for Range {
    /// The canonical form used in performance data: `3600:`, `~:600`, `0:600`, `@10:20`
    /// (never a bare number, whose meaning differs between the command line and perfdata).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        match (self.start, self.end) {
            (Some(s), Some(e)) => write!(f, "{s}:{e}"),
            (Some(s), None) => write!(f, "{s}:"),
            (None, Some(e)) => write!(f, "~:{e}"),
            (None, None) => f.write_str("~:"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_and_alert_table() {
        // (text, canonical form, values that alert, values that do not)
        let cases: [(&str, &str, &[i64], &[i64]); 10] = [
            ("3600:", "3600:", &[3599, 0, -5], &[3600, 3601, 100_000]),
            ("3600", "3600:", &[3599], &[3600, 9999]),
            ("1h", "3600:", &[3599], &[3600]),
            ("1h:", "3600:", &[3599], &[3600]),
            ("~:600", "~:600", &[601], &[600, 0, -10]),
            ("10:20", "10:20", &[9, 21], &[10, 15, 20]),
            ("@10:20", "@10:20", &[10, 15, 20], &[9, 21]),
            (":600", "0:600", &[601, -1], &[0, 600]),
            ("30m:2h", "1800:7200", &[1799, 7201], &[1800, 7200]),
            ("-60:", "-60:", &[-61], &[-60, 0]),
        ];
        for (text, canonical, alert, quiet) in cases {
            let r = Range::parse(text).unwrap();
            assert_eq!(r.to_string(), canonical, "{text}");
            assert_eq!(Range::parse(canonical).unwrap().to_string(), canonical);
            for v in alert {
                assert!(r.alerts(*v), "{text} should alert at {v}");
            }
            for v in quiet {
                assert!(!r.alerts(*v), "{text} should not alert at {v}");
            }
        }
    }

    #[test]
    fn bad_ranges() {
        for text in ["", "@", "soon", "20:10", "1h:soon", "x:"] {
            let err = Range::parse(text).unwrap_err();
            assert!(err.starts_with("invalid threshold"), "{text}: {err}");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(Range::at_least(5).to_string(), "5:");
        assert_eq!(Range::at_most(600).to_string(), "0:600");
        assert_eq!(Range::at_least(5).lower_bound_only(), Some(5));
        assert_eq!(Range::at_most(5).lower_bound_only(), None);
    }
}
