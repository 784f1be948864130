//! The writer thread: owns the writing DuckDB connection, commits queued appends in
//! groups, and applies retention. Also the schema and the SQL that reads it back.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use duckdb::{Appender, Connection, params};
use sextant_model::{Labels, MetricMetadata, Sample};
use tokio::sync::{mpsc, oneshot};

use crate::compact::{column, compact_block, decode_compacted};
use crate::metrics::{RejectReason, StoreMetrics};
use crate::registry::{HashIndex, Registry, SeriesId};
use crate::store::{AppendOutcome, ResolvedAppend, SeriesRef};
use crate::{Error, Result};
use duckdb::arrow::array::{Float64Array, Int64Array};

/// Samples are partitioned into tables of this span, so retention drops whole tables.
pub(crate) const BLOCK_MS: i64 = 2 * 3600 * 1000;

/// Stop adding requests to a commit group past this many samples, bounding latency.
const GROUP_MAX_SAMPLES: usize = 500_000;

/// Which tables exist per two-hour block.
#[derive(Debug, Clone, Default)]
pub(crate) struct Blocks {
    /// Blocks with a raw `samples_<b>` table.
    pub raw: BTreeSet<i64>,
    /// Blocks with rows in the compacted `chunks` / `chunk_series` tables.
    pub compacted: BTreeSet<i64>,
}

impl Blocks {
    fn all(&self) -> BTreeSet<i64> {
        self.raw.union(&self.compacted).copied().collect()
    }
}

pub(crate) enum Command {
    Append {
        req: ResolvedAppend,
        cutoff_ms: i64,
        arrived: Instant,
        reply: oneshot::Sender<Result<AppendOutcome>>,
    },
    Retention {
        cutoff_ms: i64,
        reply: oneshot::Sender<Result<usize>>,
    },
    Compact {
        before_ms: i64,
        reply: oneshot::Sender<Result<usize>>,
    },
    AppendSlices {
        rows: Vec<crate::slices::SliceRow>,
        progress: Vec<crate::slices::RevisionRow>,
        reply: oneshot::Sender<Result<()>>,
    },
    SliceRetention {
        cutoff_ms: i64,
        reply: oneshot::Sender<Result<usize>>,
    },
    PutRevisions {
        rows: Vec<crate::slices::RevisionRow>,
        reply: oneshot::Sender<Result<()>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

pub(crate) fn table_name(block: i64) -> String {
    if block < 0 {
        format!("samples_n{}", block.unsigned_abs())
    } else {
        format!("samples_{block}")
    }
}

fn block_of_table(name: &str, prefix: &str) -> Option<i64> {
    let rest = name.strip_prefix(prefix)?;
    match rest.strip_prefix('n') {
        Some(neg) => neg.parse::<i64>().ok().map(|v| -v),
        None => rest.parse().ok(),
    }
}

pub(crate) fn block_overlaps(block: i64, start: i64, end: i64) -> bool {
    let (lo, hi) = (block * BLOCK_MS, (block + 1) * BLOCK_MS - 1);
    lo <= end && hi >= start
}

pub(crate) fn create_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS series (id BIGINT NOT NULL, labels VARCHAR NOT NULL);
         CREATE TABLE IF NOT EXISTS metadata (seq BIGINT NOT NULL, metric VARCHAR NOT NULL,
             type VARCHAR NOT NULL, help VARCHAR NOT NULL, unit VARCHAR NOT NULL);",
    )?;
    crate::compact::create_schema(conn)?;
    crate::slices::create_schema(conn)
}

