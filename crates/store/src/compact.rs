//! Compaction of closed blocks.
//!
//! A block's raw table `samples_<b>(series_id, t, v)` is rewritten, sorted by series
//! and time, into the shared table `chunks(block, series_id, dt, dv, vf)`, with one row
//! per series and block in `chunk_series(block, series_id, first_t, last_t, last_v)`:
//! - `dt` is the gap to the series' previous sample (0 for its first, whose time is
//!   `first_t`), so timestamps cost almost nothing: scrape intervals are near-constant.
//! - an integral value whose predecessor is also integral is stored as the integer
//!   difference `dv` (counters mostly grow by small integers); any other value is kept
//!   as a double in `vf`. Exactly one of `dv` and `vf` is set per row.
//!
//! All blocks share one table, appended in (block, series, time) order, so DuckDB's row
//! groups stay full and its column compression (bit-packing, ALP) works on long runs; a
//! table per block measured 40% larger. Retention deletes whole blocks, which are whole
//! row groups because blocks are appended in time order. DESIGN.md §5 has the
//! measurements behind the layout. `chunk_series` also gives start-up each series'
//! bounds without reading samples.

use crate::registry::HashIndex;
use duckdb::Connection;
use duckdb::arrow::array::{Array, Float64Array, Int32Array, Int64Array};
use duckdb::arrow::record_batch::RecordBatch;
use sextant_model::Sample;

use crate::Result;

/// A value is stored as an integer delta when it is integral, exactly representable,
/// not -0.0, and so was its predecessor.
const IS_INT: &str = "(v = round(v) AND abs(v) < 9.0e15 AND NOT (v = 0 AND signbit(v)))";

/// Creates the shared compacted tables.
pub(crate) fn create_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS chunks (block BIGINT NOT NULL, series_id BIGINT NOT NULL,
             dt INTEGER NOT NULL, dv BIGINT, vf DOUBLE);
         CREATE TABLE IF NOT EXISTS chunk_series (block BIGINT NOT NULL, series_id BIGINT NOT NULL,
             first_t BIGINT NOT NULL, last_t BIGINT NOT NULL, last_v DOUBLE NOT NULL);",
    )?;
    Ok(())
}

/// Rewrites block `block` (its raw table and any earlier compacted rows of the block)
/// into the compacted tables, inside the caller's open transaction. `raw` names the raw table if
/// it exists; `compacted` says whether the block has compacted rows already.
pub(crate) fn compact_block(conn: &Connection, block: i64, raw: Option<&str>, compacted: bool) -> Result<()> {
    if raw.is_none() && !compacted {
        return Ok(());
    }
    // Earlier compacted rows are decoded in Rust: each integer delta depends on the value
    // before it, which only a sequential pass knows.
    let previous = if compacted {
        read_compacted(conn, block)?
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
    conn.execute_batch(&format!(
        "DELETE FROM chunks WHERE block = {block};
         DELETE FROM chunk_series WHERE block = {block};
         INSERT INTO chunks
           SELECT {block}, series_id,
                  (t - coalesce(lag(t) OVER w, t))::INTEGER AS dt,
                  CASE WHEN {IS_INT} AND coalesce(lag({IS_INT}) OVER w, true)
                       THEN (v - coalesce(lag(v) OVER w, 0))::BIGINT END AS dv,
                  CASE WHEN NOT ({IS_INT} AND coalesce(lag({IS_INT}) OVER w, true)) THEN v END AS vf
           FROM compact_in
           WINDOW w AS (PARTITION BY series_id ORDER BY t)
           ORDER BY series_id, t;
         INSERT INTO chunk_series
           SELECT {block}, series_id, min(t), max(t), arg_max(v, t)
           FROM compact_in GROUP BY series_id ORDER BY series_id;
         DROP TABLE compact_in;"
    ))?;
    if let Some(raw) = raw {
        conn.execute_batch(&format!("DROP TABLE {raw}"))?;
    }
    Ok(())
}

/// Column `i` of `batch` as array type `A`.
pub(crate) fn column<'a, A: 'static>(batch: &'a RecordBatch, i: usize, name: &'static str) -> Result<&'a A> {
    batch
        .column(i)
        .as_any()
        .downcast_ref::<A>()
        .ok_or(crate::Error::ColumnType(name))
}

