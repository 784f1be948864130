//! The store's two writer threads and the SQL that reads blocks back.
//!
//! - The **head writer** takes queued appends in groups, decides each sample's fate,
//!   writes the group as one record to the write-ahead log, waits for its
//!   `fdatasync`, and only then puts the samples in the head and the registry and
//!   acknowledges: group commit without touching DuckDB. It also writes the log's
//!   checkpoints (the head after a flush), so they are ordered with its records.
//! - The **block writer** owns the writing DuckDB connection: it flushes closed
//!   blocks from the head into the compacted tables, persists new series and
//!   metadata with them, applies retention and stores SLO slices. Appends never wait
//!   for it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use duckdb::{Connection, params};
use sextant_model::{Labels, MetricMetadata, Sample};
use sextant_wal::{ReplayStats, Replayed, Wal, WalOptions};
use tokio::sync::{mpsc, oneshot};

use crate::compact::{BlockRows, block_table, block_tables, decode_block, merge_into_block};
use crate::head::Head;
use crate::metrics::{RejectReason, StoreMetrics};
use crate::registry::{HashIndex, Registry, SeriesId};
use crate::store::{AppendOutcome, ResolvedAppend, SeriesRef};
use crate::walrec::{self, Entry, RecordBuilder};
use crate::{Error, Result};

/// Samples are partitioned into blocks of this span, so retention drops whole blocks.
pub(crate) const BLOCK_MS: i64 = 2 * 3600 * 1000;

/// Stop adding requests to a commit group past this many samples, bounding latency.
const GROUP_MAX_SAMPLES: usize = 500_000;

/// The head writer checkpoints once this much log was written since the last
/// checkpoint, so the log (16 bytes a sample) stays a small multiple of the head
/// (about 1.5 bytes a sample) and replay stays short.
const CHECKPOINT_AFTER_BYTES: u64 = 1 << 30;

/// Blocks whose samples are in DuckDB's compacted tables.
#[derive(Debug, Clone, Default)]
pub(crate) struct Blocks {
    pub compacted: BTreeSet<i64>,
}

/// State both writers and the readers share.
pub(crate) struct Shared {
    pub registry: RwLock<Registry>,
    pub head: Head,
    pub blocks: RwLock<Blocks>,
    pub metrics: StoreMetrics,
    /// Series `0..persisted_series` are in DuckDB's `series` table.
    pub persisted_series: AtomicU64,
}

impl Shared {
    pub fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().expect("registry lock poisoned")
    }
}

/// The answer to an append, with the request handed back so its buffers are freed by
/// the task that allocated them: freed on the head writer's thread, they left the
/// allocator's pages to be returned to the kernel and faulted in again, which showed
/// as a large share of system time in the append benchmark.
pub(crate) type AppendReply = oneshot::Sender<(Result<AppendOutcome>, ResolvedAppend)>;

