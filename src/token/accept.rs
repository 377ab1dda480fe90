//! Whether a bearer token from Vault may be kept or handed out: one pure
//! decision of the new token's claims, the `exp` of the token in place, the
//! current time and `--minsecs`, shared by `get`, the credmon and `store`.

use super::{Claims, format_remaining, format_utc};

/// The latest time a claim may name: 9999-12-31T23:59:59Z.
pub const MAX_EPOCH: i64 = 253_402_300_799;
/// A token must have more than this many seconds left to be handed out.
pub const SAFETY_MARGIN: i64 = 60;
/// `iat` or `nbf` further than this from local time means a clock is off.
pub const MAX_SKEW: i64 = 300;

/// What to do with a token Vault handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write the new token; with a warning to show once when it has less than
    /// `--minsecs` left.
    Replace(Option<String>),
    /// Keep the token in place: it is valid and lives longer than the new one.
    KeepCurrent(String),
    /// The new token is unusable; nothing may be written.
    Reject(Rejection),
}

/// Why a token is unusable, with what its `iat`/`nbf` say about the clocks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}{}", skew.as_ref().map(|s| format!("; {s}")).unwrap_or_default())]
pub struct Rejection {
    /// What is wrong.
    pub problem: Problem,
    /// A clock that is visibly off, when the claims show one.
    pub skew: Option<Skew>,
}

/// What makes a token unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// No `exp` claim (or one that is not a number).
    #[error("it has no exp claim")]
    NoExp,
    /// A time claim before 1970 or after the year 9999.
    #[error("its {claim} claim ({value}) is out of range")]
    OutOfRange {
        /// `exp`, `iat` or `nbf`.
        claim: &'static str,
        /// The value.
        value: i64,
    },
    /// Already expired.
    #[error("it expired {} ago (exp {})", format_remaining(*ago), format_utc(*exp))]
    Expired {
        /// The `exp` claim.
        exp: i64,
        /// Seconds since it expired.
        ago: i64,
    },
    /// Expires within [`SAFETY_MARGIN`].
    #[error("it expires in {}, within the {SAFETY_MARGIN} s safety margin", format_remaining(*left))]
    AlmostExpired {
        /// Seconds left.
        left: i64,
    },
    /// `nbf` lies in the future.
    #[error("it is not valid before {} ({} from now)", format_utc(*nbf), format_remaining(*wait))]
    NotYetValid {
        /// The `nbf` claim.
        nbf: i64,
        /// Seconds until then.
        wait: i64,
    },
}

/// A clock difference shown by `iat` or `nbf`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "its {claim} is {} in the {}, so the issuer's clock (or this host's) is probably off by about that much: check NTP on both",
    format_remaining(offset.saturating_abs()),
    if *offset < 0 { "past" } else { "future" }
)]
pub struct Skew {
    /// `iat` or `nbf`.
    pub claim: &'static str,
    /// Claim minus local time, in seconds.
    pub offset: i64,
}

/// A time claim checked for range: `Ok(None)` when absent.
fn claim_in_range(claim: &'static str, value: Option<i64>) -> Result<Option<i64>, Problem> {
    match value {
        Some(v) if !(0..=MAX_EPOCH).contains(&v) => Err(Problem::OutOfRange { claim, value: v }),
        other => Ok(other),
    }
}

/// The clock difference `iat`/`nbf` reveal, when larger than [`MAX_SKEW`].
///
/// `nbf` in the future, `iat` in the future, or — for a token that is
/// already expired — an `iat` far enough in the past to explain it.
fn skew_of(claims: &Claims, now: i64, expired: bool) -> Option<Skew> {
    let off = |claim: &'static str, v: Option<i64>| {
        let v = claim_in_range(claim, v).ok().flatten()?;
        let offset = v.checked_sub(now)?;
        (offset > MAX_SKEW || (expired && offset < -MAX_SKEW)).then_some(Skew { claim, offset })
    };
    off("nbf", claims.nbf).or_else(|| off("iat", claims.iat))
}

