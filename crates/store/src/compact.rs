//! Compaction of closed blocks.
//!
//! A block's raw table `samples_<b>(series_id, t, v)` is rewritten, sorted by series
//! and time, as `chunks_<b>(series_id, dt, dv, vf)` plus one row per series in
//! `chunk_series_<b>(series_id, first_t, last_t, last_v)`:
//! - `dt` is the gap to the series' previous sample (0 for its first, whose time is
//!   `first_t`), so timestamps cost almost nothing: scrape intervals are near-constant.
//! - an integral value whose predecessor is also integral is stored as the integer
//!   difference `dv` (counters mostly grow by small integers); any other value is kept
//!   as a double in `vf`. Exactly one of `dv` and `vf` is set per row.
//!
//! DuckDB's column compression (bit-packing, ALP) does the rest; DESIGN.md §5 has the
//! measurements behind this layout. The per-series table also gives start-up the bounds
//! of each series without reading samples.

use duckdb::Connection;
use sextant_model::Sample;

use crate::Result;

/// A value is stored as an integer delta when it is integral, exactly representable,
/// not -0.0, and so was its predecessor.
const IS_INT: &str = "(v = round(v) AND abs(v) < 9.0e15 AND NOT (v = 0 AND signbit(v)))";

pub(crate) fn chunks_table(block: i64) -> String {
    suffixed("chunks", block)
}

pub(crate) fn chunk_series_table(block: i64) -> String {
    suffixed("chunk_series", block)
}

fn suffixed(prefix: &str, block: i64) -> String {
    if block < 0 {
        format!("{prefix}_n{}", block.unsigned_abs())
    } else {
        format!("{prefix}_{block}")
    }
}

/// Rewrites block `block` (its raw table and any earlier compacted rows) into the
/// compacted layout, inside the caller's open transaction. `raw` names the raw table if
/// it exists; `compacted` says whether compacted tables exist already.
pub(crate) fn compact_block(conn: &Connection, block: i64, raw: Option<&str>, compacted: bool) -> Result<()> {
    if raw.is_none() && !compacted {
        return Ok(());
    }
    // Earlier compacted rows are decoded in Rust: each integer delta depends on the value
    // before it, which only a sequential pass knows.
    let previous = if compacted {
        read_compacted(conn, block, None, i64::MIN, i64::MAX)?
    } else {
        Vec::new()
    };
    conn.execute_batch("CREATE TABLE compact_in (series_id BIGINT, t BIGINT, v DOUBLE)")?;
    if let Some(raw) = raw {
        conn.execute_batch(&format!("INSERT INTO compact_in SELECT series_id, t, v FROM {raw}"))?;
    }
    if !previous.is_empty() {
        let mut app = conn.appender("compact_in")?;
        for (id, s) in previous {
            app.append_row(duckdb::params![id as i64, s.t_ms, s.v])?;
        }
        app.flush()?;
    }
    let chunks = chunks_table(block);
    let series = chunk_series_table(block);
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS {chunks};
         DROP TABLE IF EXISTS {series};
         CREATE TABLE {chunks} AS
           SELECT series_id,
                  (t - coalesce(lag(t) OVER w, t))::INTEGER AS dt,
                  CASE WHEN {IS_INT} AND coalesce(lag({IS_INT}) OVER w, true)
                       THEN (v - coalesce(lag(v) OVER w, 0))::BIGINT END AS dv,
                  CASE WHEN NOT ({IS_INT} AND coalesce(lag({IS_INT}) OVER w, true)) THEN v END AS vf
           FROM compact_in
           WINDOW w AS (PARTITION BY series_id ORDER BY t)
           ORDER BY series_id, t;
         CREATE TABLE {series} AS
           SELECT series_id, min(t) AS first_t, max(t) AS last_t, arg_max(v, t) AS last_v
           FROM compact_in GROUP BY series_id ORDER BY series_id;
         DROP TABLE compact_in;"
    ))?;
    if let Some(raw) = raw {
        conn.execute_batch(&format!("DROP TABLE {raw}"))?;
    }
    Ok(())
}

/// Decodes compacted samples of `ids` (all series when `None`) within `[start, end]`.
pub(crate) fn read_compacted(
    conn: &Connection,
    block: i64,
    ids: Option<&str>,
    start: i64,
    end: i64,
) -> Result<Vec<(u64, Sample)>> {
    let chunks = chunks_table(block);
    let series = chunk_series_table(block);
    let filter = ids.map(|l| format!("WHERE c.series_id IN ({l})")).unwrap_or_default();
    let sql = format!(
        "SELECT c.series_id, s.first_t, c.dt, c.dv, c.vf
         FROM {chunks} c JOIN {series} s USING (series_id) {filter}
         ORDER BY c.rowid"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    let mut current: Option<u64> = None;
    let (mut t, mut prev) = (0i64, 0f64);
    while let Some(r) = rows.next()? {
        let id = r.get::<_, i64>(0)? as u64;
        if current != Some(id) {
            current = Some(id);
            t = r.get(1)?;
            prev = 0.0;
        }
        t += i64::from(r.get::<_, i32>(2)?);
        let v = match r.get::<_, Option<i64>>(3)? {
            Some(dv) => prev + dv as f64,
            None => r.get::<_, f64>(4)?,
        };
        prev = v;
        if (start..=end).contains(&t) {
            out.push((id, Sample::new(t, v)));
        }
    }
    Ok(out)
}
