//! Closed blocks in DuckDB.
//!
//! A closed two-hour block is a table of its own, `block_<b>(series_id, first_t,
//! last_t, last_v, data)` (`block_n<b>` before 1970), with one row per series: `data`
//! holds the series' samples in the block as `blockcodec` encodes them (a series with
//! more than [`MAX_ROW_SAMPLES`] samples in a block takes several rows, in time order).
//!
//! Why rows of encoded samples rather than a row per sample: with every sample in hand
//! the encoder finds each series' decimal scale and whether its values grow steadily,
//! which DuckDB's column compressions cannot see across rows; on the node_exporter
//! data of BENCHMARKS.md §3 a row per sample (formats 2 and 3, with time and integer
//! deltas) took 3.6 bytes a sample and these rows take less than Prometheus' 1.6. The
//! columns beside `data` give start-up each series' bounds and let a read skip rows
//! outside its time range without decoding them.
//!
//! Why a table per block: a block is written once and dropped whole by retention. In
//! one shared table, blocks share row groups, so each flush's checkpoint rewrote the
//! row groups it appended to (every block of a small store) and retention left
//! partly deleted row groups in place; the file stayed about twice the data
//! (BENCHMARKS.md §3, `scripts/bench-retention-churn`). A table of its own is written
//! once, and `DROP TABLE` frees all of its space for the next block.
//!
//! Directories of formats 1 to 3 are upgraded by [`upgrade`]: their raw
//! `samples_<block>` tables (formats 1 and 2) and per-sample rows
//! (`compact_legacy.rs`, formats 2 and 3) are rewritten block by block.

use std::collections::{BTreeMap, BTreeSet};

use duckdb::arrow::array::{Array, BinaryArray, Float64Array, Int64Array, LargeBinaryArray};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{Appender, Connection, params};
use sextant_model::Sample;

use crate::blockcodec::{self, MAX_ROW_SAMPLES, Scratch};
use crate::compact_legacy;
use crate::{Error, Result};

/// The table of block `block`.
pub(crate) fn block_table(block: i64) -> String {
    if block < 0 {
        format!("block_n{}", block.unsigned_abs())
    } else {
        format!("block_{block}")
    }
}

/// The block whose table `name` is, if it is one (`block_<b>`, `block_n<-b>`).
fn block_of_table(name: &str) -> Option<i64> {
    block_in_name(name, "block_")
}

/// The blocks that have a table, as the connection's current transaction sees them.
pub(crate) fn block_tables(conn: &Connection) -> Result<BTreeSet<i64>> {
    let mut stmt = conn.prepare("SELECT table_name FROM duckdb_tables()")?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<duckdb::Result<Vec<_>>>()?;
    Ok(names.iter().filter_map(|name| block_of_table(name)).collect())
}

fn block_in_name(name: &str, prefix: &str) -> Option<i64> {
    let rest = name.strip_prefix(prefix)?;
    match rest.strip_prefix('n') {
        Some(neg) => neg.parse::<i64>().ok().map(|v| -v),
        None => rest.parse().ok(),
    }
}

/// Creates block `block`'s table and appends encoded rows to it, inside the caller's
/// transaction.
pub(crate) struct BlockRows<'c> {
    app: Appender<'c>,
    scratch: Scratch,
    buf: Vec<u8>,
}

impl<'c> BlockRows<'c> {
    /// Creates the table of `block`, which must not exist.
    pub fn new(conn: &'c Connection, block: i64) -> Result<Self> {
        let table = block_table(block);
        // `data` is encoded already: DuckDB's string compressions find nothing in it
        // and would only spend checkpoint time looking.
        conn.execute_batch(&format!(
            "CREATE TABLE {table} (series_id BIGINT NOT NULL, first_t BIGINT NOT NULL,
                 last_t BIGINT NOT NULL, last_v DOUBLE NOT NULL, data BLOB NOT NULL USING COMPRESSION uncompressed)"
        ))?;
        Ok(BlockRows {
            app: conn.appender(&table)?,
            scratch: Scratch::default(),
            buf: Vec::new(),
        })
    }

    /// Writes `samples` (one series, in time order) as its rows.
    pub fn write(&mut self, series: u64, samples: &[Sample]) -> Result<()> {
        for part in samples.chunks(MAX_ROW_SAMPLES) {
            let (first, last) = (part[0], part[part.len() - 1]);
            blockcodec::encode(part, &mut self.scratch, &mut self.buf);
            self.app.append_row(params![
                series as i64,
                first.t_ms,
                last.t_ms,
                last.v,
                self.buf.as_slice()
            ])?;
        }
        Ok(())
    }

    /// Hands the buffered rows to DuckDB.
    pub fn finish(mut self) -> Result<()> {
        self.app.flush()?;
        Ok(())
    }
}

