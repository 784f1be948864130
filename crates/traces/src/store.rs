//! The trace store: spans in DuckDB tables, one set per time bucket (by span
//! start), so retention drops whole tables and a time range reads only the
//! buckets it overlaps.
//!
//! Each bucket `b` (its start in epoch seconds) has three tables:
//! - `spans_b`: one row per span; the columns search filters on (ids, service,
//!   name, kind, status, start, duration, the [`PROMOTED`] attributes) and the
//!   whole OTLP span, protobuf-encoded, for trace-by-id;
//! - `attrs_b`: the remaining span attributes, one row each (`key`, `text`,
//!   `num`), so an attribute condition reads the rows of one key instead of
//!   decoding every span;
//! - `traces_b`: per-trace summaries (time range, root service and name, span and
//!   error counts), one row per trace and commit while the bucket is open, merged
//!   to one row per trace when it is compacted. Trace-by-id asks the summaries
//!   which buckets hold a trace before it reads any span, and search rows come
//!   from them directly.
//!
//! Resources and scopes are stored once (`origins`, with their attributes in
//! `origin_attrs`), and spans refer to them by id.
//!
//! Writes go through one writer thread that takes every export request waiting
//! at that moment, appends their rows with DuckDB's appender inside one
//! transaction and commits (group commit). A request is acknowledged once that
//! commit returns, so an acknowledged span survives `kill -9` and is searchable
//! at once. A bucket is compacted once it is closed (its end plus
//! `compact_after` has passed): its tables are rewritten sorted by trace id
//! (spans, summaries) and by key and value (attributes), so DuckDB's per-row-group
//! min/max statistics let a trace-id or attribute lookup skip almost all of it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use duckdb::{Connection, params};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::error::{Error, Result};
use crate::span::{self, Origin, PROMOTED, SpanRow, TraceId, promoted_column};
use crate::spanmetrics::SpanMetrics;

/// The on-disk format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Settings of a trace store.
#[derive(Debug, Clone)]
pub struct TraceStoreOptions {
    /// The store's directory.
    pub dir: PathBuf,
    /// How long spans are kept (by start time).
    pub retention: Duration,
    /// Width of a bucket; retention drops whole buckets.
    pub bucket: Duration,
    /// How long after a bucket's end it is compacted (late spans still land in
    /// it afterwards, unsorted).
    pub compact_after: Duration,
    /// Export requests waiting for the writer before new ones are refused.
    pub max_queued_requests: usize,
    /// Reader connections kept open.
    pub reader_connections: usize,
    /// Span-metric settings.
    pub span_metrics: crate::spanmetrics::SpanMetricsOptions,
    /// Size of DuckDB's log at which it checkpoints, MB.
    pub checkpoint_threshold_mb: u64,
    /// DuckDB's worker threads for this store's database.
    pub duckdb_threads: usize,
}

impl TraceStoreOptions {
    /// Defaults in `dir`: 14 days' retention (Tempo's), 1 h buckets compacted
    /// 10 min after they close.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            retention: Duration::from_secs(14 * 86400),
            bucket: Duration::from_secs(3600),
            compact_after: Duration::from_secs(600),
            max_queued_requests: 256,
            reader_connections: 2,
            span_metrics: Default::default(),
            checkpoint_threshold_mb: 256,
            duckdb_threads: 1,
        }
    }
}

/// What a write did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Spans stored.
    pub accepted: usize,
    /// Spans refused.
    pub rejected: usize,
    /// Why they were refused.
    pub reasons: Vec<String>,
}

/// What opening found.
#[derive(Debug, Default, Clone)]
pub struct OpenStats {
    /// Buckets present.
    pub buckets: usize,
    /// Spans stored.
    pub spans: u64,
}

/// The store's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Spans stored.
    pub spans: AtomicU64,
    /// Spans refused.
    pub refused: AtomicU64,
    /// Commits (one per group of requests).
    pub commits: AtomicU64,
    /// Buckets compacted.
    pub compactions: AtomicU64,
    /// Buckets dropped by retention.
    pub dropped_buckets: AtomicU64,
}

/// A bucket's state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    /// Rewritten sorted.
    pub compacted: bool,
}

