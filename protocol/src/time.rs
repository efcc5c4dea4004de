//! UTC timestamps in the one format the contract uses.
//!
//! Envelopes carry `2026-02-07T08:34:22.123456+00:00`: microseconds and an
//! explicit `+00:00` suffix, as Python's `datetime.isoformat()` writes them.
//! A whole date library would cost start-up time and compile time for two
//! small functions, so the civil-calendar conversion is done here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, formatted for an envelope: `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
pub fn now_utc() -> String {
    format_micros(unix_micros(SystemTime::now()))
}

/// Microseconds since the Unix epoch (0 for times before it).
pub fn unix_micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Formats microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
pub fn format_micros(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}+00:00",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Parses an ISO 8601 date-time with an offset (`Z` or `±HH:MM`) and optional
/// fraction into microseconds since the epoch. Returns `None` when the text
/// is not of that form. Accepts what the Python CLI and the SaaS fixtures
/// write (`2026-02-12T10:00:00+00:00`, `2026-01-15T10:00:00Z`).
pub fn parse_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_us: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        let mut padded = digits.chars().take(6).collect::<String>();
        while padded.len() < 6 {
            padded.push('0');
        }
        frac_us = padded.parse().ok()?;
    }
    let offset_secs = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            if rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_secs;
    Some(secs * 1_000_000 + frac_us)
}

// Howard Hinnant's algorithms (public domain), proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instant_with_micros_and_offset() {
        // 2026-02-07T08:34:22.123456Z
        let us = 1_770_453_262_123_456;
        assert_eq!(format_micros(us), "2026-02-07T08:34:22.123456+00:00");
    }

    #[test]
    fn epoch_and_leap_day() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000+00:00");
        let leap = parse_micros("2024-02-29T23:59:59.999999+00:00").unwrap();
        assert_eq!(format_micros(leap), "2024-02-29T23:59:59.999999+00:00");
    }

    #[test]
    fn parses_the_forms_the_fixtures_use() {
        assert_eq!(
            parse_micros("2026-02-12T10:00:00+00:00"),
            parse_micros("2026-02-12T10:00:00Z")
        );
        assert_eq!(
            parse_micros("2026-02-12T12:00:00+02:00"),
            parse_micros("2026-02-12T10:00:00Z")
        );
        assert_eq!(
            parse_micros("2026-02-12T10:00:00.5Z").unwrap()
                - parse_micros("2026-02-12T10:00:00Z").unwrap(),
            500_000
        );
        assert_eq!(parse_micros("2026-02-12"), None);
        assert_eq!(parse_micros("2026-13-12T10:00:00Z"), None);
        assert_eq!(parse_micros("2026-02-12T10:00:00+0000"), None);
    }

    #[test]
    fn now_has_exact_shape() {
        let s = now_utc();
        assert_eq!(s.len(), 32, "{s}");
        assert!(s.ends_with("+00:00"));
        assert_eq!(&s[19..20], ".");
        assert!(parse_micros(&s).is_some());
    }
}