/// Work for the head writer.
pub(crate) enum Command {
    Append {
        req: ResolvedAppend,
        cutoff_ms: i64,
        arrived: Instant,
        reply: AppendReply,
    },
    Checkpoint {
        reply: oneshot::Sender<Result<()>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Work for the block writer.
pub(crate) enum DbCommand {
    Flush {
        before_ms: i64,
        reply: oneshot::Sender<Result<usize>>,
    },
    Retention {
        cutoff_ms: i64,
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
    crate::slices::create_schema(conn)
}

/// Loads series, metadata and per-series bounds from DuckDB into `registry`; returns
/// the blocks.
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
    let compacted = block_tables(conn)?;
    for &b in &compacted {
        let mut stmt = conn.prepare(&format!(
            "SELECT series_id, min(first_t), max(last_t), arg_max(last_v, last_t) FROM {} GROUP BY series_id",
            block_table(b)
        ))?;
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
    Ok(Blocks { compacted })
}

/// What replaying the write-ahead log into the head found.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub log: ReplayStats,
    pub series: u64,
    pub samples: u64,
    /// Samples already in DuckDB blocks (flushed before the log was checkpointed).
    pub already_flushed: u64,
    /// Entries that could not be applied (malformed, or for unknown series).
    pub skipped: u64,
}

/// Opens the write-ahead log in `dir`, replaying its checkpoint and records into the
/// head and registry.
pub(crate) fn replay(shared: &Shared, dir: &Path) -> Result<(Wal, Replay)> {
    let total: u64 = std::fs::read_dir(dir)
        .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    if total > 0 {
        tracing::info!(bytes = total, dir = %dir.display(), "replaying the metrics write-ahead log into the head");
    }
    let mut out = Replay::default();
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut done = 0u64;
    let mut reg = shared.registry.write().expect("registry lock poisoned");
    let (wal, stats) = Wal::open(WalOptions::new(dir), |item| {
        match item {
            Replayed::Checkpoint(bytes) => {
                done += bytes.len() as u64;
                match walrec::decode_checkpoint(bytes) {
                    Some(cp) => {
                        reg.metadata.extend(cp.metadata);
                        for (id, labels) in cp.series {
                            replay_series(&mut reg, &mut out, id, labels);
                        }
                        for (id, chunks) in cp.chunks {
                            if id as usize >= reg.len() {
                                out.skipped += 1;
                                continue;
                            }
                            for c in chunks {
                                let last = reg.entry(id).last;
                                if last.is_none_or(|l| c.first_t > l.t_ms) {
                                    out.samples += u64::from(c.count);
                                    reg.observe(id, c.first_t, c.last());
                                    shared.head.adopt(id, c);
                                } else {
                                    let samples: Vec<Sample> = c.iter().collect();
                                    replay_samples(shared, &mut reg, &mut out, id, &samples);
                                }
                            }
                        }
                    }
                    None => {
                        tracing::error!("the metrics write-ahead log's checkpoint is malformed; it was skipped");
                        out.skipped += 1;
                    }
                }
            }
            Replayed::Record(bytes) => {
                done += bytes.len() as u64;
                let whole = walrec::decode_record(bytes, |e| match e {
                    Entry::Series(id, labels) => replay_series(&mut reg, &mut out, id, labels),
                    Entry::Samples(id, samples) => replay_samples(shared, &mut reg, &mut out, id, &samples),
                    Entry::Metadata(name, m) => {
                        reg.metadata.insert(name, m);
                    }
                });
                if !whole {
                    out.skipped += 1;
                    tracing::error!("a malformed metrics write-ahead log record was skipped after its valid entries");
                }
            }
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            tracing::info!(
                percent = (done as f64 * 100.0 / total.max(1) as f64).min(100.0) as u64,
                samples = out.samples,
                elapsed_s = started.elapsed().as_secs(),
                "replaying the metrics write-ahead log"
            );
        }
    })
    .map_err(|e| Error::Io {
        context: format!("opening the write-ahead log in {}", dir.display()),
        source: std::io::Error::other(e.to_string()),
    })?;
    out.log = stats;
    Ok((wal, out))
}

fn replay_series(reg: &mut Registry, out: &mut Replay, id: SeriesId, labels: Labels) {
    match (id as usize).cmp(&reg.len()) {
        std::cmp::Ordering::Less => {}
        std::cmp::Ordering::Equal => {
            reg.insert(id, Arc::new(labels));
            out.series += 1;
        }
        std::cmp::Ordering::Greater => {
            tracing::error!(
                id,
                known = reg.len(),
                "write-ahead log names a series past the known ones; skipped"
            );
            out.skipped += 1;
        }
    }
}

fn replay_samples(shared: &Shared, reg: &mut Registry, out: &mut Replay, id: SeriesId, samples: &[Sample]) {
    if id as usize >= reg.len() {
        out.skipped += 1;
        return;
    }
    // The store accepts only samples newer than a series' newest, so anything not
    // newer than what DuckDB and the replay so far hold is there already.
    let last = reg.entry(id).last;
    let fresh = samples.partition_point(|s| last.is_some_and(|l| s.t_ms <= l.t_ms));
    out.already_flushed += fresh as u64;
    let samples = &samples[fresh..];
    if let (Some(first), Some(newest)) = (samples.first(), samples.last()) {
        shared.head.append(id, samples);
        reg.observe(id, first.t_ms, *newest);
        out.samples += samples.len() as u64;
    }
}

/// Reads `(series id, sample)` rows for `ids` in `[start, end]` from the compacted
/// `blocks`; each series' samples come out in time order.
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
    // Retention may drop a block's table after `blocks` was taken. One transaction
    // sees one version of the catalog, so a table listed here stays readable until the
    // end of it, and a block whose table is gone was dropped and is skipped.
    conn.execute_batch("BEGIN TRANSACTION")?;
    let read = (|| {
        let present = block_tables(conn)?;
        // Blocks in time order, so each series' samples arrive in time order.
        let overlapping: Vec<i64> = blocks
            .compacted
            .iter()
            .copied()
            .filter(|b| block_overlaps(*b, start, end) && present.contains(b))
            .collect();
        for (i, &b) in overlapping.iter().enumerate() {
            decode_block(conn, b, Some((lo, hi)), start, end, |id, row| {
                if let Some(p) = slot(id) {
                    // Rows are in time order: the samples in range are one run.
                    let from = row.partition_point(|s| s.t_ms < start);
                    let to = row.partition_point(|s| s.t_ms <= end);
                    let series = &mut out[p];
                    if series.capacity() == 0 {
                        // Room for as many samples in each block still to come and in
                        // the head, instead of growing (and copying) block by block; at
                        // most four blocks' worth, since a series that stopped early
                        // would hold a long query's worth of nothing.
                        let blocks_left = (overlapping.len() - i + 1).min(4);
                        series.reserve((to - from) * blocks_left);
                    }
                    series.extend_from_slice(&row[from..to]);
                }
            })?;
        }
        Ok::<_, Error>(())
    })();
    let _ = conn.execute_batch(if read.is_ok() { "COMMIT" } else { "ROLLBACK" });
    read?;
    Ok(out)
}

/// Registry and head changes of one commit group, applied only once its log record
/// is durable.
#[derive(Default)]
struct Staged {
    new_series: Vec<(SeriesId, Arc<Labels>)>,
    /// `hash64` → series created in this group.
    new_ids: HashIndex<Vec<(SeriesId, Arc<Labels>)>>,
    /// Series that took samples in this group; their bounds are in
    /// `HeadWriter::series`.
    touched: Vec<SeriesId>,
    metadata: HashMap<String, MetricMetadata>,
    /// Accepted samples with their series, in the order they were accepted (which
    /// is each series' time order).
    accepted: Vec<(SeriesId, Sample)>,
    /// One run's accepted samples, for its log entry.
    run: Vec<Sample>,
}

impl Staged {
    /// Empties every buffer, keeping its capacity.
    fn clear(&mut self) {
        self.new_series.clear();
        self.new_ids.clear();
        self.touched.clear();
        self.metadata.clear();
        self.accepted.clear();
        self.run.clear();
    }
}

struct PendingAppend {
    req: ResolvedAppend,
    cutoff_ms: i64,
    arrived: Instant,
    reply: AppendReply,
}

/// What the head writer knows of one series: its newest sample, which the next one
/// is checked against, and its oldest sample in the current commit group.
#[derive(Clone, Copy, Default)]
struct WriterSeries {
    /// The group `first_t` is of; in older groups' entries it is stale.
    group: u64,
    first_t: i64,
    newest: Newest,
}

/// A series' newest sample as the head writer knows it. The head writer is the only
/// one to change a series' newest sample once the store is open, so after reading it
/// from the registry once it keeps its own copy: deciding a sample's fate then reads
/// this dense array only, not the registry's entry as well.
#[derive(Clone, Copy, Default)]
enum Newest {
    /// Not read from the registry yet (or dropped after a group that failed).
    #[default]
    Unknown,
    Known(Option<Sample>),
}

impl WriterSeries {
    /// The series' newest sample, read from `reg` the first time.
    #[inline]
    fn newest(&mut self, reg: &Registry, id: SeriesId) -> Option<Sample> {
        match self.newest {
            Newest::Known(last) => last,
            Newest::Unknown => {
                // A series created in this group is not in the registry yet.
                let last = ((id as usize) < reg.len()).then(|| reg.entry(id).last).flatten();
                self.newest = Newest::Known(last);
                last
            }
        }
    }