pub(crate) struct Shared {
    pub opts: TraceStoreOptions,
    /// Buckets by start, ms.
    pub buckets: RwLock<BTreeMap<i64, Bucket>>,
    /// Origins by id.
    pub origins: RwLock<HashMap<i64, Arc<Origin>>>,
    readers: Mutex<Vec<Connection>>,
    template: Mutex<Connection>,
    pub counters: Counters,
    pub span_metrics: SpanMetrics,
}

enum Command {
    Append(Batch, tokio::sync::oneshot::Sender<Result<()>>),
    Maintain(tokio::sync::oneshot::Sender<Result<()>>),
}

struct Batch {
    origins: Vec<(i64, Origin)>,
    rows: Vec<SpanRow>,
}

/// Handle to the store; clones share it.
#[derive(Clone)]
pub struct TraceStore {
    pub(crate) shared: Arc<Shared>,
    tx: mpsc::SyncSender<Command>,
    _writer: Arc<WriterHandle>,
}

struct WriterHandle {
    tx: Mutex<Option<mpsc::SyncSender<Command>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        // Dropping the last sender ends the writer's loop.
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Suffix of a bucket's tables: its start in seconds.
pub(crate) fn suffix(bucket_ms: i64) -> i64 {
    bucket_ms.div_euclid(1000)
}

fn promoted_columns_ddl() -> String {
    (0..PROMOTED.len())
        .map(|i| {
            let c = promoted_column(i);
            format!(", {c} VARCHAR, n{c} DOUBLE, k{c} TINYINT")
        })
        .collect()
}

/// `CREATE TABLE` of a span table named `table` (public for the benchmark
/// that measures DuckDB's appender alone on the same rows).
pub fn spans_table_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (trace_hi BIGINT, trace_lo BIGINT, span_id BIGINT, parent_id BIGINT, \
         origin BIGINT, start_ns BIGINT, duration_ns BIGINT, service VARCHAR, name VARCHAR, kind TINYINT, \
         status TINYINT, status_message VARCHAR{promoted}, detail BLOB);",
        promoted = promoted_columns_ddl()
    )
}

/// Appends span rows as the store writes them (public for the benchmark that
/// measures DuckDB's appender alone on the same rows).
pub fn append_spans(app: &mut duckdb::Appender<'_>, rows: &[&SpanRow]) -> Result<()> {
    for r in rows {
        let p = &r.promoted;
        let pv = |i: usize| p[i].as_ref();
        let text = |i: usize| pv(i).map(|v| v.text.as_str());
        let num = |i: usize| pv(i).and_then(|v| v.number);
        let kind = |i: usize| pv(i).map(|v| v.kind.code());
        app.append_row(params![
            r.trace.hi(),
            r.trace.lo(),
            r.span_id as i64,
            r.parent_id as i64,
            r.origin,
            r.start_ns,
            r.duration_ns,
            r.service,
            r.name,
            r.kind,
            r.status,
            r.status_message,
            text(0),
            num(0),
            kind(0),
            text(1),
            num(1),
            kind(1),
            text(2),
            num(2),
            kind(2),
            text(3),
            num(3),
            kind(3),
            text(4),
            num(4),
            kind(4),
            text(5),
            num(5),
            kind(5),
            r.detail,
        ])?;
    }
    Ok(())
}

fn create_bucket_tables(conn: &Connection, bucket_ms: i64) -> Result<()> {
    let b = suffix(bucket_ms);
    conn.execute_batch(&format!(
        "{spans}
         CREATE TABLE IF NOT EXISTS attrs_{b} (trace_hi BIGINT, trace_lo BIGINT, span_id BIGINT, key VARCHAR, \
         kind TINYINT, text VARCHAR, num DOUBLE);
         CREATE TABLE IF NOT EXISTS traces_{b} (trace_hi BIGINT, trace_lo BIGINT, start_ns BIGINT, end_ns BIGINT, \
         root_service VARCHAR, root_name VARCHAR, spans BIGINT, errors BIGINT);
         INSERT INTO buckets SELECT {bucket_ms}, false WHERE NOT EXISTS (SELECT 1 FROM buckets WHERE start_ms = {bucket_ms});",
        spans = spans_table_ddl(&format!("spans_{b}"))
    ))?;
    Ok(())
}

