//! The per-sample layout of data directories of formats 2 and 3, read only to upgrade
//! them (`compact.rs`).
//!
//! Those formats kept closed blocks in the shared table `chunks(block, series_id, dt,
//! dv, vf)`, one row per sample sorted by series and time, with one row per series and
//! block in `chunk_series(block, series_id, first_t, last_t, last_v)`: `dt` the gap to
//! the series' previous sample (0 for its first, whose time is `first_t`), and either
//! `dv`, the integer difference from the previous value while values stay integral, or
//! the value as a double in `vf`.

use crate::registry::HashIndex;
use duckdb::Connection;
use duckdb::arrow::array::{Array, Float64Array, Int32Array, Int64Array};
use sextant_model::Sample;

use crate::Result;
use crate::compact::column;

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
