//! Time stamps as docker writes and prints them, without a date library.
//!
//! Owns: RFC 3339 with nanoseconds in UTC, in the two shapes docker uses — Go's `RFC3339Nano`
//! (trailing zeros of the fraction trimmed, no fraction at all on a whole second; the json-file
//! log's `"time"` field) and `RFC3339NanoFixed` (always nine digits; `docker logs -t`) — and
//! parsing any RFC 3339 time back to nanoseconds since the epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, as (seconds, nanoseconds) since the Unix epoch.
pub fn now() -> (i64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// Nanoseconds since the epoch of a `SystemTime` (negative before 1970).
pub fn system_time_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

/// The `SystemTime` of nanoseconds since the epoch.
pub fn nanos_system_time(n: i64) -> SystemTime {
    if n >= 0 {
        UNIX_EPOCH + Duration::from_nanos(n as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(n.unsigned_abs())
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn push2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10 % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// Appends `YYYY-MM-DDTHH:MM:SS` (UTC).
fn push_seconds(out: &mut Vec<u8>, secs: i64) {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let y = y.clamp(0, 9999) as u32;
    push2(out, y / 100);
    push2(out, y % 100);
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
    out.push(b'T');
    push2(out, sod / 3600);
    out.push(b':');
    push2(out, sod % 3600 / 60);
    out.push(b':');
    push2(out, sod % 60);
}

fn push_nanos9(out: &mut Vec<u8>, nanos: u32) {
    let mut digits = [0u8; 9];
    let mut n = nanos;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Appends Go's `RFC3339Nano` in UTC: `2023-11-14T22:13:20.5Z`, `2023-11-14T22:13:20Z`.
pub fn push_rfc3339_nano(out: &mut Vec<u8>, secs: i64, nanos: u32) {
    push_seconds(out, secs);
    if nanos != 0 {
        out.push(b'.');
        let at = out.len();
        push_nanos9(out, nanos);
        while out.len() > at && out.last() == Some(&b'0') {
            out.pop();
        }
    }
    out.push(b'Z');
}

/// Appends docker's `RFC3339NanoFixed` in UTC: always nine fraction digits.
pub fn push_rfc3339_nano_fixed(out: &mut Vec<u8>, secs: i64, nanos: u32) {
    push_seconds(out, secs);
    out.push(b'.');
    push_nanos9(out, nanos);
    out.push(b'Z');
}

/// `RFC3339Nano` (trimmed) as a String.
pub fn rfc3339_nano(secs: i64, nanos: u32) -> String {
    let mut v = Vec::with_capacity(32);
    push_rfc3339_nano(&mut v, secs, nanos);
    String::from_utf8(v).unwrap_or_default()
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let mut v = 0u32;
    for &c in part {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Parses an RFC 3339 time (`2023-11-14T22:13:20.123Z`, `…+02:00`, any number of fraction
/// digits) to nanoseconds since the epoch. `None` when it is not one.
pub fn parse_rfc3339_nanos(s: &[u8]) -> Option<i64> {
    let y = digits(s, 0, 4)?;
    if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') {
        return None;
    }
    let mo = digits(s, 5, 2)?;
    let d = digits(s, 8, 2)?;
    if !matches!(s.get(10), Some(b'T') | Some(b't') | Some(b' ')) {
        return None;
    }
    let h = digits(s, 11, 2)?;
    if s.get(13) != Some(&b':') || s.get(16) != Some(&b':') {
        return None;
    }
    let mi = digits(s, 14, 2)?;
    let sec = digits(s, 17, 2)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 100_000_000u32;
        let begin = i;
        while let Some(c) = s.get(i).filter(|c| c.is_ascii_digit()) {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == begin {
            return None;
        }
    }
    let offset: i64 = match s.get(i) {
        Some(b'Z') | Some(b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(s, i + 1, 2)?;
            if s.get(i + 3) != Some(&b':') {
                return None;
            }
            let om = digits(s, i + 4, 2)?;
            i += 6;
            let o = i64::from(oh * 3600 + om * 60);
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    if i != s.len() {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset;
    secs.checked_mul(1_000_000_000)?
        .checked_add(i64::from(nanos))
}

/// Formats the current second once and reuses it: the writer stamps every chunk it reads.
#[derive(Debug, Default)]
pub struct Stamp {
    sec: i64,
    prefix: Vec<u8>,
    /// The last formatted time (RFC3339Nano).
    pub text: Vec<u8>,
}

impl Stamp {
    /// Formats "now" into `self.text` and returns it.
    pub fn now(&mut self) -> &[u8] {
        let (secs, nanos) = now();
        self.set(secs, nanos)
    }

    /// Formats the given time into `self.text` and returns it.
    pub fn set(&mut self, secs: i64, nanos: u32) -> &[u8] {
        if self.prefix.is_empty() || secs != self.sec {
            self.prefix.clear();
            push_seconds(&mut self.prefix, secs);
            self.sec = secs;
        }
        self.text.clear();
        self.text.extend_from_slice(&self.prefix);
        if nanos != 0 {
            self.text.push(b'.');
            let at = self.text.len();
            push_nanos9(&mut self.text, nanos);
            while self.text.len() > at && self.text.last() == Some(&b'0') {
                self.text.pop();
            }
        }
        self.text.push(b'Z');
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(
            s(|v| push_rfc3339_nano(v, 1_700_000_000, 0)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            s(|v| push_rfc3339_nano(v, 1_700_000_000, 500_000_000)),
            "2023-11-14T22:13:20.5Z"
        );
        assert_eq!(
            s(|v| push_rfc3339_nano(v, 1_700_000_000, 123_456_789)),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            s(|v| push_rfc3339_nano_fixed(v, 0, 5_000)),
            "1970-01-01T00:00:00.000005000Z"
        );
        let mut st = Stamp::default();
        assert_eq!(st.set(1_700_000_000, 10), b"2023-11-14T22:13:20.00000001Z");
        assert_eq!(st.set(1_700_000_001, 0), b"2023-11-14T22:13:21Z");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for (secs, nanos) in [(0i64, 0u32), (1_700_000_000, 1), (951_782_400, 999_999_999)] {
            let t = rfc3339_nano(secs, nanos);
            assert_eq!(
                parse_rfc3339_nanos(t.as_bytes()),
                Some(secs * 1_000_000_000 + i64::from(nanos)),
                "{t}"
            );
        }
        assert_eq!(
            parse_rfc3339_nanos(b"2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(parse_rfc3339_nanos(b"2023-11-14T22:13:20"), None);
        assert_eq!(parse_rfc3339_nanos(b"garbage"), None);
    }
}