fn create_schema(conn: &Connection, dir: &std::path::Path) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR);
         CREATE TABLE IF NOT EXISTS buckets (start_ms BIGINT, compacted BOOLEAN);
         CREATE TABLE IF NOT EXISTS origins (id BIGINT, service VARCHAR, body BLOB);
         CREATE TABLE IF NOT EXISTS origin_attrs (id BIGINT, key VARCHAR, kind TINYINT, text VARCHAR, num DOUBLE);",
    )?;
    let version: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'format_version'", [], |r| r.get(0))
        .ok();
    match version {
        None => {
            conn.execute(
                "INSERT INTO meta VALUES ('format_version', ?)",
                params![FORMAT_VERSION.to_string()],
            )?;
        }
        Some(v) if v == FORMAT_VERSION.to_string() => {}
        Some(v) => return Err(Error::Format(dir.to_path_buf(), v, FORMAT_VERSION)),
    }
    Ok(())
}

impl TraceStore {
    /// Opens (or creates) the store in `opts.dir` and starts its writer.
    /// Blocking: call it before serving or from `spawn_blocking`.
    pub fn open(opts: TraceStoreOptions) -> Result<(Self, OpenStats)> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| Error::Io(opts.dir.clone(), e))?;
        // One DuckDB thread: the writer does its own work, instead of handing
        // storage work to workers and spinning while it waits (measured: that
        // spin was a third of the writer's CPU). DuckDB checkpoints when its log
        // passes 16 MB by default; spans fill that in a fraction of a second and
        // each checkpoint compresses the last row group again, so the threshold
        // is raised (what is in the log is durable either way).
        let config = duckdb::Config::default()
            .threads(opts.duckdb_threads.max(1) as i64)?
            .with("checkpoint_threshold", format!("{}MB", opts.checkpoint_threshold_mb))?;
        let conn = Connection::open_with_flags(opts.dir.join("spans.duckdb"), config)?;
        create_schema(&conn, &opts.dir)?;
        let mut buckets = BTreeMap::new();
        {
            let mut stmt = conn.prepare("SELECT start_ms, bool_or(compacted) FROM buckets GROUP BY ALL")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?)))?;
            for r in rows {
                let (start, compacted) = r?;
                buckets.insert(start, Bucket { compacted });
            }
        }
        let mut origins = HashMap::new();
        {
            let mut stmt = conn.prepare("SELECT id, body FROM origins")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
            for r in rows {
                let (id, body) = r?;
                if let Ok(o) = Origin::decode(body.as_slice()) {
                    origins.insert(id, Arc::new(o));
                }
            }
        }
        let mut stats = OpenStats {
            buckets: buckets.len(),
            spans: 0,
        };
        for b in buckets.keys() {
            let n: i64 = conn.query_row(&format!("SELECT count(*) FROM spans_{}", suffix(*b)), [], |r| r.get(0))?;
            stats.spans += n as u64;
        }
        let readers = (0..opts.reader_connections.max(1))
            .map(|_| conn.try_clone())
            .collect::<duckdb::Result<Vec<_>>>()?;
        let span_metrics = SpanMetrics::new(opts.span_metrics.clone());
        let shared = Arc::new(Shared {
            buckets: RwLock::new(buckets),
            origins: RwLock::new(origins),
            readers: Mutex::new(readers),
            template: Mutex::new(conn.try_clone()?),
            counters: Counters::default(),
            span_metrics,
            opts,
        });
        let (tx, rx) = mpsc::sync_channel(shared.opts.max_queued_requests.max(1));
        let writer = Writer {
            conn,
            shared: shared.clone(),
            last_maintenance: Instant::now() - Duration::from_secs(3600),
        };
        let thread = std::thread::Builder::new()
            .name("trace-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::Io(PathBuf::from("trace-writer thread"), e))?;
        let handle = Arc::new(WriterHandle {
            tx: Mutex::new(Some(tx.clone())),
            thread: Mutex::new(Some(thread)),
        });
        Ok((
            Self {
                shared,
                tx,
                _writer: handle,
            },
            stats,
        ))
    }

    /// The store's counters.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Settings the store was opened with.
    pub fn options(&self) -> &TraceStoreOptions {
        &self.shared.opts
    }

    /// The span metrics kept from what was stored.
    pub fn span_metrics(&self) -> &SpanMetrics {
        &self.shared.span_metrics
    }

    /// Stores the spans of an export request and returns once they are
    /// committed (durable and searchable). Spans with invalid ids or older than
    /// retention are refused and reported; the rest are stored. Fails at once
    /// with [`Error::Overloaded`] when the writer's queue is full.
    pub async fn write(&self, req: &ExportTraceServiceRequest) -> Result<WriteOutcome> {
        let (rx, outcome) = self.queue(req)?;
        if let Some(rx) = rx {
            rx.await.map_err(|_| Error::Closed)??;
        }
        Ok(outcome)
    }

    /// [`TraceStore::write`] for callers outside async code.
    pub fn write_blocking(&self, req: &ExportTraceServiceRequest) -> Result<WriteOutcome> {
        let (rx, outcome) = self.queue(req)?;
        if let Some(rx) = rx {
            rx.blocking_recv().map_err(|_| Error::Closed)??;
        }
        Ok(outcome)
    }

    /// Splits and checks a request: the spans to store, and what was refused.
    fn validate(&self, req: &ExportTraceServiceRequest) -> span::Split {
        let mut split = span::split(req);
        let oldest = now_ns() - self.shared.opts.retention.as_nanos() as i64;
        let before = split.rows.len();
        split.rows.retain(|r| r.start_ns >= oldest);
        let too_old = before - split.rows.len();
        if too_old > 0 {
            split.rejected += too_old;
            split
                .reasons
                .push(format!("{too_old} spans started before the retention period"));
        }
        split
    }

    /// Queues the valid spans for the writer; the receiver resolves when they
    /// are committed (`None` when nothing was valid).
    #[allow(clippy::type_complexity)]
    fn queue(
        &self,
        req: &ExportTraceServiceRequest,
    ) -> Result<(Option<tokio::sync::oneshot::Receiver<Result<()>>>, WriteOutcome)> {
        let split = self.validate(req);
        let outcome = WriteOutcome {
            accepted: split.rows.len(),
            rejected: split.rejected,
            reasons: split.reasons,
        };
        self.shared
            .counters
            .refused
            .fetch_add(outcome.rejected as u64, Ordering::Relaxed);
        if split.rows.is_empty() {
            return Ok((None, outcome));
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        let batch = Batch {
            origins: split.origins,
            rows: split.rows,
        };
        self.tx.try_send(Command::Append(batch, reply)).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => Error::Overloaded(self.shared.opts.max_queued_requests),
            mpsc::TrySendError::Disconnected(_) => Error::Closed,
        })?;
        Ok((Some(rx), outcome))
    }

    /// Runs retention and compaction now (tests; the writer runs them every
    /// minute on its own).
    pub fn maintain_blocking(&self) -> Result<()> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx.send(Command::Maintain(reply)).map_err(|_| Error::Closed)?;
        rx.blocking_recv().map_err(|_| Error::Closed)?
    }

    /// Buckets overlapping `[from_ns, to_ns]`, newest first.
    pub(crate) fn buckets_in(&self, from_ns: i64, to_ns: i64) -> Vec<i64> {
        let width = self.shared.opts.bucket.as_millis() as i64;
        let from_ms = from_ns.div_euclid(1_000_000);
        let to_ms = to_ns.div_euclid(1_000_000);
        self.shared
            .buckets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .rev()
            .copied()
            .filter(|b| *b <= to_ms && b + width > from_ms)
            .collect()
    }

    /// Runs `f` on a reader connection.
    pub(crate) fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = match self.shared.readers.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            Some(c) => c,
            None => self
                .shared
                .template
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .try_clone()?,
        };
        let out = f(&conn);
        let mut pool = self.shared.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < self.shared.opts.reader_connections.max(1) {
            pool.push(conn);
        }
        out
    }

    /// The origin stored under `id`.
    pub(crate) fn origin(&self, id: i64) -> Option<Arc<Origin>> {
        self.shared
            .origins
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// A whole trace as OTLP resource spans (spans grouped by resource and scope,
    /// each span once, in start order), or `None` when no span of it is stored
    /// in `[from_ns, to_ns]` (all buckets when not given). Blocking.
    pub fn trace(&self, id: TraceId, range: Option<(i64, i64)>) -> Result<Option<Vec<ResourceSpans>>> {
        let (from, to) = range.unwrap_or((i64::MIN, i64::MAX));
        let candidates = self.buckets_in(from, to);
        if candidates.is_empty() {
            return Ok(None);
        }
        let rows = self.with_reader(|c| {
            // The summaries say which buckets hold the trace; only those are read.
            let probe = candidates
                .iter()
                .map(|b| {
                    format!(
                        "(SELECT {b} AS b FROM traces_{s} WHERE trace_hi = $1 AND trace_lo = $2 \
                         AND end_ns >= $3 AND start_ns <= $4 LIMIT 1)",
                        s = suffix(*b)
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let mut stmt = c.prepare(&probe)?;
            let holding: Vec<i64> = stmt
                .query_map(params![id.hi(), id.lo(), from, to], |r| r.get(0))?
                .collect::<duckdb::Result<_>>()?;
            if holding.is_empty() {
                return Ok(Vec::new());
            }
            let sql = holding
                .iter()
                .map(|b| {
                    format!(
                        "SELECT span_id, start_ns, origin, detail FROM spans_{} WHERE trace_hi = $1 AND trace_lo = $2",
                        suffix(*b)
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
                + " ORDER BY start_ns, span_id";
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt
                .query_map(params![id.hi(), id.lo()], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(2)?, r.get::<_, Vec<u8>>(3)?))
                })?
                .collect::<duckdb::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.assemble(rows)))
    }

    /// Groups decoded spans by origin, in the order origins first appear; a span
    /// id seen twice (a client's retry) is kept once.
    pub(crate) fn assemble(&self, rows: Vec<(i64, i64, Vec<u8>)>) -> Vec<ResourceSpans> {
        let mut seen = std::collections::HashSet::new();
        let mut order: Vec<i64> = Vec::new();
        let mut by_origin: HashMap<i64, Vec<Span>> = HashMap::new();
        for (span_id, origin, detail) in rows {
            if !seen.insert(span_id) {
                continue;
            }
            let Ok(span) = Span::decode(detail.as_slice()) else {
                continue;
            };
            by_origin
                .entry(origin)
                .or_insert_with(|| {
                    order.push(origin);
                    Vec::new()
                })
                .push(span);
        }
        order
            .into_iter()
            .map(|o| {
                let origin = self.origin(o).map(|a| (*a).clone()).unwrap_or_default();
                ResourceSpans {
                    resource: origin.resource,
                    scope_spans: vec![ScopeSpans {
                        scope: origin.scope,
                        spans: by_origin.remove(&o).unwrap_or_default(),
                        schema_url: origin.scope_schema_url,
                    }],
                    schema_url: origin.resource_schema_url,
                }
            })
            .collect()
    }
}

struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    last_maintenance: Instant,
}

/// Requests committed together at most.
const MAX_GROUP: usize = 512;

/// Per-trace summary of the spans of one commit in one bucket.
#[derive(Debug, Clone)]
struct Summary {
    start_ns: i64,
    end_ns: i64,
    root: Option<(String, String)>,
    spans: i64,
    errors: i64,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            let first = match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(c) => Some(c),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut group = Vec::new();
            let mut maintain = Vec::new();
            let mut next = first;
            while let Some(cmd) = next {
                match cmd {
                    Command::Append(b, reply) => group.push((b, reply)),
                    Command::Maintain(reply) => maintain.push(reply),
                }
                if group.len() >= MAX_GROUP {
                    break;
                }
                next = rx.try_recv().ok();
            }
            if !group.is_empty() {
                let (batches, replies): (Vec<Batch>, Vec<_>) = group.into_iter().unzip();
                let result = self.write_group(&batches);
                match result {
                    Ok(()) => {
                        self.shared.counters.commits.fetch_add(1, Ordering::Relaxed);
                        for b in &batches {
                            self.shared
                                .counters
                                .spans
                                .fetch_add(b.rows.len() as u64, Ordering::Relaxed);
                            self.shared.span_metrics.observe(&b.origins, &b.rows);
                        }
                        for r in replies {
                            let _ = r.send(Ok(()));
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        tracing::error!(error = %msg, "trace store commit failed");
                        for r in replies {
                            let _ = r.send(Err(Error::CommitFailed(msg.clone())));
                        }
                    }
                }
            }
            let due = self.last_maintenance.elapsed() >= Duration::from_secs(60);
            if due || !maintain.is_empty() {
                self.last_maintenance = Instant::now();
                let r = self.maintain();
                if let Err(e) = &r {
                    tracing::warn!(error = %e, "trace store maintenance failed");
                }
                for reply in maintain {
                    let _ = reply.send(match &r {
                        Ok(()) => Ok(()),
                        Err(e) => Err(Error::CommitFailed(e.to_string())),
                    });
                }
            }
        }
    }

    fn write_group(&mut self, batches: &[Batch]) -> Result<()> {
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        match self.append_group(batches) {
            Ok((new_origins, new_buckets)) => {
                self.conn.execute_batch("COMMIT")?;
                let mut o = self.shared.origins.write().unwrap_or_else(|e| e.into_inner());
                for (id, origin) in new_origins {
                    o.insert(id, Arc::new(origin));
                }
                let mut b = self.shared.buckets.write().unwrap_or_else(|e| e.into_inner());
                for start in new_buckets {
                    b.entry(start).or_insert(Bucket { compacted: false });
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn append_group(&mut self, batches: &[Batch]) -> Result<(Vec<(i64, Origin)>, Vec<i64>)> {
        let width = self.shared.opts.bucket.as_millis() as i64;
        let conn = &self.conn;
        // New origins first.
        let mut new_origins: Vec<(i64, Origin)> = Vec::new();
        {
            let known = self.shared.origins.read().unwrap_or_else(|e| e.into_inner());
            let mut app = conn.appender("origins")?;
            let mut attr_app = conn.appender("origin_attrs")?;
            for b in batches {
                for (id, o) in &b.origins {
                    if known.contains_key(id) || new_origins.iter().any(|(n, _)| n == id) {
                        continue;
                    }
                    app.append_row(params![*id, o.service(), o.encode_to_vec()])?;
                    if let Some(r) = &o.resource {
                        for kv in &r.attributes {
                            let Some(v) = kv.value.as_ref() else { continue };
                            let v = span::attr_value(v);
                            attr_app.append_row(params![*id, kv.key, v.kind.code(), v.text, v.number])?;
                        }
                    }
                    new_origins.push((*id, o.clone()));
                }
            }
            app.flush()?;
            attr_app.flush()?;
        }
        // Rows by bucket.
        let mut by_bucket: BTreeMap<i64, Vec<&SpanRow>> = BTreeMap::new();
        for b in batches {
            for r in &b.rows {
                let bucket = r.start_ns.div_euclid(1_000_000).div_euclid(width) * width;
                by_bucket.entry(bucket).or_default().push(r);
            }
        }
        let mut new_buckets = Vec::new();
        {
            let known = self.shared.buckets.read().unwrap_or_else(|e| e.into_inner());
            for bucket in by_bucket.keys() {
                if !known.contains_key(bucket) {
                    create_bucket_tables(conn, *bucket)?;
                    new_buckets.push(*bucket);
                }
            }
        }
        for (bucket, rows) in &by_bucket {
            let s = suffix(*bucket);
            let mut spans = conn.appender(&format!("spans_{s}"))?;
            let mut attrs = conn.appender(&format!("attrs_{s}"))?;
            let mut summaries: HashMap<TraceId, Summary> = HashMap::new();
            append_spans(&mut spans, rows)?;
            for r in rows {
                for (k, v) in &r.attrs {
                    attrs.append_row(params![
                        r.trace.hi(),
                        r.trace.lo(),
                        r.span_id as i64,
                        k,
                        v.kind.code(),
                        v.text,
                        v.number
                    ])?;
                }
                let e = summaries.entry(r.trace).or_insert(Summary {
                    start_ns: r.start_ns,
                    end_ns: r.end_ns(),
                    root: None,
                    spans: 0,
                    errors: 0,
                });
                e.start_ns = e.start_ns.min(r.start_ns);
                e.end_ns = e.end_ns.max(r.end_ns());
                e.spans += 1;
                if r.status == 2 {
                    e.errors += 1;
                }
                if r.is_root() {
                    e.root = Some((r.service.clone(), r.name.clone()));
                }
            }
            spans.flush()?;
            attrs.flush()?;
            let mut traces = conn.appender(&format!("traces_{s}"))?;
            for (t, sm) in summaries {
                let (rs, rn) = match sm.root {
                    Some((a, b)) => (Some(a), Some(b)),
                    None => (None, None),
                };
                traces.append_row(params![
                    t.hi(),
                    t.lo(),
                    sm.start_ns,
                    sm.end_ns,
                    rs,
                    rn,
                    sm.spans,
                    sm.errors
                ])?;
            }
            traces.flush()?;
        }
        Ok((new_origins, new_buckets))
    }

    /// Drops buckets past retention and compacts closed ones.
    fn maintain(&mut self) -> Result<()> {
        let width = self.shared.opts.bucket.as_millis() as i64;
        let now_ms = now_ns() / 1_000_000;
        let oldest = now_ms - self.shared.opts.retention.as_millis() as i64;
        let compact_before = now_ms - self.shared.opts.compact_after.as_millis() as i64;
        let buckets: Vec<(i64, Bucket)> = self
            .shared
            .buckets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        for (start, b) in buckets {
            let s = suffix(start);
            if start + width <= oldest {
                // Readers stop seeing the bucket before its tables go.
                self.shared
                    .buckets
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&start);
                self.conn.execute_batch(&format!(
                    "BEGIN TRANSACTION; DROP TABLE IF EXISTS spans_{s}; DROP TABLE IF EXISTS attrs_{s}; \
                     DROP TABLE IF EXISTS traces_{s}; DELETE FROM buckets WHERE start_ms = {start}; COMMIT;"
                ))?;
                self.shared.counters.dropped_buckets.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !b.compacted && start + width <= compact_before {
                let started = Instant::now();
                let r = self.conn.execute_batch(&format!(
                    "BEGIN TRANSACTION;
                     CREATE TABLE spans_{s}_c AS SELECT * FROM spans_{s} ORDER BY trace_hi, trace_lo, start_ns;
                     DROP TABLE spans_{s}; ALTER TABLE spans_{s}_c RENAME TO spans_{s};
                     CREATE TABLE attrs_{s}_c AS SELECT * FROM attrs_{s} ORDER BY key, text;
                     DROP TABLE attrs_{s}; ALTER TABLE attrs_{s}_c RENAME TO attrs_{s};
                     CREATE TABLE traces_{s}_c AS SELECT trace_hi, trace_lo, min(start_ns) AS start_ns, \
                       max(end_ns) AS end_ns, any_value(root_service) AS root_service, any_value(root_name) AS root_name, \
                       sum(spans)::BIGINT AS spans, sum(errors)::BIGINT AS errors FROM traces_{s} GROUP BY ALL \
                       ORDER BY trace_hi, trace_lo;
                     DROP TABLE traces_{s}; ALTER TABLE traces_{s}_c RENAME TO traces_{s};
                     UPDATE buckets SET compacted = true WHERE start_ms = {start};
                     COMMIT;"
                ));
                if let Err(e) = r {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(e.into());
                }
                if let Some(x) = self
                    .shared
                    .buckets
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(&start)
                {
                    x.compacted = true;
                }
                self.shared.counters.compactions.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    bucket = s,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "trace bucket compacted"
                );
            }
        }
        Ok(())
    }
}

/// The store's counters for `/metrics` (read at scrape time).
pub struct StoreCollector(pub TraceStore);

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl prometheus_client::collector::Collector for StoreCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let c = &self.0.shared.counters;
        let (expired, dropped) = self.0.shared.span_metrics.edge_counts();
        let counters = [
            (
                "sextant_traces_spans_stored",
                "Spans committed.",
                c.spans.load(Ordering::Relaxed),
            ),
            (
                "sextant_traces_spans_refused",
                "Spans refused (invalid ids, older than retention).",
                c.refused.load(Ordering::Relaxed),
            ),
            (
                "sextant_traces_commits",
                "Commits of the trace writer (one per group of requests).",
                c.commits.load(Ordering::Relaxed),
            ),
            (
                "sextant_traces_compactions",
                "Buckets compacted.",
                c.compactions.load(Ordering::Relaxed),
            ),
            (
                "sextant_traces_buckets_dropped",
                "Buckets dropped by retention.",
                c.dropped_buckets.load(Ordering::Relaxed),
            ),
            (
                "sextant_traces_service_graph_expired_edges",
                "Service-graph halves that found no other half in time.",
                expired,
            ),
            (
                "sextant_traces_service_graph_dropped_edges",
                "Service-graph halves dropped over the pending limit.",
                dropped,
            ),
        ];
        for (name, help, v) in counters {
            let m = ConstCounter::new(v);
            m.encode(encoder.encode_descriptor(name, help, None, m.metric_type())?)?;
        }
        let buckets = self.0.shared.buckets.read().unwrap_or_else(|e| e.into_inner()).len() as i64;
        let g = ConstGauge::new(buckets);
        g.encode(encoder.encode_descriptor(
            "sextant_traces_buckets",
            "Time buckets of spans held.",
            None,
            g.metric_type(),
        )?)?;
        Ok(())
    }
}