/// Loads series, metadata and per-series bounds into `registry`; returns the blocks.
pub(crate) fn load(conn: &Connection, registry: &mut Registry) -> Result<Blocks> {
    let mut stmt = conn.prepare("SELECT id, labels FROM series ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (id, json) = row?;
        let pairs: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&json).map_err(|e| Error::CommitFailed(format!("corrupt series row {id}: {e}")))?;
        let labels =
            Labels::from_pairs(pairs).map_err(|e| Error::CommitFailed(format!("corrupt series row {id}: {e}")))?;
        registry.insert(id as SeriesId, Arc::new(labels));
    }
    let mut stmt = conn.prepare("SELECT metric, type, help, unit FROM metadata ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (metric, typ, help, unit) = row?;
        let metric_type = typ.parse().unwrap_or_default();
        registry.metadata.insert(
            metric,
            MetricMetadata {
                metric_type,
                help,
                unit,
            },
        );
    }
    let mut stmt = conn.prepare("SELECT table_name FROM duckdb_tables()")?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<duckdb::Result<_>>()?;
    let mut stmt = conn.prepare("SELECT DISTINCT block FROM chunk_series")?;
    let compacted = stmt
        .query_map([], |r| r.get::<_, i64>(0))?
        .collect::<duckdb::Result<_>>()?;
    let blocks = Blocks {
        raw: names.iter().filter_map(|n| block_of_table(n, "samples_")).collect(),
        compacted,
    };
    let bounds_sql = blocks
        .raw
        .iter()
        .map(|b| {
            format!(
                "SELECT series_id, min(t), max(t), arg_max(v, t) FROM {} GROUP BY series_id",
                table_name(*b)
            )
        })
        .chain(std::iter::once(
            "SELECT series_id, first_t, last_t, last_v FROM chunk_series".to_owned(),
        ));
    for sql in bounds_sql {
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, f64>(3)?,
            ))
        })?;
        for row in rows {
            let (id, min_t, max_t, v) = row?;
            if (id as usize) < registry.len() {
                registry.observe(id as SeriesId, min_t, Sample::new(max_t, v));
            }
        }
    }
    Ok(blocks)
}

/// Reads `(series id, sample)` rows for `ids` in `[start, end]` from `blocks`.
pub(crate) fn read_samples(
    conn: &Connection,
    blocks: &Blocks,
    ids: &[u64],
    start: i64,
    end: i64,
) -> Result<Vec<Vec<Sample>>> {
    // `ids` is sorted; the query filters on its range (row groups outside it are
    // skipped by DuckDB's min/max indexes) and rows of other series in between are
    // dropped here, which is far cheaper than planning a long `IN` list.
    let mut out: Vec<Vec<Sample>> = vec![Vec::new(); ids.len()];
    let (Some(&lo), Some(&hi)) = (ids.first(), ids.last()) else {
        return Ok(out);
    };
    // Rows come grouped by series, so the position lookup runs once per run of rows.
    let mut last: Option<(u64, Option<usize>)> = None;
    let mut slot = |id: u64| -> Option<usize> {
        match last {
            Some((l, pos)) if l == id => pos,
            _ => {
                let pos = ids.binary_search(&id).ok();
                last = Some((id, pos));
                pos
            }
        }
    };
    // Blocks in time order, so each series' samples arrive in time order.
    let all: BTreeSet<i64> = blocks
        .all()
        .into_iter()
        .filter(|b| block_overlaps(*b, start, end))
        .collect();
    for b in all {
        if blocks.compacted.contains(&b) {
            // What each series held before this block, to undo a read that has to be
            // redone in order.
            let mut before: Vec<(usize, usize)> = Vec::new();
            let mut seen = u64::MAX;
            let contiguous = decode_compacted(conn, b, Some((lo, hi)), false, |id, s| {
                if (start..=end).contains(&s.t_ms)
                    && let Some(p) = slot(id)
                {
                    if id != seen {
                        seen = id;
                        before.push((p, out[p].len()));
                    }
                    out[p].push(s);
                }
            })?;
            if !contiguous {
                for (p, len) in before {
                    out[p].truncate(len);
                }
                decode_compacted(conn, b, Some((lo, hi)), true, |id, s| {
                    if (start..=end).contains(&s.t_ms)
                        && let Some(p) = slot(id)
                    {
                        out[p].push(s);
                    }
                })?;
            }
        }
        if blocks.raw.contains(&b) {
            let mut stmt = conn.prepare(&format!(
                "SELECT series_id, t, v FROM {} WHERE series_id BETWEEN {lo} AND {hi} AND t BETWEEN {start} AND {end}",
                table_name(b)
            ))?;
            for batch in stmt.query_arrow([])? {
                let sids = column::<Int64Array>(&batch, 0, "series_id")?;
                let ts = column::<Int64Array>(&batch, 1, "t")?;
                let vs = column::<Float64Array>(&batch, 2, "v")?;
                for i in 0..batch.num_rows() {
                    if let Some(p) = slot(sids.value(i) as u64) {
                        out[p].push(Sample::new(ts.value(i), vs.value(i)));
                    }
                }
            }
        }
    }
    // Raw rows arrive in commit order, which is time order per series; a block both
    // compacted and raw (late samples) could interleave, so check and sort if needed.
    for s in &mut out {
        if !s.is_sorted_by_key(|x| x.t_ms) {
            s.sort_by_key(|x| x.t_ms);
        }
    }
    Ok(out)
}

