//! Time intervals (`time_intervals`, `mute_time_intervals`) with Alertmanager 0.25's
//! syntax, validation messages and matching: times of day, weekdays, days of the
//! month (negative from the month's end), months, years, in a named time zone.

use serde::{Deserialize, Serialize};

/// A time interval as written.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalDoc {
    /// `[{start_time: 'HH:MM', end_time: 'HH:MM'}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<Vec<TimeRangeDoc>>,
    /// `monday`, `monday:friday`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekdays: Option<Vec<String>>,
    /// `1`, `1:5`, `-3:-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_of_month: Option<Vec<String>>,
    /// `january`, `january:march`, `1:3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub months: Option<Vec<String>>,
    /// `2020`, `2020:2022`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<Vec<String>>,
    /// IANA time zone; default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// A time-of-day range as written.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeDoc {
    /// `HH:MM`.
    #[serde(default)]
    pub start_time: String,
    /// `HH:MM` (exclusive; `24:00` allowed).
    #[serde(default)]
    pub end_time: String,
}

/// A parsed time interval: a time matches when every field given matches.
#[derive(Debug, Clone)]
pub struct TimeInterval {
    times: Option<Vec<(i32, i32)>>,
    weekdays: Option<Vec<(i32, i32)>>,
    days_of_month: Option<Vec<(i32, i32)>>,
    months: Option<Vec<(i32, i32)>>,
    years: Option<Vec<(i32, i32)>>,
    location: Option<jiff::tz::TimeZone>,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn split_range(s: &str) -> Result<(String, String), String> {
    let lower = s.to_lowercase();
    if lower.contains(':') {
        let parts: Vec<&str> = lower.split(':').collect();
        if parts.len() != 2 {
            return Err(format!("couldn't parse range {s}, invalid format"));
        }
        Ok((parts[0].to_owned(), parts[1].to_owned()))
    } else {
        Ok((lower.clone(), lower))
    }
}

fn atoi(s: &str) -> Result<i32, String> {
    s.parse::<i32>().map_err(|_| {
        format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            sextant_template::gofmt::quote(s)
        )
    })
}