    /// The newest sample, once the series took one in this group.
    fn group_newest(&self) -> Sample {
        match self.newest {
            Newest::Known(Some(s)) => s,
            _ => unreachable!("a series that took a sample knows its newest"),
        }
    }
}

/// Whether `sample` is stored after the series' newest sample `last`; if not, counts
/// why in `out` (out of order, a duplicate, a conflicting duplicate, or too old).
#[inline]
fn accepts(last: Option<Sample>, sample: &Sample, cutoff_ms: i64, out: &mut AppendOutcome) -> bool {
    if let Some(l) = last {
        if sample.t_ms < l.t_ms {
            out.out_of_order += 1;
            return false;
        }
        if sample.t_ms == l.t_ms {
            if sample.same_as(&l) {
                out.duplicates += 1;
            } else {
                out.duplicate_conflicts += 1;
            }
            return false;
        }
    }
    if sample.t_ms < cutoff_ms {
        out.too_old += 1;
        return false;
    }
    true
}

pub(crate) struct HeadWriter {
    shared: Arc<Shared>,
    wal: Wal,
    logged_since_checkpoint: u64,
    /// Per series id: its newest sample and its oldest in the current group. An
    /// array indexed by id instead of a map per group: the bookkeeping of a group
    /// then costs no hashing or allocation.
    series: Vec<WriterSeries>,
    group: u64,
    /// The last group's staging buffers, emptied and kept for their capacity: buffers
    /// of this size allocated afresh for every group cost page faults.
    spare: Staged,
}

impl HeadWriter {
    pub fn new(shared: Arc<Shared>, wal: Wal) -> Self {
        Self {
            shared,
            wal,
            logged_since_checkpoint: 0,
            series: Vec::new(),
            group: 0,
            spare: Staged::default(),
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
            if self.logged_since_checkpoint >= CHECKPOINT_AFTER_BYTES {
                // The log writes the checkpoint on its own thread; appends go on.
                let ticket = self.checkpoint();
                drop(ticket);
            }
            for cmd in others {
                match cmd {
                    Command::Checkpoint { reply } => {
                        let ticket = self.checkpoint();
                        // Whoever asked waits for it to be durable; the head writer does not.
                        let waiter = std::thread::Builder::new()
                            .name("checkpoint-wait".into())
                            .spawn(move || {
                                let _ = reply.send(
                                    ticket
                                        .durable_blocking()
                                        .map_err(|e| Error::CommitFailed(e.to_string())),
                                );
                            });
                        if let Err(e) = waiter {
                            tracing::warn!(error = %e, "could not wait for a checkpoint");
                        }
                    }
                    Command::Shutdown { reply } => {
                        if let Err(e) = self
                            .checkpoint()
                            .durable_blocking()
                            .map_err(|e| Error::CommitFailed(e.to_string()))
                        {
                            tracing::warn!(error = %e, "checkpoint at shutdown failed; the log will be replayed in full");
                        }
                        let _ = reply.send(());
                        return;
                    }
                    Command::Append { .. } => unreachable!("appends are grouped above"),
                }
            }
        }
    }

