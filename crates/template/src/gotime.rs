//! Go's `time.Time` as templates see it (in UTC): printed as Go prints it, with the
//! methods templates call (`.Format "2006-01-02"`, `.Unix`, `.Year`, ...) and Go's
//! reference-time layouts.

use crate::value::{Object, Value};

/// A point in time, UTC, with nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoTime {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Broken-down civil time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    weekday: usize,
    yday: u32,
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
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

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

impl GoTime {
    /// From Unix milliseconds.
    pub fn from_millis(ms: i64) -> Self {
        Self {
            secs: ms.div_euclid(1000),
            nanos: (ms.rem_euclid(1000) * 1_000_000) as u32,
        }
    }

    /// Go's zero time, `0001-01-01 00:00:00 +0000 UTC`.
    pub fn zero() -> Self {
        Self {
            secs: -62_135_596_800,
            nanos: 0,
        }
    }

    /// Whether this is Go's zero time.
    pub fn is_zero(&self) -> bool {
        *self == Self::zero()
    }

    /// Unix milliseconds.
    pub fn unix_millis(&self) -> i64 {
        self.secs * 1000 + i64::from(self.nanos / 1_000_000)
    }

    fn civil(&self) -> Civil {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let yday = cumulative[month as usize - 1] + day + u32::from(month > 2 && is_leap(year));
        Civil {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod / 60 % 60,
            second: sod % 60,
            weekday: (days + 4).rem_euclid(7) as usize,
            yday,
        }
    }

    /// Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    pub fn go_string(&self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }

    /// Go's `Time.Format` with a reference-time layout (in UTC).
    pub fn format(&self, layout: &str) -> String {
        let c = self.civil();
        let mut out = String::new();
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, chunk, suffix) = next_chunk(rest);
            out.push_str(prefix);
            let Some(chunk) = chunk else { break };
            match chunk {
                Chunk::LongMonth => out.push_str(MONTHS[c.month as usize - 1]),
                Chunk::Month => out.push_str(&MONTHS[c.month as usize - 1][..3]),
                Chunk::NumMonth => out.push_str(&c.month.to_string()),
                Chunk::ZeroMonth => out.push_str(&format!("{:02}", c.month)),
                Chunk::LongWeekDay => out.push_str(DAYS[c.weekday]),
                Chunk::WeekDay => out.push_str(&DAYS[c.weekday][..3]),
                Chunk::Day => out.push_str(&c.day.to_string()),
                Chunk::UnderDay => out.push_str(&format!("{:>2}", c.day)),
                Chunk::ZeroDay => out.push_str(&format!("{:02}", c.day)),
                Chunk::UnderYearDay => out.push_str(&format!("{:>3}", c.yday)),
                Chunk::ZeroYearDay => out.push_str(&format!("{:03}", c.yday)),
                Chunk::Hour => out.push_str(&format!("{:02}", c.hour)),
                Chunk::Hour12 => out.push_str(&(if c.hour.is_multiple_of(12) { 12 } else { c.hour % 12 }).to_string()),
                Chunk::ZeroHour12 => out.push_str(&format!(
                    "{:02}",
                    if c.hour.is_multiple_of(12) { 12 } else { c.hour % 12 }
                )),
                Chunk::Minute => out.push_str(&c.minute.to_string()),
                Chunk::ZeroMinute => out.push_str(&format!("{:02}", c.minute)),
                Chunk::Second => out.push_str(&c.second.to_string()),
                Chunk::ZeroSecond => out.push_str(&format!("{:02}", c.second)),
                Chunk::LongYear => out.push_str(&format!("{:04}", c.year)),
                Chunk::Year => out.push_str(&format!("{:02}", c.year.rem_euclid(100))),
                Chunk::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
                Chunk::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
                Chunk::TzName => out.push_str("UTC"),
                Chunk::Iso8601Tz => out.push('Z'),
                Chunk::NumTz(s) => out.push_str(s),
                Chunk::Frac { sep, digits, trim } => {
                    let s = format!("{:09}", self.nanos);
                    let mut d = s[..digits].to_owned();
                    if trim {
                        while d.ends_with('0') {
                            d.pop();
                        }
                        if !d.is_empty() {
                            out.push(sep);
                            out.push_str(&d);
                        }
                    } else {
                        out.push(sep);
                        out.push_str(&d);
                    }
                }
            }
            rest = suffix;
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TzName,
    /// `Z07:00` and friends: `Z` in UTC.
    Iso8601Tz,
    /// `-0700` and friends: zero offset in UTC.
    NumTz(&'static str),
    Frac {
        sep: char,
        digits: usize,
        trim: bool,
    },
}

fn starts_lower(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

/// Go's `nextStdChunk`: the text before the first layout element, the element, and
/// the rest.
fn next_chunk(layout: &str) -> (&str, Option<Chunk>, &str) {
    let b = layout.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let s = &layout[i..];
        let hit = |len: usize, c: Chunk| -> Option<(usize, Chunk)> { Some((len, c)) };
        let found = match b[i] {
            b'J' if s.starts_with("January") => hit(7, Chunk::LongMonth),
            b'J' if s.starts_with("Jan") => hit(3, Chunk::Month),
            b'M' if s.starts_with("Monday") => hit(6, Chunk::LongWeekDay),
            b'M' if s.starts_with("Mon") && !starts_lower(&s[3..]) => hit(3, Chunk::WeekDay),
            b'M' if s.starts_with("MST") => hit(3, Chunk::TzName),
            b'0' if s.len() >= 2 && (b'1'..=b'6').contains(&b[i + 1]) => match b[i + 1] {
                b'1' => hit(2, Chunk::ZeroMonth),
                b'2' => hit(2, Chunk::ZeroDay),
                b'3' => hit(2, Chunk::ZeroHour12),
                b'4' => hit(2, Chunk::ZeroMinute),
                b'5' => hit(2, Chunk::ZeroSecond),
                _ => hit(2, Chunk::Year),
            },
            b'0' if s.starts_with("002") => hit(3, Chunk::ZeroYearDay),
            b'1' if s.starts_with("15") => hit(2, Chunk::Hour),
            b'1' => hit(1, Chunk::NumMonth),
            b'2' if s.starts_with("2006") => hit(4, Chunk::LongYear),
            b'2' => hit(1, Chunk::Day),
            b'_' if s.starts_with("_2006") => {
                // `_2006` is `_` then a year.
                return (&layout[..i + 1], Some(Chunk::LongYear), &layout[i + 5..]);
            }
            b'_' if s.starts_with("__2") => hit(3, Chunk::UnderYearDay),
            b'_' if s.starts_with("_2") => hit(2, Chunk::UnderDay),
            b'3' => hit(1, Chunk::Hour12),
            b'4' => hit(1, Chunk::Minute),
            b'5' => hit(1, Chunk::Second),
            b'P' if s.starts_with("PM") => hit(2, Chunk::PM),
            b'p' if s.starts_with("pm") => hit(2, Chunk::Pm),
            b'-' => {
                let mut r = None;
                for (pat, out) in [
                    ("-07:00:00", "+00:00:00"),
                    ("-070000", "+000000"),
                    ("-07:00", "+00:00"),
                    ("-0700", "+0000"),
                    ("-07", "+00"),
                ] {
                    if s.starts_with(pat) {
                        r = hit(pat.len(), Chunk::NumTz(out));
                        break;
                    }
                }
                r
            }
            b'Z' => {
                let mut r = None;
                for pat in ["Z07:00:00", "Z070000", "Z07:00", "Z0700", "Z07"] {
                    if s.starts_with(pat) {
                        r = hit(pat.len(), Chunk::Iso8601Tz);
                        break;
                    }
                }
                r
            }
            b'.' | b',' if i + 1 < b.len() && matches!(b[i + 1], b'0' | b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                // Only a fractional second if not followed by another digit.
                if j < b.len() && b[j].is_ascii_digit() {
                    None
                } else {
                    hit(
                        j - i,
                        Chunk::Frac {
                            sep: b[i] as char,
                            digits: (j - i - 1).min(9),
                            trim: ch == b'9',
                        },
                    )
                }
            }
            _ => None,
        };
        if let Some((len, chunk)) = found {
            return (&layout[..i], Some(chunk), &layout[i + len..]);
        }
        i += layout[i..].chars().next().map_or(1, char::len_utf8);
    }
    (layout, None, "")
}

impl Object for GoTime {
    fn type_name(&self) -> &str {
        "*time.Time"
    }

