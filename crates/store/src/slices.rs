//! SLO slices: for each SLI (named by the SLO engine, e.g. `<slo id>@<revision>`), the
//! bad and total event counts of every fixed time slice that had data. Windows of any
//! length are sums over slices, so 30-day error budgets are exact and cheap. The table
//! is appended in time order through the writer thread, like samples; it has its own
//! retention, since an SLO's period may be longer than the samples are kept.

use std::collections::HashMap;

use duckdb::{Connection, params_from_iter};

use crate::error::Result;

/// One slice of one SLI.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceRow {
    /// The SLI's key.
    pub sli: String,
    /// End of the slice, epoch milliseconds (the slice is `(t - length, t]`).
    pub t_ms: i64,
    /// Bad events in the slice.
    pub bad: f64,
    /// All events in the slice.
    pub total: f64,
}

/// Sums of the slices of one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowSum {
    /// Bad events.
    pub bad: f64,
    /// All events.
    pub total: f64,
    /// Slices with data.
    pub slices: u64,
    /// Slices with data whose good ratio was below the time-slice target (only for
    /// [`crate::MetricsStore::slice_sums`] calls that give one).
    pub bad_slices: u64,
}

/// Which SLIs a [`crate::MetricsStore::slice_sums`] call reads.
#[derive(Debug, Clone, PartialEq)]
pub enum SliceFilter {
    /// Every SLI.
    All,
    /// These keys.
    Keys(Vec<String>),
    /// Keys starting with this (an SLO revision's per-group slices).
    Prefix(String),
}

/// What the SLO engine keeps about one revision of an SLI besides its slices.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionRow {
    /// The SLI's key (`<slo id>@<revision>`).
    pub sli: String,
    /// The definition the revision was computed from, for people reading it later.
    pub definition: String,
    /// When the revision was first seen, epoch milliseconds.
    pub created_ms: i64,
    /// Slices ending in `(computed_from_ms, computed_to_ms]` have been computed
    /// (they exist wherever the data had them): backfill moves the start back, live
    /// evaluation the end forward. Each slice is computed once, so none is counted
    /// twice.
    pub computed_from_ms: i64,
    /// See `computed_from_ms`.
    pub computed_to_ms: i64,
}

pub(crate) fn create_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS slo_slices (sli VARCHAR NOT NULL, t BIGINT NOT NULL, bad DOUBLE NOT NULL, total DOUBLE NOT NULL);
         CREATE TABLE IF NOT EXISTS slo_revisions (sli VARCHAR PRIMARY KEY, definition VARCHAR NOT NULL, created BIGINT NOT NULL, computed_from BIGINT NOT NULL, computed_to BIGINT NOT NULL);",
    )?;
    Ok(())
}

/// Inserts or replaces revision rows.
pub(crate) fn put_revisions(conn: &Connection, rows: &[RevisionRow]) -> Result<()> {
    let mut stmt = conn.prepare("INSERT OR REPLACE INTO slo_revisions VALUES (?, ?, ?, ?, ?)")?;
    for r in rows {
        stmt.execute(duckdb::params![
            r.sli,
            r.definition,
            r.created_ms,
            r.computed_from_ms,
            r.computed_to_ms
        ])?;
    }
    Ok(())
}