/// Decodes the rows of `block` for series ids in `ids` (all, when `None`) that
/// overlap `start..=end`, calling `emit` with each row's series and samples, in time
/// order, series after series in id order. Samples outside `start..=end` in a row
/// that overlaps it are included.
pub(crate) fn decode_block(
    conn: &Connection,
    block: i64,
    ids: Option<(u64, u64)>,
    start: i64,
    end: i64,
    mut emit: impl FnMut(u64, &[Sample]),
) -> Result<()> {
    let mut row = Vec::new();
    let filter = ids
        .map(|(lo, hi)| format!(" AND series_id BETWEEN {lo} AND {hi}"))
        .unwrap_or_default();
    // Read through Arrow record batches: per-row access through the driver costs
    // more than decoding. The sort is over rows, not samples: a few per series.
    let mut stmt = conn.prepare(&format!(
        "SELECT series_id, data FROM {}
         WHERE last_t >= {start} AND first_t <= {end}{filter}
         ORDER BY series_id, first_t",
        block_table(block)
    ))?;
    for batch in stmt.query_arrow([])? {
        let series = column::<Int64Array>(&batch, 0, "block series_id")?;
        let data = batch.column(1).as_any();
        let bytes = |i: usize| -> Result<&[u8]> {
            if let Some(a) = data.downcast_ref::<BinaryArray>() {
                Ok(a.value(i))
            } else if let Some(a) = data.downcast_ref::<LargeBinaryArray>() {
                Ok(a.value(i))
            } else {
                Err(Error::ColumnType("block data"))
            }
        };
        for i in 0..batch.num_rows() {
            let id = series.value(i) as u64;
            row.clear();
            blockcodec::decode(bytes(i)?, &mut row).map_err(|_| Error::CorruptBlock { block, series: id })?;
            emit(id, &row);
        }
    }
    Ok(())
}

/// Column `i` of `batch` as array type `A`.
pub(crate) fn column<'a, A: 'static>(batch: &'a RecordBatch, i: usize, name: &'static str) -> Result<&'a A> {
    batch
        .column(i)
        .as_any()
        .downcast_ref::<A>()
        .ok_or(Error::ColumnType(name))
}

/// Rewrites block `block` with `late` merged in (each series' samples in time order),
/// inside the caller's transaction: samples that arrived for a block already in
/// DuckDB (a new series backfilled into the past). Returns the samples merged.
pub(crate) fn merge_into_block(conn: &Connection, block: i64, late: Vec<(u64, Vec<Sample>)>) -> Result<u64> {
    let merged = late.iter().map(|(_, s)| s.len() as u64).sum();
    let mut all: BTreeMap<u64, Vec<Sample>> = BTreeMap::new();
    decode_block(conn, block, None, i64::MIN, i64::MAX, |id, row| {
        all.entry(id).or_default().extend_from_slice(row)
    })?;
    for (id, samples) in late {
        all.entry(id).or_default().extend(samples);
    }
    conn.execute_batch(&format!("DROP TABLE {}", block_table(block)))?;
    write_sorted(conn, block, all)?;
    Ok(merged)
}

/// Writes each series' samples, sorted by time (stable, so of two samples with one
/// timestamp the earlier stays first), as rows of `block`.
fn write_sorted(conn: &Connection, block: i64, series: BTreeMap<u64, Vec<Sample>>) -> Result<()> {
    let mut rows = BlockRows::new(conn, block)?;
    for (id, mut samples) in series {
        samples.sort_by_key(|s| s.t_ms);
        rows.write(id, &samples)?;
    }
    rows.finish()
}

