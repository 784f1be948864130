//! Calendar periods (months and weeks) in a named time zone, with a bundled time-zone
//! database: bundled DuckDB has none, and a host's may be missing or old.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::model::CalendarUnit;

/// Checks that `name` is an IANA time zone this build knows.
pub fn check_time_zone(name: &str) -> Result<(), String> {
    TimeZone::get(name)
        .map(drop)
        .map_err(|e| format!("unknown time zone {name:?}: {e}"))
}

/// The start of the calendar period containing `at_ms`, in epoch milliseconds.
pub fn period_start(unit: CalendarUnit, time_zone: &str, at_ms: i64) -> Result<i64, String> {
    let tz = TimeZone::get(time_zone).map_err(|e| format!("unknown time zone {time_zone:?}: {e}"))?;
    let at = Timestamp::from_millisecond(at_ms)
        .map_err(|e| e.to_string())?
        .to_zoned(tz);
    let date = at.date();
    let first = match unit {
        CalendarUnit::Month => date.first_of_month(),
        // ISO weeks start on Monday.
        CalendarUnit::Week => date
            .checked_sub(jiff::Span::new().days(i64::from(date.weekday().to_monday_zero_offset())))
            .map_err(|e| e.to_string())?,
    };
    let start = first.to_zoned(at.time_zone().clone()).map_err(|e| e.to_string())?;
    Ok(start.timestamp().as_millisecond())
}

/// The start of the period after the one that starts at `start_ms`.
pub fn next_period_start(unit: CalendarUnit, time_zone: &str, start_ms: i64) -> Result<i64, String> {
    let tz = TimeZone::get(time_zone).map_err(|e| format!("unknown time zone {time_zone:?}: {e}"))?;
    let start = Timestamp::from_millisecond(start_ms)
        .map_err(|e| e.to_string())?
        .to_zoned(tz);
    let span = match unit {
        CalendarUnit::Month => jiff::Span::new().months(1),
        CalendarUnit::Week => jiff::Span::new().weeks(1),
    };
    Ok(start
        .checked_add(span)
        .map_err(|e| e.to_string())?
        .timestamp()
        .as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_weeks_in_a_zone() {
        // 2024-03-15T12:00:00Z: March in New York started at 05:00 UTC on the 1st.
        let t = 1_710_504_000_000;
        let start = period_start(CalendarUnit::Month, "America/New_York", t).unwrap();
        assert_eq!(start, 1_709_269_200_000);
        // April 1st 00:00 EDT (after the DST change) is 04:00 UTC.
        assert_eq!(
            next_period_start(CalendarUnit::Month, "America/New_York", start).unwrap(),
            1_711_944_000_000
        );
        // The week of Friday 2024-03-15 began on Monday the 11th (UTC).
        assert_eq!(period_start(CalendarUnit::Week, "UTC", t).unwrap(), 1_710_115_200_000);
        assert!(check_time_zone("Mars/Olympus").is_err());
    }
}