    fn field(&self, name: &str) -> Option<Value> {
        let c = self.civil();
        Some(match name {
            "Unix" => Value::Int(self.secs),
            "UnixMilli" => Value::Int(self.unix_millis()),
            "UnixNano" => Value::Int(self.secs.saturating_mul(1_000_000_000) + i64::from(self.nanos)),
            "Year" => Value::Int(c.year),
            "Month" => Value::from(MONTHS[c.month as usize - 1]),
            "Day" => Value::Int(i64::from(c.day)),
            "Hour" => Value::Int(i64::from(c.hour)),
            "Minute" => Value::Int(i64::from(c.minute)),
            "Second" => Value::Int(i64::from(c.second)),
            "Nanosecond" => Value::Int(i64::from(self.nanos)),
            "YearDay" => Value::Int(i64::from(c.yday)),
            "Weekday" => Value::from(DAYS[c.weekday]),
            "UTC" | "Local" => Value::object(*self),
            "IsZero" => Value::Bool(self.is_zero()),
            "String" => Value::from(self.go_string()),
            _ => return None,
        })
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match name {
            "Format" => Some(match args {
                [Value::String(layout)] => Ok(Value::from(self.format(layout))),
                _ => Err(format!("wrong number of args for Format: want 1 got {}", args.len())),
            }),
            _ => None,
        }
    }

    fn format(&self) -> String {
        self.go_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_go() {
        let t = GoTime {
            secs: 1_435_065_584,
            nanos: 128_000_000,
        };
        assert_eq!(t.go_string(), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(t.format("2006"), "2015");
        assert_eq!(t.format("2006-01-02T15:04:05Z07:00"), "2015-06-23T13:19:44Z");
        assert_eq!(t.format("2006-01-02T15:04:05.000Z07:00"), "2015-06-23T13:19:44.128Z");
        assert_eq!(t.format("Mon Jan _2 15:04:05 MST 2006"), "Tue Jun 23 13:19:44 UTC 2015");
        assert_eq!(t.format("3:04PM"), "1:19PM");
        assert_eq!(t.format("January 2, 2006"), "June 23, 2015");
        assert_eq!(t.format("2006-01-02 15:04:05 MST"), "2015-06-23 13:19:44 UTC");
        assert_eq!(GoTime::from_millis(0).go_string(), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(GoTime::from_millis(-1000).go_string(), "1969-12-31 23:59:59 +0000 UTC");
        assert_eq!(GoTime::zero().go_string(), "0001-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            GoTime::from_millis(9_223_372_036_000).go_string(),
            "2262-04-11 23:47:16 +0000 UTC"
        );
    }
}