/// Moves the blocks of a data directory of formats 1 to 3 into tables of their own: the
/// raw `samples_<block>` tables of formats 1 and 2 and the per-sample rows of formats 2
/// and 3. Each block is one transaction that also removes its old rows, so an upgrade
/// cut short resumes where it stopped. Returns how many blocks were moved.
pub(crate) fn upgrade(conn: &Connection) -> Result<usize> {
    let mut stmt = conn.prepare("SELECT table_name FROM duckdb_tables()")?;
    let tables: BTreeSet<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<duckdb::Result<_>>()?;
    let raw: BTreeMap<i64, &String> = tables
        .iter()
        .filter_map(|n| Some((block_in_name(n, "samples_")?, n)))
        .collect();
    let legacy = tables.contains("chunks") && tables.contains("chunk_series");
    let mut compacted = BTreeSet::new();
    if legacy {
        let mut stmt = conn.prepare("SELECT DISTINCT block FROM chunk_series")?;
        compacted = stmt
            .query_map([], |r| r.get::<_, i64>(0))?
            .collect::<duckdb::Result<_>>()?;
    }
    let blocks: BTreeSet<i64> = raw.keys().copied().chain(compacted.iter().copied()).collect();
    for &b in &blocks {
        conn.execute_batch("BEGIN TRANSACTION")?;
        let moved = (|| {
            let mut series: BTreeMap<u64, Vec<Sample>> = BTreeMap::new();
            if compacted.contains(&b) {
                for (id, s) in compact_legacy::read_compacted(conn, b)? {
                    series.entry(id).or_default().push(s);
                }
                conn.execute_batch(&format!(
                    "DELETE FROM chunks WHERE block = {b}; DELETE FROM chunk_series WHERE block = {b};"
                ))?;
            }
            if let Some(table) = raw.get(&b) {
                let mut stmt = conn.prepare(&format!("SELECT series_id, t, v FROM {table}"))?;
                for batch in stmt.query_arrow([])? {
                    let ids = column::<Int64Array>(&batch, 0, "series_id")?;
                    let t = column::<Int64Array>(&batch, 1, "t")?;
                    let v = column::<Float64Array>(&batch, 2, "v")?;
                    for i in 0..batch.num_rows() {
                        series
                            .entry(ids.value(i) as u64)
                            .or_default()
                            .push(Sample::new(t.value(i), v.value(i)));
                    }
                }
                conn.execute_batch(&format!("DROP TABLE {table}"))?;
            }
            write_sorted(conn, b, series)
        })()
        .and_then(|()| Ok(conn.execute_batch("COMMIT")?));
        if let Err(e) = moved {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    if legacy {
        conn.execute_batch("DROP TABLE chunks; DROP TABLE chunk_series;")?;
    }
    Ok(blocks.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_transaction_keeps_a_block_dropped_meanwhile() {
        // What `writer::read_samples` relies on: a table listed inside a transaction
        // stays readable in it after another connection drops it.
        let dir = tempfile::tempdir().unwrap();
        let writer = Connection::open(dir.path().join("t.duckdb")).unwrap();
        let mut rows = BlockRows::new(&writer, 7).unwrap();
        rows.write(3, &[Sample::new(1, 1.5), Sample::new(2, 2.5)]).unwrap();
        rows.finish().unwrap();
        let reader = writer.try_clone().unwrap();
        reader.execute_batch("BEGIN TRANSACTION").unwrap();
        let listed: i64 = reader
            .query_row(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'block_7'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(listed, 1);
        writer.execute_batch("DROP TABLE block_7").unwrap();
        let mut got = Vec::new();
        decode_block(&reader, 7, None, i64::MIN, i64::MAX, |id, row| {
            got.push((id, row.to_vec()))
        })
        .unwrap();
        assert_eq!(got, vec![(3, vec![Sample::new(1, 1.5), Sample::new(2, 2.5)])]);
        reader.execute_batch("COMMIT").unwrap();
        assert!(decode_block(&reader, 7, None, i64::MIN, i64::MAX, |_, _| {}).is_err());
    }
}