/// Every revision row.
pub(crate) fn revisions(conn: &Connection) -> Result<Vec<RevisionRow>> {
    let mut stmt =
        conn.prepare("SELECT sli, definition, created, computed_from, computed_to FROM slo_revisions ORDER BY sli")?;
    let rows = stmt.query_map([], |r| {
        Ok(RevisionRow {
            sli: r.get(0)?,
            definition: r.get(1)?,
            created_ms: r.get(2)?,
            computed_from_ms: r.get(3)?,
            computed_to_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<duckdb::Result<_>>()?)
}

/// Appends `rows` and records `progress` in one transaction, so the slices and the
/// record of which were computed never disagree.
pub(crate) fn append(conn: &Connection, rows: &[SliceRow], progress: &[RevisionRow]) -> Result<()> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    let result = (|| -> Result<()> {
        let mut app = conn.appender("slo_slices")?;
        for r in rows {
            app.append_row(duckdb::params![r.sli, r.t_ms, r.bad, r.total])?;
        }
        app.flush()?;
        drop(app);
        put_revisions(conn, progress)
    })();
    match result {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Deletes slices ending at or before `cutoff_ms`; returns how many.
pub(crate) fn delete_before(conn: &Connection, cutoff_ms: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM slo_slices WHERE t <= ?", [cutoff_ms])?)
}

/// The ends of the oldest and newest slice of every SLI.
pub(crate) fn bounds(conn: &Connection) -> Result<HashMap<String, (i64, i64)>> {
    let mut stmt = conn.prepare("SELECT sli, min(t), max(t) FROM slo_slices GROUP BY sli")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, (r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
    })?;
    Ok(rows.collect::<duckdb::Result<_>>()?)
}

/// For every SLI of `filter`, the sums of the windows `(end - w, end]` for each
/// `w` of `windows_ms`, in one scan. With `slice_target`, slices whose good ratio is
/// below it are counted too (time-slice budgeting).
pub(crate) fn sums(
    conn: &Connection,
    end_ms: i64,
    windows_ms: &[i64],
    filter: &SliceFilter,
    slice_target: Option<f64>,
) -> Result<HashMap<String, Vec<WindowSum>>> {
    let Some(&longest) = windows_ms.iter().max() else {
        return Ok(HashMap::new());
    };
    let mut cols = Vec::new();
    for w in windows_ms {
        let since = end_ms - w;
        let f = format!("FILTER (WHERE t > {since})");
        cols.push(format!(
            "coalesce(sum(bad) {f}, 0), coalesce(sum(total) {f}, 0), count(*) {f}"
        ));
        match slice_target {
            Some(target) => cols.push(format!(
                "count(*) FILTER (WHERE t > {since} AND total > 0 AND (total - bad) / total < {target:?})"
            )),
            None => cols.push("0".into()),
        }
    }
    let mut sql = format!(
        "SELECT sli, {} FROM slo_slices WHERE t > {} AND t <= {end_ms}",
        cols.join(", "),
        end_ms - longest
    );
    let mut params: Vec<String> = Vec::new();
    match filter {
        SliceFilter::All => {}
        SliceFilter::Keys(keys) => {
            if keys.is_empty() {
                return Ok(HashMap::new());
            }
            sql.push_str(&format!(" AND sli IN ({})", vec!["?"; keys.len()].join(", ")));
            params.extend(keys.iter().cloned());
        }
        SliceFilter::Prefix(prefix) => {
            sql.push_str(" AND starts_with(sli, ?)");
            params.push(prefix.clone());
        }
    }
    sql.push_str(" GROUP BY sli");
    let mut stmt = conn.prepare(&sql)?;
    let n = windows_ms.len();
    let rows = stmt.query_map(params_from_iter(params.iter()), |r| {
        let key: String = r.get(0)?;
        let mut sums = Vec::with_capacity(n);
        for i in 0..n {
            sums.push(WindowSum {
                bad: r.get(1 + 4 * i)?,
                total: r.get(2 + 4 * i)?,
                slices: r.get::<_, i64>(3 + 4 * i)? as u64,
                bad_slices: r.get::<_, i64>(4 + 4 * i)? as u64,
            });
        }
        Ok((key, sums))
    })?;
    Ok(rows.collect::<duckdb::Result<_>>()?)
}

/// The slices of one SLI in `(from, to]`, in time order.
pub(crate) fn range(conn: &Connection, sli: &str, from_ms: i64, to_ms: i64) -> Result<Vec<SliceRow>> {
    let mut stmt =
        conn.prepare("SELECT t, bad, total FROM slo_slices WHERE sli = ? AND t > ? AND t <= ? ORDER BY t")?;
    let rows = stmt.query_map(duckdb::params![sli, from_ms, to_ms], |r| {
        Ok(SliceRow {
            sli: sli.to_owned(),
            t_ms: r.get(0)?,
            bad: r.get(1)?,
            total: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<duckdb::Result<_>>()?)
}