fn minutes(s: &str) -> Result<i32, String> {
    let bad = || format!("couldn't parse timestamp {s}, invalid format");
    if s == "24:00" {
        return Ok(1440);
    }
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || !b.iter().enumerate().all(|(i, c)| i == 2 || c.is_ascii_digit()) {
        return Err(bad());
    }
    let h = i32::from(b[0] - b'0') * 10 + i32::from(b[1] - b'0');
    let m = i32::from(b[3] - b'0') * 10 + i32::from(b[4] - b'0');
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl TimeInterval {
    /// Parses and validates one interval.
    pub fn from_doc(d: &TimeIntervalDoc) -> Result<Self, String> {
        let times = match &d.times {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|t| {
                        if t.start_time.is_empty() || t.end_time.is_empty() {
                            return Err("both start and end times must be provided".to_owned());
                        }
                        let (s, e) = (minutes(&t.start_time)?, minutes(&t.end_time)?);
                        if s == 1440 {
                            return Err(format!("couldn't parse timestamp {}, invalid format", t.start_time));
                        }
                        if s >= e {
                            return Err("start time cannot be equal or greater than end time".into());
                        }
                        Ok((s, e))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let weekdays = match &d.weekdays {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|w| {
                        let (a, b) = split_range(w)?;
                        let day = |n: &str| {
                            WEEKDAYS
                                .iter()
                                .position(|d| *d == n)
                                .map(|i| i as i32)
                                .ok_or_else(|| format!("{n} is not a valid weekday"))
                        };
                        let (a, b) = (day(&a)?, day(&b)?);
                        if a > b {
                            return Err("start day cannot be before end day".to_owned());
                        }
                        Ok((a, b))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let days_of_month = match &d.days_of_month {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|s| {
                        let (a, b) = split_range(s)?;
                        let (a, b) = (atoi(&a)?, atoi(&b)?);
                        for v in [a, b] {
                            if v == 0 || !(-31..=31).contains(&v) {
                                return Err(format!("{v} is not a valid day of the month: out of range"));
                            }
                        }
                        if a < 0 && b > 0 {
                            return Err("end day must be negative if start day is negative".to_owned());
                        }
                        let ca = if a < 0 { 28 + a } else { a };
                        let cb = if b < 0 { 28 + b } else { b };
                        if ca > cb {
                            return Err(format!("end day {b} is always before start day {a}"));
                        }
                        Ok((a, b))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let months = match &d.months {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|s| {
                        let (a, b) = split_range(s)?;
                        let month = |n: &str| -> Result<i32, String> {
                            if let Some(i) = MONTHS.iter().position(|m| *m == n) {
                                return Ok(i as i32 + 1);
                            }
                            n.parse::<i32>().map_err(|_| format!("{n} is not a valid month"))
                        };
                        let (ma, mb) = (month(&a)?, month(&b)?);
                        if ma > mb {
                            return Err(format!("end month {b} is before start month {a}"));
                        }
                        Ok((ma, mb))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let years = match &d.years {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|s| {
                        let (a, b) = split_range(s)?;
                        let (a, b) = (atoi(&a)?, atoi(&b)?);
                        if a > b {
                            return Err(format!("end year {b} is before start year {a}"));
                        }
                        Ok((a, b))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let location = match d.location.as_deref() {
            None => None,
            Some("Local") => Some(jiff::tz::TimeZone::system()),
            Some(name) => Some(jiff::tz::TimeZone::get(name).map_err(|_| format!("unknown time zone {name}"))?),
        };
        Ok(Self {
            times,
            weekdays,
            days_of_month,
            months,
            years,
            location,
        })
    }

    /// Whether the time (epoch ms) falls in this interval.
    pub fn contains(&self, t_ms: i64) -> bool {
        let ts = jiff::Timestamp::from_millisecond(t_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let zoned = ts.to_zoned(self.location.clone().unwrap_or(jiff::tz::TimeZone::UTC));
        let dt = zoned.datetime();
        let within = |ranges: &Option<Vec<(i32, i32)>>, v: i32| {
            ranges
                .as_ref()
                .is_none_or(|r| r.iter().any(|(a, b)| v >= *a && v <= *b))
        };
        if let Some(times) = &self.times {
            let m = i32::from(dt.hour()) * 60 + i32::from(dt.minute());
            if !times.iter().any(|(s, e)| m >= *s && m < *e) {
                return false;
            }
        }
        if let Some(days) = &self.days_of_month {
            let len = i32::from(dt.date().days_in_month());
            let day = i32::from(dt.day());
            let hit = days.iter().any(|(a, b)| {
                let begin = if *a < 0 { len + a + 1 } else { *a };
                let end = if *b < 0 { len + b + 1 } else { *b };
                if begin > len {
                    return false;
                }
                let (begin, end) = (begin.clamp(-len, len), end.clamp(-len, len));
                day >= begin && day <= end
            });
            if !hit {
                return false;
            }
        }
        within(&self.months, i32::from(dt.month()))
            && within(&self.weekdays, dt.weekday().to_sunday_zero_offset().into())
            && within(&self.years, i32::from(dt.year()))
    }
}

/// Whether any interval of a named list contains the time.
pub fn any_contains(intervals: &[TimeInterval], t_ms: i64) -> bool {
    intervals.iter().any(|i| i.contains(t_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 822 with a numeric zone (`02 Jan 06 15:04 -0700`) to epoch ms.
    fn t(s: &str) -> i64 {
        let p: Vec<&str> = s.split_whitespace().collect();
        let month = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .iter()
        .position(|m| *m == p[1])
        .unwrap() as i8
            + 1;
        let (h, m) = p[3].split_once(':').unwrap();
        let zone: i32 = p[4][1..3].parse::<i32>().unwrap() * 3600 + p[4][3..5].parse::<i32>().unwrap() * 60;
        let zone = if p[4].starts_with('-') { -zone } else { zone };
        let dt = jiff::civil::datetime(
            2000 + p[2].parse::<i16>().unwrap(),
            month,
            p[0].parse().unwrap(),
            h.parse().unwrap(),
            m.parse().unwrap(),
            0,
            0,
        );
        dt.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_seconds(zone).unwrap()))
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    fn ti(yaml: &str) -> TimeInterval {
        TimeInterval::from_doc(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    fn err(yaml: &str) -> String {
        TimeInterval::from_doc(&serde_yaml::from_str(yaml).unwrap()).unwrap_err()
    }

    /// `timeinterval/timeinterval_test.go`.
    #[test]
    fn contains_as_alertmanager() {
        let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
            (
                "{}",
                vec![
                    "02 Jan 06 15:04 +0000",
                    "03 Jan 07 10:04 +0000",
                    "04 Jan 06 09:04 +0000",
                ],
                vec![],
            ),
            (
                "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday:friday']}",
                vec![
                    "04 May 20 15:04 +0000",
                    "05 May 20 10:04 +0000",
                    "09 Jun 20 09:04 +0000",
                ],
                vec![
                    "03 May 20 15:04 +0000",
                    "04 May 20 08:59 +0000",
                    "05 May 20 05:00 +0000",
                ],
            ),
            (
                "{days_of_month: ['4:6'], months: ['april'], years: ['2020']}",
                vec![
                    "04 Apr 20 15:04 +0000",
                    "05 Apr 20 00:00 +0000",
                    "06 Apr 20 23:05 +0000",
                ],
                vec![
                    "03 May 18 15:04 +0000",
                    "03 Apr 20 23:59 +0000",
                    "04 Jun 20 23:59 +0000",
                    "06 Apr 19 23:59 +0000",
                    "07 Apr 20 00:00 +0000",
                ],
            ),
            (
                "{days_of_month: ['-3:-1']}",
                vec![
                    "31 Jan 20 15:04 +0000",
                    "30 Jan 20 15:04 +0000",
                    "29 Jan 20 15:04 +0000",
                    "30 Jun 20 00:00 +0000",
                    "29 Feb 20 23:05 +0000",
                ],
                vec![
                    "03 May 18 15:04 +0000",
                    "27 Jan 20 15:04 +0000",
                    "03 Apr 20 23:59 +0000",
                    "04 Jun 20 23:59 +0000",
                    "06 Apr 19 23:59 +0000",
                    "07 Apr 20 00:00 +0000",
                    "01 Mar 20 00:00 +0000",
                ],
            ),
            (
                "{months: ['6'], days_of_month: ['1:31']}",
                vec!["30 Jun 20 00:00 +0000", "01 Jun 20 00:00 +0000"],
                vec!["31 May 20 00:00 +0000"],
            ),
            (
                "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday:friday'], location: 'Australia/Sydney'}",
                vec!["06 Apr 21 13:00 +1000"],
                vec!["06 Apr 21 13:00 +0000"],
            ),
            (
                "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday:friday'], months: ['11'], location: 'Australia/Sydney'}",
                vec!["01 Nov 21 09:00 +1100", "31 Oct 21 22:00 +0000"],
                vec!["31 Oct 21 21:00 +0000"],
            ),
            (
                "{weekdays: ['monday:wednesday', 'saturday', 'sunday'], times: [{start_time: '13:00', end_time: '15:00'}], days_of_month: ['1', '10', '20:-1'], years: ['2020:2023'], months: ['january:march']}",
                vec!["10 Jan 21 13:00 +0000", "30 Jan 21 14:24 +0000"],
                vec![
                    "09 Jan 21 13:00 +0000",
                    "20 Jan 21 12:59 +0000",
                    "02 Feb 21 13:00 +0000",
                ],
            ),
            (
                "{days_of_month: ['30:31'], years: ['2020:2023'], months: ['february']}",
                vec![],
                vec!["28 Feb 21 13:00 +0000"],
            ),
        ];
        for (yaml, yes, no) in cases {
            let i = ti(yaml);
            for s in yes {
                assert!(i.contains(t(s)), "{yaml} should contain {s}");
            }
            for s in no {
                assert!(!i.contains(t(s)), "{yaml} should not contain {s}");
            }
        }
    }

    #[test]
    fn validation_messages() {
        for (yaml, want) in [
            (
                "{times: [{start_time: '01:99', end_time: '02:00'}]}",
                "couldn't parse timestamp 01:99, invalid format",
            ),
            (
                "{times: [{start_time: '99:99', end_time: '02:00'}]}",
                "couldn't parse timestamp 99:99, invalid format",
            ),
            (
                "{times: [{start_time: '10:00', end_time: '10:00'}]}",
                "start time cannot be equal or greater than end time",
            ),
            (
                "{times: [{start_time: '10:00'}]}",
                "both start and end times must be provided",
            ),
            (
                "{times: [{start_time: '10:00', end_time: '24:01'}]}",
                "couldn't parse timestamp 24:01, invalid format",
            ),
            ("{weekdays: ['friday:monday']}", "start day cannot be before end day"),
            (
                "{weekdays: ['blurgsday:flurgsday']}",
                "blurgsday is not a valid weekday",
            ),
            ("{weekdays: ['1:3']}", "1 is not a valid weekday"),
            ("{weekdays: ['-2:-1']}", "-2 is not a valid weekday"),
            (
                "{days_of_month: ['0']}",
                "0 is not a valid day of the month: out of range",
            ),
            (
                "{days_of_month: ['-50:-20']}",
                "-50 is not a valid day of the month: out of range",
            ),
            (
                "{days_of_month: ['1:50']}",
                "50 is not a valid day of the month: out of range",
            ),
            (
                "{days_of_month: ['-15:5']}",
                "end day must be negative if start day is negative",
            ),
            (
                "{days_of_month: ['10:-25']}",
                "end day -25 is always before start day 10",
            ),
            ("{months: ['martius:june']}", "martius is not a valid month"),
            ("{months: ['march:junius']}", "junius is not a valid month"),
            (
                "{months: ['december:january']}",
                "end month january is before start month december",
            ),
            ("{years: ['2022:2020']}", "end year 2020 is before start year 2022"),
            ("{weekdays: ['a:b:c']}", "couldn't parse range a:b:c, invalid format"),
        ] {
            assert_eq!(err(yaml), want, "{yaml}");
        }
        ti(
            "{days_of_month: ['1:-1'], months: ['January:december'], years: ['2020:2022'], location: 'Australia/Sydney'}",
        );
    }
}