/// Checks one token on its own: a usable `exp` more than [`SAFETY_MARGIN`]
/// ahead of `now`, in-range `iat`/`nbf`, and no `nbf` in the future.
/// Returns the seconds left.
pub fn usable(claims: &Claims, now: i64) -> Result<i64, Rejection> {
    let plain = |problem| Rejection {
        problem,
        skew: None,
    };
    let exp = claim_in_range("exp", claims.exp)
        .map_err(plain)?
        .ok_or(plain(Problem::NoExp))?;
    claim_in_range("iat", claims.iat).map_err(plain)?;
    let nbf = claim_in_range("nbf", claims.nbf).map_err(plain)?;
    // Both in [0, MAX_EPOCH] or `now` is absurd: checked either way.
    let left = exp.checked_sub(now).ok_or(plain(Problem::OutOfRange {
        claim: "exp",
        value: exp,
    }))?;
    if left <= 0 {
        return Err(Rejection {
            problem: Problem::Expired {
                exp,
                ago: left.saturating_neg(),
            },
            skew: skew_of(claims, now, true),
        });
    }
    if left <= SAFETY_MARGIN {
        return Err(Rejection {
            problem: Problem::AlmostExpired { left },
            skew: skew_of(claims, now, true),
        });
    }
    if let Some(nbf) = nbf
        && let Some(wait) = nbf.checked_sub(now)
        && wait > MAX_SKEW
    {
        return Err(Rejection {
            problem: Problem::NotYetValid { nbf, wait },
            skew: skew_of(claims, now, false),
        });
    }
    Ok(left)
}