    /// Queues the head (and the series and metadata DuckDB does not have yet) as the
    /// log's checkpoint, so earlier segments can go; the ticket resolves once it is
    /// written. Its failure is logged by the log, which then keeps its segments.
    fn checkpoint(&mut self) -> sextant_wal::Ticket {
        let started = Instant::now();
        // About the head's size (each chunk's bytes and fields): grown by doubling, a
        // head of tens of megabytes was copied several times over.
        let head_bytes = self.shared.head.chunk_bytes.load(Ordering::Relaxed).max(0) as usize;
        let mut snapshot = Vec::with_capacity(head_bytes + head_bytes / 8);
        let n = {
            let reg = self.shared.registry();
            let persisted = self.shared.persisted_series.load(Ordering::Acquire);
            let series: Vec<(SeriesId, Arc<Labels>)> = (persisted..reg.len() as u64)
                .map(|id| (id, reg.entry(id).labels.clone()))
                .collect();
            walrec::checkpoint_header(reg.metadata.iter(), &series, &mut snapshot);
            reg.len() as u64
        };
        self.shared.head.snapshot(n, &mut snapshot);
        tracing::debug!(
            bytes = snapshot.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "head snapshot taken for a checkpoint"
        );
        self.logged_since_checkpoint = 0;
        self.wal.checkpoint_now(snapshot)
    }