/// Registry changes of one commit group, applied only after the commit succeeded.
#[derive(Default)]
struct Staged {
    new_series: Vec<(SeriesId, Arc<Labels>)>,
    /// `hash64` → series created in this group.
    new_ids: HashIndex<Vec<(SeriesId, Arc<Labels>)>>,
    /// id → (oldest sample time written, newest sample written).
    bounds: HashIndex<(i64, Sample)>,
    new_blocks: HashSet<i64>,
    metadata: HashMap<String, MetricMetadata>,
}

pub(crate) struct Writer {
    conn: Connection,
    registry: Arc<RwLock<Registry>>,
    blocks: Arc<RwLock<Blocks>>,
    metrics: StoreMetrics,
    metadata_seq: i64,
}

struct PendingAppend {
    req: ResolvedAppend,
    cutoff_ms: i64,
    arrived: Instant,
    reply: oneshot::Sender<Result<AppendOutcome>>,
}

impl Writer {
    pub fn new(
        conn: Connection,
        registry: Arc<RwLock<Registry>>,
        blocks: Arc<RwLock<Blocks>>,
        metrics: StoreMetrics,
    ) -> Self {
        let metadata_seq = conn
            .query_row("SELECT coalesce(max(seq), 0) FROM metadata", [], |r| r.get(0))
            .unwrap_or(0);
        Self {
            conn,
            registry,
            blocks,
            metrics,
            metadata_seq,
        }
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
            let mut group = Vec::new();
            let mut others = Vec::new();
            let mut samples = 0;
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Append {
                        req,
                        cutoff_ms,
                        arrived,
                        reply,
                    } => {
                        samples += req.sample_count();
                        group.push(PendingAppend {
                            req,
                            cutoff_ms,
                            arrived,
                            reply,
                        });
                    }
                    other => others.push(other),
                }
                if samples < GROUP_MAX_SAMPLES {
                    next = rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit_group(group);
            }
            for cmd in others {
                match cmd {
                    Command::Retention { cutoff_ms, reply } => {
                        let _ = reply.send(self.drop_blocks_before(cutoff_ms));
                    }
                    Command::Compact { before_ms, reply } => {
                        let _ = reply.send(self.compact_before(before_ms));
                    }
                    Command::AppendSlices { rows, progress, reply } => {
                        let _ = reply.send(crate::slices::append(&self.conn, &rows, &progress));
                    }
                    Command::SliceRetention { cutoff_ms, reply } => {
                        let _ = reply.send(crate::slices::delete_before(&self.conn, cutoff_ms));
                    }
                    Command::PutRevisions { rows, reply } => {
                        let _ = reply.send(crate::slices::put_revisions(&self.conn, &rows));
                    }
                    Command::Shutdown { reply } => {
                        self.checkpoint();
                        let _ = reply.send(());
                        return;
                    }
                    Command::Append { .. } => unreachable!("appends are grouped above"),
                }
            }
        }
        self.checkpoint();
    }

    fn checkpoint(&self) {
        if let Err(e) = self.conn.execute_batch("CHECKPOINT") {
            tracing::warn!(error = %e, "checkpoint at shutdown failed; the WAL will be replayed at next start");
        }
    }

    fn commit_group(&mut self, group: Vec<PendingAppend>) {
        let started = Instant::now();
        let result = self.write_group(&group);
        let result = match result {
            Ok(ok) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(ok),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        };
        self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        self.metrics.commit_batch_requests.observe(group.len() as f64);
        match result {
            Ok((outcomes, staged)) => {
                self.apply(staged);
                for (p, outcome) in group.into_iter().zip(outcomes) {
                    self.metrics.samples_appended.inc_by(outcome.accepted);
                    for (reason, n) in [
                        ("out_of_order", outcome.out_of_order),
                        ("duplicate_conflict", outcome.duplicate_conflicts),
                        ("too_old", outcome.too_old),
                    ] {
                        if n > 0 {
                            self.metrics
                                .samples_rejected
                                .get_or_create(&RejectReason { reason })
                                .inc_by(n);
                        }
                    }
                    self.metrics.append_seconds.observe(p.arrived.elapsed().as_secs_f64());
                    let _ = p.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                tracing::error!(error = %e, requests = group.len(), "commit failed; requests refused");
                let msg = e.to_string();
                for p in group {
                    let _ = p.reply.send(Err(Error::CommitFailed(msg.clone())));
                }
            }
        }
    }

    /// Appends every request of the group inside one open transaction (left open for
    /// the caller to commit) and decides each sample's fate.
    fn write_group(&mut self, group: &[PendingAppend]) -> Result<(Vec<AppendOutcome>, Staged)> {
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        let conn = &self.conn;
        let reg = self.registry.read().expect("registry lock poisoned");
        let mut staged = Staged::default();
        let mut next_id = reg.len() as SeriesId;
        let mut series_app = conn.appender("series")?;
        let mut block_apps: HashMap<i64, Appender<'_>> = HashMap::new();
        let mut outcomes = Vec::with_capacity(group.len());

        for p in group {
            let mut out = AppendOutcome {
                refs: Vec::with_capacity(p.req.labeled),
                ..AppendOutcome::default()
            };
            for (i, s) in p.req.series.iter().enumerate() {
                let known = s.id.or_else(|| reg.id_of(&s.labels, s.hash)).or_else(|| {
                    staged
                        .new_ids
                        .get(&s.hash)?
                        .iter()
                        .find(|(_, l)| **l == s.labels)
                        .map(|(id, _)| *id)
                });
                let id = match known {
                    Some(id) => id,
                    None => {
                        let id = next_id;
                        next_id += 1;
                        let labels = Arc::new(s.labels.clone());
                        let json = serde_json::to_string(&*labels).expect("labels serialize");
                        series_app.append_row(params![id as i64, json])?;
                        staged.new_ids.entry(s.hash).or_default().push((id, labels.clone()));
                        staged.new_series.push((id, labels));
                        out.new_series += 1;
                        id
                    }
                };
                if i < p.req.labeled {
                    out.refs.push(SeriesRef(id));
                }
                let mut bounds = staged.bounds.get(&id).copied();
                let mut last = bounds
                    .map(|b| b.1)
                    .or_else(|| ((id as usize) < reg.len()).then(|| reg.entry(id).last).flatten());
                for sample in &s.samples {
                    if let Some(l) = last {
                        if sample.t_ms < l.t_ms {
                            out.out_of_order += 1;
                            continue;
                        }
                        if sample.t_ms == l.t_ms {
                            if sample.same_as(&l) {
                                out.duplicates += 1;
                            } else {
                                out.duplicate_conflicts += 1;
                            }
                            continue;
                        }
                    }
                    if sample.t_ms < p.cutoff_ms {
                        out.too_old += 1;
                        continue;
                    }
                    let block = sample.t_ms.div_euclid(BLOCK_MS);
                    let app = match block_apps.entry(block) {
                        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            // Only this thread adds raw blocks, so the shared set is current.
                            let exists = self.blocks.read().expect("poisoned").raw.contains(&block);
                            if !exists && staged.new_blocks.insert(block) {
                                conn.execute_batch(&format!(
                                    "CREATE TABLE IF NOT EXISTS {} (series_id BIGINT NOT NULL, t BIGINT NOT NULL, v DOUBLE NOT NULL)",
                                    table_name(block)
                                ))?;
                            }
                            v.insert(conn.appender(&table_name(block))?)
                        }
                    };
                    app.append_row(params![id as i64, sample.t_ms, sample.v])?;
                    out.accepted += 1;
                    last = Some(*sample);
                    bounds = Some(match bounds {
                        Some((first, _)) => (first, *sample),
                        None => (sample.t_ms, *sample),
                    });
                }
                if let Some(b) = bounds {
                    staged.bounds.insert(id, b);
                }
            }
            for (name, meta) in &p.req.metadata {
                let current = staged.metadata.get(name).or_else(|| reg.metadata.get(name));
                if current != Some(meta) {
                    staged.metadata.insert(name.clone(), meta.clone());
                }
            }
            outcomes.push(out);
        }
        drop(reg);
        if !staged.metadata.is_empty() {
            let mut app = conn.appender("metadata")?;
            for (name, m) in &staged.metadata {
                self.metadata_seq += 1;
                app.append_row(params![self.metadata_seq, name, m.metric_type.as_str(), m.help, m.unit])?;
            }
            app.flush()?;
        }
        series_app.flush()?;
        for app in block_apps.values_mut() {
            app.flush()?;
        }
        Ok((outcomes, staged))
    }

    fn apply(&self, staged: Staged) {
        let mut reg = self.registry.write().expect("registry lock poisoned");
        for (id, labels) in staged.new_series {
            reg.insert(id, labels);
        }
        for (id, (first, last)) in staged.bounds {
            reg.observe(id, first, last);
        }
        reg.metadata.extend(staged.metadata);
        self.metrics.active_series.set(reg.len() as i64);
        drop(reg);
        if !staged.new_blocks.is_empty() {
            self.blocks.write().expect("poisoned").raw.extend(staged.new_blocks);
        }
    }

    fn drop_blocks_before(&self, cutoff_ms: i64) -> Result<usize> {
        let expired: Vec<i64> = self
            .blocks
            .read()
            .expect("poisoned")
            .all()
            .into_iter()
            .filter(|b| (b + 1) * BLOCK_MS <= cutoff_ms)
            .collect();
        for b in &expired {
            self.conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS {}; DELETE FROM chunks WHERE block = {b}; DELETE FROM chunk_series WHERE block = {b};",
                table_name(*b)
            ))?;
            let mut blocks = self.blocks.write().expect("poisoned");
            blocks.raw.remove(b);
            blocks.compacted.remove(b);
        }
        if !expired.is_empty() {
            tracing::info!(blocks = expired.len(), cutoff_ms, "retention dropped expired blocks");
        }
        Ok(expired.len())
    }

    /// Compacts every block with raw samples that ended before `before_ms`.
    fn compact_before(&self, before_ms: i64) -> Result<usize> {
        let (todo, compacted) = {
            let b = self.blocks.read().expect("poisoned");
            let todo: Vec<i64> = b
                .raw
                .iter()
                .copied()
                .filter(|b| (b + 1) * BLOCK_MS <= before_ms)
                .collect();
            (todo, b.compacted.clone())
        };
        for b in &todo {
            let started = std::time::Instant::now();
            self.conn.execute_batch("BEGIN TRANSACTION")?;
            let result = compact_block(&self.conn, *b, Some(&table_name(*b)), compacted.contains(b))
                .and_then(|()| Ok(self.conn.execute_batch("COMMIT")?));
            if let Err(e) = result {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(e);
            }
            let mut blocks = self.blocks.write().expect("poisoned");
            blocks.raw.remove(b);
            blocks.compacted.insert(*b);
            drop(blocks);
            tracing::info!(
                block = b,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "compacted block"
            );
        }
        Ok(todo.len())
    }
}