/// Decides whether `new` may replace the token in place (whose `exp` is
/// `current_exp`, `None` when there is none or it is unreadable).
///
/// Never an unusable token; never one that expires sooner than a usable
/// token in place; a warning when the best token has `minsecs` or less left.
pub fn decide(new: &Claims, current_exp: Option<i64>, now: i64, minsecs: u64) -> Decision {
    let left = match usable(new, now) {
        Ok(left) => left,
        Err(r) => return Decision::Reject(r),
    };
    let current_left = current_exp
        .filter(|e| (0..=MAX_EPOCH).contains(e))
        .and_then(|e| e.checked_sub(now))
        .filter(|l| *l > SAFETY_MARGIN);
    if let Some(cur) = current_left
        && cur > left
    {
        return Decision::KeepCurrent(format!(
            "Vault's new token expires in {}, sooner than the one in place ({}); keeping the one in place",
            format_remaining(left),
            format_remaining(cur)
        ));
    }
    let min = i64::try_from(minsecs).unwrap_or(i64::MAX);
    if left <= min {
        let skew = skew_of(new, now, false)
            .map(|s| format!("{s}"))
            .unwrap_or_else(|| {
                "the issuer's tokens live shorter than that (use a smaller --minsecs), or its clock is off".into()
            });
        return Decision::Replace(Some(format!(
            "the newest token has only {} left, not over --minsecs {minsecs}: {skew}",
            format_remaining(left)
        )));
    }
    Decision::Replace(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `(exp, iat, nbf, Ok(left) or the start of the problem)`.
    type UsableCase = (
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Result<i64, &'static str>,
    );

    fn claims(exp: Option<i64>, iat: Option<i64>, nbf: Option<i64>) -> Claims {
        Claims {
            exp,
            iat,
            nbf,
            ..Claims::default()
        }
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn usable_table() {
        // (exp, iat, nbf, Ok(left) or the problem's first words)
        let cases: &[UsableCase] = &[
            (Some(NOW + 3600), Some(NOW), Some(NOW), Ok(3600)),
            (Some(NOW + 61), None, None, Ok(61)),
            (Some(NOW + 60), None, None, Err("it expires in 1m00s")),
            (Some(NOW), None, None, Err("it expired 0s ago")),
            (Some(NOW - 3600), None, None, Err("it expired 1h00m ago")),
            (None, Some(NOW), None, Err("it has no exp")),
            (Some(MAX_EPOCH + 1), None, None, Err("its exp claim")),
            (Some(i64::MAX), None, None, Err("its exp claim")),
            (Some(i64::MIN), None, None, Err("its exp claim")),
            (Some(-1), None, None, Err("its exp claim")),
            (Some(NOW + 3600), Some(i64::MAX), None, Err("its iat claim")),
            (Some(NOW + 3600), None, Some(i64::MIN), Err("its nbf claim")),
            (
                Some(NOW + 7200),
                None,
                Some(NOW + 3600),
                Err("it is not valid"),
            ),
            (Some(NOW + 7200), None, Some(NOW + 200), Ok(7200)),
            (Some(MAX_EPOCH), None, None, Ok(MAX_EPOCH - NOW)),
        ];
        for (exp, iat, nbf, want) in cases {
            let got = usable(&claims(*exp, *iat, *nbf), NOW).map_err(|r| r.to_string());
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g),
                (Err(w), Err(g)) => assert!(g.starts_with(w), "{g} vs {w}"),
                _ => panic!("{exp:?} {iat:?} {nbf:?}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn skew_is_named() {
        // Issuer 4 h behind, 3 h tokens: expired an hour ago, iat 4 h in the past.
        let r = usable(&claims(Some(NOW - 3600), Some(NOW - 14400), None), NOW).unwrap_err();
        assert_eq!(
            r.skew,
            Some(Skew {
                claim: "iat",
                offset: -14400
            })
        );
        assert!(r.to_string().contains("clock"), "{r}");
        // Issuer ahead: nbf in the future.
        let r = usable(
            &claims(Some(NOW + 18000), Some(NOW + 7200), Some(NOW + 7200)),
            NOW,
        )
        .unwrap_err();
        assert_eq!(r.skew.map(|s| s.claim), Some("nbf"));
        // A small difference is not a skew.
        let r = usable(&claims(Some(NOW - 10), Some(NOW - 100), None), NOW).unwrap_err();
        assert_eq!(r.skew, None);
    }

    #[test]
    fn decide_table() {
        let c = |exp: i64| claims(Some(exp), Some(NOW), None);
        // (new exp, current exp, minsecs, expected kind)
        let cases: &[(i64, Option<i64>, u64, &str)] = &[
            (NOW + 10800, None, 3600, "replace"),
            (NOW + 10800, Some(NOW + 100), 3600, "replace"),
            (NOW + 10800, Some(NOW - 100), 3600, "replace"),
            (NOW + 10800, Some(i64::MIN), 3600, "replace"),
            (NOW + 10800, Some(i64::MAX), 3600, "replace"),
            (NOW + 1800, None, 3600, "warn"),
            (NOW + 1800, Some(NOW + 600), 3600, "warn"),
            (NOW + 1800, Some(NOW + 3000), 3600, "keep"),
            (NOW + 1800, Some(NOW + 1800), 3600, "warn"),
            (NOW - 1, Some(NOW + 3000), 3600, "reject"),
            (NOW - 1, None, 0, "reject"),
            (NOW + 30, None, 0, "reject"),
            (MAX_EPOCH + 1, None, 0, "reject"),
        ];
        for (new, cur, min, want) in cases {
            let got = match decide(&c(*new), *cur, NOW, *min) {
                Decision::Replace(None) => "replace",
                Decision::Replace(Some(_)) => "warn",
                Decision::KeepCurrent(_) => "keep",
                Decision::Reject(_) => "reject",
            };
            assert_eq!(got, *want, "new={new} cur={cur:?} min={min}");
        }
    }

    #[test]
    fn extreme_now_never_panics() {
        for now in [i64::MIN, -1, 0, MAX_EPOCH, i64::MAX] {
            for exp in [i64::MIN, -1, 0, 1, MAX_EPOCH, i64::MAX] {
                let _ = decide(
                    &claims(Some(exp), Some(exp), Some(exp)),
                    Some(exp),
                    now,
                    u64::MAX,
                );
            }
        }
    }
}