    fn commit_group(&mut self, group: Vec<PendingAppend>) {
        let started = Instant::now();
        let (outcomes, staged, record) = self.write_group(&group);
        let bytes = record.len() as u64;
        let result = if record.is_empty() {
            Ok(())
        } else {
            // Written on this thread: the head writer already gathers a group, and
            // handing it to the log's own thread cost two wake-ups a group.
            self.wal.append_now(vec![record])
        };
        self.shared
            .metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.shared.metrics.commit_batch_requests.observe(group.len() as f64);
        match result {
            Ok(()) => {
                self.logged_since_checkpoint += bytes;
                self.apply(staged);
                let m = &self.shared.metrics;
                for (p, outcome) in group.into_iter().zip(outcomes) {
                    m.samples_appended.inc_by(outcome.accepted);
                    for (reason, n) in [
                        ("out_of_order", outcome.out_of_order),
                        ("duplicate_conflict", outcome.duplicate_conflicts),
                        ("too_old", outcome.too_old),
                    ] {
                        if n > 0 {
                            m.samples_rejected.get_or_create(&RejectReason { reason }).inc_by(n);
                        }
                    }
                    m.append_seconds.observe(p.arrived.elapsed().as_secs_f64());
                    let _ = p.reply.send((Ok(outcome), p.req));
                }
            }
            Err(e) => {
                // Nothing of the group is stored: its series' newest samples are read
                // from the registry again.
                for id in &staged.touched {
                    self.series[*id as usize].newest = Newest::Unknown;
                }
                tracing::error!(error = %e, requests = group.len(), "write-ahead log write failed; requests refused");
                let msg = e.to_string();
                for p in group {
                    let _ = p.reply.send((Err(Error::CommitFailed(msg.clone())), p.req));
                }
            }
        }
    }