/// All compacted samples of `block`, for recompaction.
pub(crate) fn read_compacted(conn: &Connection, block: i64) -> Result<Vec<(u64, Sample)>> {
    let mut out = Vec::new();
    if !decode_compacted(conn, block, None, false, |id, s| out.push((id, s)))? {
        out.clear();
        decode_compacted(conn, block, None, true, |id, s| out.push((id, s)))?;
    }
    Ok(out)
}

/// Decodes the compacted samples of `block` (of series ids in `range` only, when
/// given), calling `emit` with each series' samples in time order, series after series.
///
/// Unless `ordered`, rows are read in insertion order, which is how compaction wrote
/// them (each series' rows contiguous and in time order): DuckDB preserves insertion
/// order for a filtered scan (`preserve_insertion_order`, on by default), and that
/// saves a sort. Returns false, having stopped early, if a series' rows were found not
/// contiguous; the caller then discards what was emitted for this block and calls
/// again with `ordered`.
pub(crate) fn decode_compacted(
    conn: &Connection,
    block: i64,
    range: Option<(u64, u64)>,
    ordered: bool,
    mut emit: impl FnMut(u64, Sample),
) -> Result<bool> {
    let filter = range
        .map(|(lo, hi)| format!(" AND series_id BETWEEN {lo} AND {hi}"))
        .unwrap_or_default();
    let mut first_t: HashIndex<(i64, bool)> = HashIndex::default();
    let mut stmt = conn.prepare(&format!(
        "SELECT series_id, first_t FROM chunk_series WHERE block = {block}{filter}"
    ))?;
    for batch in stmt.query_arrow([])? {
        let ids = column::<Int64Array>(&batch, 0, "series_id")?;
        let first = column::<Int64Array>(&batch, 1, "first_t")?;
        for i in 0..batch.num_rows() {
            first_t.insert(ids.value(i) as u64, (first.value(i), false));
        }
    }
    let order = if ordered { " ORDER BY rowid" } else { "" };
    // Read through Arrow record batches: per-row access through the driver costs
    // more than the decoding itself.
    let mut stmt = conn.prepare(&format!(
        "SELECT series_id, dt, dv, vf FROM chunks WHERE block = {block}{filter}{order}"
    ))?;
    let mut current: Option<u64> = None;
    let (mut t, mut prev) = (0i64, 0f64);
    for batch in stmt.query_arrow([])? {
        let ids = column::<Int64Array>(&batch, 0, "series_id")?;
        let dt = column::<Int32Array>(&batch, 1, "dt")?;
        let dv = column::<Int64Array>(&batch, 2, "dv")?;
        let vf = column::<Float64Array>(&batch, 3, "vf")?;
        for i in 0..batch.num_rows() {
            let id = ids.value(i) as u64;
            if current != Some(id) {
                current = Some(id);
                let Some(entry) = first_t.get_mut(&id) else {
                    return Err(crate::Error::ColumnType("chunks.series_id (no chunk_series row)"));
                };
                if entry.1 {
                    if ordered {
                        return Err(crate::Error::ColumnType("chunks (a series' rows are not contiguous)"));
                    }
                    tracing::warn!(block, "compacted rows out of insertion order; re-reading them ordered");
                    return Ok(false);
                }
                entry.1 = true;
                t = entry.0;
                prev = 0.0;
            }
            t += i64::from(dt.value(i));
            let v = if dv.is_null(i) {
                vf.value(i)
            } else {
                prev + dv.value(i) as f64
            };
            prev = v;
            emit(id, Sample::new(t, v));
        }
    }
    Ok(true)
}
