//! Time literals and the canonical text form timestamps are compared in.
//!
//! Inside JSON, a timestamp is a string. A filter compares a time literal with a string only
//! when the string is an RFC 3339 UTC timestamp in one of three common shapes — seconds
//! (`2026-01-02T03:04:05Z`), milliseconds as JavaScript writes them
//! (`2026-01-02T03:04:05.678Z`) or microseconds (`2026-01-02T03:04:05.678901Z`) — after
//! padding it to microseconds. Padded strings sort in time order, so every backend compares
//! them as text, exactly as [`canonical_timestamp`] does here.

use jiff::{SignedDuration, Timestamp};

/// A point in time: absolute, or relative to the moment the filter is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeLiteral {
    Absolute(Timestamp),
    /// `now`, `now-7d`, `now+2h`.
    Relative(SignedDuration),
}

impl TimeLiteral {
    pub fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            TimeLiteral::Absolute(t) => t,
            TimeLiteral::Relative(offset) => now.checked_add(offset).unwrap_or(now),
        }
    }

    /// Parses `now`, `now-7d`, `now+90m` (units s, m, h, d, w) or an RFC 3339 timestamp.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(rest) = text.strip_prefix("now") {
            if rest.is_empty() {
                return Some(TimeLiteral::Relative(SignedDuration::ZERO));
            }
            let (sign, rest) = match rest.as_bytes()[0] {
                b'-' => (-1i64, &rest[1..]),
                b'+' => (1, &rest[1..]),
                _ => return None,
            };
            let unit = rest.chars().last()?;
            let amount: i64 = rest[..rest.len() - 1]
                .parse()
                .ok()
                .filter(|n| *n <= 100_000)?;
            let seconds = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return None,
            };
            return Some(TimeLiteral::Relative(SignedDuration::from_secs(
                sign * amount * seconds,
            )));
        }
        text.parse::<Timestamp>().ok().map(TimeLiteral::Absolute)
    }
}

impl std::fmt::Display for TimeLiteral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeLiteral::Absolute(t) => f.write_str(&format_canonical(*t)),
            TimeLiteral::Relative(d) if d.is_zero() => f.write_str("now"),
            TimeLiteral::Relative(d) => {
                let secs = d.as_secs();
                let sign = if secs < 0 { '-' } else { '+' };
                write!(f, "now{sign}{}s", secs.unsigned_abs())
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`: the form profiled writes timestamps in, and the form
/// strings are padded to before they are compared with a time.
pub fn format_canonical(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A string in one of the accepted timestamp shapes, padded to microseconds; `None` for
/// anything else (which then never compares with a time).
pub fn canonical_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let head_ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !head_ok || b[b.len() - 1] != b'Z' {
        return None;
    }
    match b.len() {
        20 => Some(format!("{}.000000Z", &s[..19])),
        24 if b[19] == b'.' && digits(20..23) => Some(format!("{}000Z", &s[..23])),
        27 if b[19] == b'.' && digits(20..26) => Some(s.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_shapes_pad_to_microseconds() {
        assert_eq!(
            canonical_timestamp("2026-01-02T03:04:05Z").as_deref(),
            Some("2026-01-02T03:04:05.000000Z")
        );
        assert_eq!(
            canonical_timestamp("2026-01-02T03:04:05.678Z").as_deref(),
            Some("2026-01-02T03:04:05.678000Z")
        );
        assert_eq!(
            canonical_timestamp("2026-01-02T03:04:05.678901Z").as_deref(),
            Some("2026-01-02T03:04:05.678901Z")
        );
        for other in [
            "2026-01-02",
            "2026-01-02T03:04:05+02:00",
            "2026-01-02T03:04:05.6Z",
            "2026-01-02 03:04:05Z",
            "x",
        ] {
            assert_eq!(canonical_timestamp(other), None, "{other}");
        }
    }

    #[test]
    fn relative_times_count_from_now() {
        let now: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        let week_ago = TimeLiteral::parse("now-7d").unwrap().resolve(now);
        assert_eq!(
            week_ago,
            "2026-11-15T12:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            TimeLiteral::parse("now+90m").unwrap().resolve(now),
            "2026-11-22T13:30:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(TimeLiteral::parse("now").unwrap().resolve(now), now);
        for bad in ["now-", "now-7", "now-7y", "now*2d", "nowx"] {
            assert_eq!(TimeLiteral::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn canonical_form_sorts_in_time_order() {
        let a: Timestamp = "2026-01-02T03:04:05.5Z".parse().unwrap();
        let b: Timestamp = "2026-01-02T03:04:06Z".parse().unwrap();
        assert!(format_canonical(a) < format_canonical(b));
        assert_eq!(format_canonical(b), "2026-01-02T03:04:06.000000Z");
    }
}