    /// Decides each sample's fate and builds the group's log record and staged
    /// changes; nothing shared is modified.
    fn write_group(&mut self, group: &[PendingAppend]) -> (Vec<AppendOutcome>, Staged, Vec<u8>) {
        self.group += 1;
        let shared = self.shared.clone();
        let reg = shared.registry();
        let mut staged = std::mem::take(&mut self.spare);
        let mut record = RecordBuilder::new(self.wal.buffer());
        let mut next_id = reg.len() as SeriesId;
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
                        record.series(id, &labels);
                        staged.new_ids.entry(s.hash).or_default().push((id, labels.clone()));
                        staged.new_series.push((id, labels));
                        out.new_series += 1;
                        id
                    }
                };
                if i < p.req.labeled {
                    out.refs.push(SeriesRef(id));
                }
                self.accept_run(&reg, id, &s.samples, p.cutoff_ms, &mut out, &mut staged, &mut record);
            }
            self.accept_singles(&reg, &p.req.singles, p.cutoff_ms, &mut out, &mut staged, &mut record);
            for (name, meta) in &p.req.metadata {
                let current = staged.metadata.get(name).or_else(|| reg.metadata.get(name));
                if current != Some(meta) {
                    record.metadata(name, meta);
                    staged.metadata.insert(name.clone(), meta.clone());
                }
            }
            outcomes.push(out);
        }
        (outcomes, staged, record.into_bytes())
    }

    /// Decides the fate of `samples` of series `id` against its newest sample (in this
    /// group, or stored), stages the accepted ones and logs them.
    #[allow(clippy::too_many_arguments)]
    fn accept_run(
        &mut self,
        reg: &Registry,
        id: SeriesId,
        samples: &[Sample],
        cutoff_ms: i64,
        out: &mut AppendOutcome,
        staged: &mut Staged,
        record: &mut RecordBuilder,
    ) {
        let slot = id as usize;
        if self.series.len() <= slot {
            self.series.resize(slot + 1, WriterSeries::default());
        }
        let this_group = self.group;
        let seen = &mut self.series[slot];
        let mut last = seen.newest(reg, id);
        let mut first_t = (seen.group == this_group).then_some(seen.first_t);
        staged.run.clear();
        for sample in samples {
            if !accepts(last, sample, cutoff_ms, out) {
                continue;
            }
            staged.run.push(*sample);
            staged.accepted.push((id, *sample));
            out.accepted += 1;
            last = Some(*sample);
            first_t.get_or_insert(sample.t_ms);
        }
        record.samples(id, &staged.run);
        if let Some(first_t) = first_t {
            if seen.group != this_group {
                staged.touched.push(id);
            }
            *seen = WriterSeries {
                group: this_group,
                first_t,
                newest: Newest::Known(last),
            };
        }
    }

    /// [`Self::accept_run`] for one request's appends by reference, a sample each (a
    /// scrape's or a steady sender's), in one loop without a run's bookkeeping.
    fn accept_singles(
        &mut self,
        reg: &Registry,
        singles: &[(SeriesRef, Sample)],
        cutoff_ms: i64,
        out: &mut AppendOutcome,
        staged: &mut Staged,
        record: &mut RecordBuilder,
    ) {
        // References were checked against the registry, which only grows.
        if self.series.len() < reg.len() {
            self.series.resize(reg.len(), WriterSeries::default());
        }
        let this_group = self.group;
        for &(SeriesRef(id), sample) in singles {
            let seen = &mut self.series[id as usize];
            if !accepts(seen.newest(reg, id), &sample, cutoff_ms, out) {
                continue;
            }
            staged.accepted.push((id, sample));
            record.sample(id, sample);
            out.accepted += 1;
            seen.newest = Newest::Known(Some(sample));
            if seen.group != this_group {
                seen.group = this_group;
                seen.first_t = sample.t_ms;
                staged.touched.push(id);
            }
        }
    }

    fn apply(&mut self, mut staged: Staged) {
        {
            let mut reg = self.shared.registry.write().expect("registry lock poisoned");
            for (id, labels) in staged.new_series.drain(..) {
                reg.insert(id, labels);
            }
            reg.metadata.extend(staged.metadata.drain());
        }
        // Samples enter the head before the bounds that make readers look for them.
        self.shared.head.append_all(&staged.accepted);
        {
            let mut reg = self.shared.registry.write().expect("registry lock poisoned");
            for id in &staged.touched {
                let g = self.series[*id as usize];
                reg.observe(*id, g.first_t, g.group_newest());
            }
            self.shared.metrics.series.set(reg.len() as i64);
        }
        self.shared.metrics.observe_head(&self.shared.head);
        staged.clear();
        self.spare = staged;
    }
}

pub(crate) struct BlockWriter {
    conn: Connection,
    shared: Arc<Shared>,
    head_tx: mpsc::Sender<Command>,
    metadata_seq: i64,
    persisted_metadata: HashMap<String, MetricMetadata>,
}

