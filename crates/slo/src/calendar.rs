//! Calendar periods (months and weeks) in a named time zone, with a bundled time-zone
//! database: bundled DuckDB has none, and a host's may be missing or old.
//!
//! Periods repeat from an anchor (OpenSLO's `calendar.startTime`, a civil date-time in
//! the zone): without one, months start on the 1st at midnight and weeks on Monday at
//! midnight. Month arithmetic is done from the anchor each time, so an anchor on the
//! 31st gives periods starting on the last day of shorter months, never drifting.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

use crate::model::CalendarUnit;

/// Monday 2024-01-01 00:00: the first of a month and of an ISO week.
const DEFAULT_ANCHOR: DateTime = jiff::civil::date(2024, 1, 1).at(0, 0, 0, 0);

/// Checks that `name` is an IANA time zone this build knows.
pub fn check_time_zone(name: &str) -> Result<(), String> {
    zone(name).map(drop)
}

/// Parses a calendar anchor (`2022-01-01 12:00:00` or `2022-01-01T12:00:00`).
pub fn parse_anchor(text: &str) -> Result<DateTime, String> {
    text.trim()
        .replacen(' ', "T", 1)
        .parse::<DateTime>()
        .map_err(|e| format!("invalid calendar start time {text:?}: {e}"))
}

fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|e| format!("unknown time zone {name:?}: {e}"))
}

/// A calendar period definition, resolved.
#[derive(Debug, Clone)]
pub struct Calendar {
    unit: CalendarUnit,
    anchor: Zoned,
}

impl Calendar {
    /// Months or weeks in `time_zone`, from `anchor` (see the module docs).
    pub fn new(unit: CalendarUnit, time_zone: &str, anchor: Option<&str>) -> Result<Self, String> {
        let tz = zone(time_zone)?;
        let civil = match anchor {
            Some(a) => parse_anchor(a)?,
            None => DEFAULT_ANCHOR,
        };
        let anchor = civil.to_zoned(tz).map_err(|e| e.to_string())?;
        Ok(Self { unit, anchor })
    }

    fn nth(&self, k: i64) -> Result<Zoned, String> {
        let span = match self.unit {
            CalendarUnit::Month => Span::new().try_months(k),
            CalendarUnit::Week => Span::new().try_weeks(k),
        }
        .map_err(|e| e.to_string())?;
        self.anchor.checked_add(span).map_err(|e| e.to_string())
    }

    /// The period containing `at_ms`: its start and end (exclusive), epoch ms.
    pub fn period_at(&self, at_ms: i64) -> Result<(i64, i64), String> {
        let at = Timestamp::from_millisecond(at_ms)
            .map_err(|e| e.to_string())?
            .to_zoned(self.anchor.time_zone().clone());
        // An estimate of how many periods lie between the anchor and `at`, corrected
        // by stepping (DST and month lengths make it off by at most one).
        let mut k = match self.unit {
            CalendarUnit::Month => {
                i64::from(at.year() - self.anchor.year()) * 12 + i64::from(at.month() - self.anchor.month())
            }
            CalendarUnit::Week => (at_ms - self.anchor.timestamp().as_millisecond()).div_euclid(7 * 86_400_000),
        };
        let ms = |z: &Zoned| z.timestamp().as_millisecond();
        while ms(&self.nth(k)?) > at_ms {
            k -= 1;
        }
        while ms(&self.nth(k + 1)?) <= at_ms {
            k += 1;
        }
        Ok((ms(&self.nth(k)?), ms(&self.nth(k + 1)?)))
    }

    /// The `n` periods before the one containing `at_ms`, newest first, with it.
    pub fn recent_periods(&self, at_ms: i64, n: usize) -> Result<Vec<(i64, i64)>, String> {
        let mut out = vec![self.period_at(at_ms)?];
        for _ in 0..n {
            let start = out.last().expect("one").0;
            out.push(self.period_at(start - 1)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_weeks_in_a_zone() {
        // 2024-03-15T12:00:00Z: March in New York started at 05:00 UTC on the 1st, and
        // April 1st 00:00 EDT (after the DST change) is 04:00 UTC.
        let t = 1_710_504_000_000;
        let month = Calendar::new(CalendarUnit::Month, "America/New_York", None).unwrap();
        assert_eq!(month.period_at(t).unwrap(), (1_709_269_200_000, 1_711_944_000_000));
        // The week of Friday 2024-03-15 began on Monday the 11th (UTC).
        let week = Calendar::new(CalendarUnit::Week, "UTC", None).unwrap();
        assert_eq!(week.period_at(t).unwrap().0, 1_710_115_200_000);
        assert!(check_time_zone("Mars/Olympus").is_err());
        // Long before and after the default anchor.
        let old = 946_684_800_000 + 3_600_000; // 2000-01-01T01:00Z
        assert_eq!(
            Calendar::new(CalendarUnit::Month, "UTC", None)
                .unwrap()
                .period_at(old)
                .unwrap()
                .0,
            946_684_800_000
        );
    }

    #[test]
    fn an_anchor_sets_day_and_time() {
        // OpenSLO's example: months from 2022-01-01 12:00 in New York (17:00 UTC).
        let c = Calendar::new(CalendarUnit::Month, "America/New_York", Some("2022-01-01 12:00:00")).unwrap();
        // 2024-03-01T16:00Z is 11:00 EST on March 1st: still February's period.
        let (start, end) = c.period_at(1_709_308_800_000).unwrap();
        assert_eq!(start, 1_706_806_800_000); // 2024-02-01T17:00Z
        assert_eq!(end, 1_709_312_400_000); // 2024-03-01T17:00Z
        // An anchor on the 31st: February's period starts on the 29th (2024).
        let c = Calendar::new(CalendarUnit::Month, "UTC", Some("2024-01-31T00:00:00")).unwrap();
        let feb = c.period_at(1_709_251_200_000).unwrap(); // 2024-03-01
        assert_eq!(feb, (1_709_164_800_000, 1_711_843_200_000)); // Feb 29 .. Mar 31
        assert_eq!(c.recent_periods(1_709_251_200_000, 2).unwrap().len(), 3);
        assert!(parse_anchor("2022-13-01 00:00:00").is_err());
    }
}