impl BlockWriter {
    pub fn new(conn: Connection, shared: Arc<Shared>, head_tx: mpsc::Sender<Command>) -> Result<Self> {
        let metadata_seq = conn.query_row("SELECT coalesce(max(seq), 0) FROM metadata", [], |r| r.get(0))?;
        let mut persisted_metadata = HashMap::new();
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
            persisted_metadata.insert(
                metric,
                MetricMetadata {
                    metric_type: typ.parse().unwrap_or_default(),
                    help,
                    unit,
                },
            );
        }
        drop(stmt);
        Ok(Self {
            conn,
            shared,
            head_tx,
            metadata_seq,
            persisted_metadata,
        })
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<DbCommand>) {
        while let Some(cmd) = rx.blocking_recv() {
            match cmd {
                DbCommand::Flush { before_ms, reply } => {
                    let _ = reply.send(self.flush_before(before_ms));
                }
                DbCommand::Retention { cutoff_ms, reply } => {
                    let _ = reply.send(self.drop_blocks_before(cutoff_ms));
                }
                DbCommand::AppendSlices { rows, progress, reply } => {
                    let _ = reply.send(crate::slices::append(&self.conn, &rows, &progress));
                }
                DbCommand::SliceRetention { cutoff_ms, reply } => {
                    let _ = reply.send(crate::slices::delete_before(&self.conn, cutoff_ms));
                }
                DbCommand::PutRevisions { rows, reply } => {
                    let _ = reply.send(crate::slices::put_revisions(&self.conn, &rows));
                }
                DbCommand::Shutdown { reply } => {
                    self.checkpoint();
                    let _ = reply.send(());
                    return;
                }
            }
        }
        self.checkpoint();
    }

    /// Writes what DuckDB's own log holds into the database file; a failure only
    /// leaves that log to be replayed at the next start.
    fn checkpoint(&self) {
        if let Err(e) = self.conn.execute_batch("CHECKPOINT") {
            tracing::warn!(error = %e, "DuckDB checkpoint failed; its WAL will be replayed at next start");
        }
    }

    /// Flushes every head block that ended at or before `before_ms`, then has the
    /// head writer checkpoint the log; returns how many blocks were flushed.
    fn flush_before(&mut self, before_ms: i64) -> Result<usize> {
        let todo: Vec<i64> = self
            .shared
            .head
            .blocks()
            .into_iter()
            .filter(|b| (b + 1) * BLOCK_MS <= before_ms)
            .collect();
        for b in &todo {
            self.flush_block(*b)?;
        }
        if !todo.is_empty() {
            // Write the new blocks into the database file now rather than leave them
            // in DuckDB's own log until it reaches its threshold: that log would hold
            // a second copy of them, and the file's free blocks (from retention) are
            // reused only by a checkpoint.
            self.checkpoint();
            let (reply, rx) = oneshot::channel();
            if self.head_tx.blocking_send(Command::Checkpoint { reply }).is_ok()
                && let Ok(Err(e)) = rx.blocking_recv()
            {
                tracing::warn!(error = %e, "write-ahead log checkpoint after a flush failed");
            }
        }
        Ok(todo.len())
    }

    /// Writes the head's chunks of `block` into the compacted tables in one
    /// transaction, with the series and metadata DuckDB does not have yet; then
    /// drops those chunks from the head.
    fn flush_block(&mut self, block: i64) -> Result<()> {
        let started = Instant::now();
        let (new_series, metadata, n) = {
            let reg = self.shared.registry();
            let persisted = self.shared.persisted_series.load(Ordering::Acquire);
            let series: Vec<(SeriesId, Arc<Labels>)> = (persisted..reg.len() as u64)
                .map(|id| (id, reg.entry(id).labels.clone()))
                .collect();
            let metadata: Vec<(String, MetricMetadata)> = reg
                .metadata
                .iter()
                .filter(|(k, v)| self.persisted_metadata.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (series, metadata, reg.len() as u64)
        };
        let late = self.shared.blocks.read().expect("poisoned").compacted.contains(&block);
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        let result = self.write_block(block, late, &new_series, &metadata, n);
        let samples = match result.and_then(|s| Ok((s, self.conn.execute_batch("COMMIT")?))) {
            Ok((s, ())) => s,
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.metadata_seq -= metadata.len() as i64;
                return Err(e);
            }
        };
        self.shared.persisted_series.store(n, Ordering::Release);
        self.persisted_metadata.extend(metadata);
        self.shared.blocks.write().expect("poisoned").compacted.insert(block);
        // Readers that took their block list before this point read the head.
        self.shared.head.drop_sealed(block, n);
        self.shared.metrics.blocks_flushed.inc();
        self.shared.metrics.observe_head(&self.shared.head);
        tracing::info!(
            block,
            samples,
            late,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "flushed a head block to DuckDB"
        );
        Ok(())
    }

    fn write_block(
        &mut self,
        block: i64,
        late: bool,
        new_series: &[(SeriesId, Arc<Labels>)],
        metadata: &[(String, MetricMetadata)],
        n: u64,
    ) -> Result<u64> {
        let conn = &self.conn;
        if !new_series.is_empty() {
            let mut app = conn.appender("series")?;
            for (id, labels) in new_series {
                let json = serde_json::to_string(&**labels).expect("labels serialize");
                app.append_row(params![*id as i64, json])?;
            }
            app.flush()?;
        }
        if !metadata.is_empty() {
            let mut app = conn.appender("metadata")?;
            for (name, m) in metadata {
                self.metadata_seq += 1;
                app.append_row(params![self.metadata_seq, name, m.metric_type.as_str(), m.help, m.unit])?;
            }
            app.flush()?;
        }
        let mut buf = Vec::new();
        if late {
            // Samples for a block already in DuckDB: merged with its rows by a
            // rewrite of the block (rare: new series backfilled into the past).
            let mut samples = Vec::new();
            for id in 0..n {
                buf.clear();
                self.shared.head.seal_block(id, block, &mut buf);
                if !buf.is_empty() {
                    samples.push((id, std::mem::take(&mut buf)));
                }
            }
            return merge_into_block(conn, block, samples);
        }
        let mut total = 0u64;
        let mut rows = BlockRows::new(conn, block)?;
        for id in 0..n {
            buf.clear();
            self.shared.head.seal_block(id, block, &mut buf);
            if !buf.is_empty() {
                rows.write(id, &buf)?;
                total += buf.len() as u64;
            }
        }
        rows.finish()?;
        Ok(total)
    }

    fn drop_blocks_before(&self, cutoff_ms: i64) -> Result<usize> {
        let expired: Vec<i64> = self
            .shared
            .blocks
            .read()
            .expect("poisoned")
            .compacted
            .iter()
            .copied()
            .filter(|b| (b + 1) * BLOCK_MS <= cutoff_ms)
            .collect();
        for b in &expired {
            self.conn.execute_batch(&format!("DROP TABLE {}", block_table(*b)))?;
            self.shared.blocks.write().expect("poisoned").compacted.remove(b);
        }
        let n = self.shared.registry().len() as u64;
        let cutoff_block = cutoff_ms.div_euclid(BLOCK_MS);
        let mut dropped: BTreeSet<i64> = expired.iter().copied().collect();
        dropped.extend(self.shared.head.blocks().into_iter().filter(|b| *b < cutoff_block));
        self.shared.head.drop_blocks_before(cutoff_block, n);
        self.shared.metrics.observe_head(&self.shared.head);
        if !expired.is_empty() {
            // Return the dropped blocks' space to DuckDB's free list now.
            self.checkpoint();
        }
        if !dropped.is_empty() {
            tracing::info!(blocks = dropped.len(), cutoff_ms, "retention dropped expired blocks");
        }
        Ok(dropped.len())
    }
}
