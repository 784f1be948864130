use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use duckdb::Connection;
use prometheus_client::registry::Registry as MetricsRegistry;
use sextant_model::{Labels, Matcher, MetricMetadata, Sample, SeriesData};
use tokio::sync::{mpsc, oneshot};

use crate::head::Head;
use crate::metrics::StoreMetrics;
use crate::registry::Registry;
use crate::writer::{self, BlockWriter, Command, DbCommand, HeadWriter, Shared};
use crate::{Error, Result, format};

/// A head block is flushed to DuckDB once it ended this long ago, so samples that
/// arrive a little late still land in the head (it holds up to three hours).
const FLUSH_GRACE_MS: i64 = 3600 * 1000;

/// How the store is set up.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Directory holding `FORMAT` and `metrics.duckdb`.
    pub data_dir: PathBuf,
    /// How long samples are kept; `None` keeps them forever.
    pub retention: Option<Duration>,
    /// Append requests that may wait for the writer before new ones are refused.
    pub max_queued_requests: usize,
    /// Reading connections (concurrent sample queries).
    pub reader_connections: usize,
    /// Series the head may hold; appends that would create more are refused with
    /// [`Error::SeriesLimit`] (a 503) instead of growing memory without bound.
    pub max_head_series: Option<usize>,
}

impl StoreOptions {
    /// Defaults for `data_dir`: 15 days of retention, as Prometheus keeps.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            retention: Some(Duration::from_secs(15 * 24 * 3600)),
            max_queued_requests: 256,
            reader_connections: 4,
            max_head_series: None,
        }
    }
}

/// The samples of one series in an append.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    /// The series (must include a valid `__name__`).
    pub labels: Labels,
    /// Samples in time order.
    pub samples: Vec<Sample>,
}

/// A stored series, as returned by an append. Appending by reference skips hashing and
/// comparing the label set, like Prometheus' `storage.SeriesRef`; references stay valid
/// for the life of the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesRef(pub(crate) crate::SeriesId);

/// One append: samples of any number of series plus metadata, stored atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendRequest {
    /// Series and their samples.
    pub series: Vec<SeriesSamples>,
    /// Samples of series given by the references earlier appends returned.
    pub by_ref: Vec<(SeriesRef, Vec<Sample>)>,
    /// Single samples of series given by reference, one entry per sample: what a
    /// steady scrape or Prometheus' `Appender.Append(ref, t, v)` produces, without a
    /// `Vec` per series. A series may appear more than once, in time order.
    pub samples_by_ref: Vec<(SeriesRef, Sample)>,
    /// Metric family metadata to record (`family name`, metadata).
    pub metadata: Vec<(String, MetricMetadata)>,
}

/// A series of an append after its registry lookup, done on the caller's task so the
/// writer thread does as little as possible.
pub(crate) struct ResolvedSeries {
    /// The id if the series already existed at lookup time.
    pub id: Option<crate::SeriesId>,
    /// `labels.hash64()`.
    pub hash: u64,
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// An [`AppendRequest`] whose series were looked up and, where new, validated.
pub(crate) struct ResolvedAppend {
    /// The request's `series` first, then its `by_ref` entries.
    pub series: Vec<ResolvedSeries>,
    /// How many leading entries of `series` came with labels (and get a ref back).
    pub labeled: usize,
    /// The request's `samples_by_ref`, as it came (each reference checked).
    pub singles: Vec<(SeriesRef, Sample)>,
    pub metadata: Vec<(String, MetricMetadata)>,
}

impl ResolvedAppend {
    pub(crate) fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum::<usize>() + self.singles.len()
    }
}

/// What happened to an append's samples.
///
/// The rule for samples that are not newer than their series' newest sample: the same
/// timestamp with a bit-identical value is a retry and is ignored (`duplicates`);
/// anything else older or at the same time is rejected (`out_of_order`,
/// `duplicate_conflicts`), while the rest of the request is stored. Samples older than
/// the retention cutoff are rejected as `too_old`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Samples stored.
    pub accepted: u64,
    /// Exact repeats of stored samples, ignored.
    pub duplicates: u64,
    /// Samples older than their series' newest sample, rejected.
    pub out_of_order: u64,
    /// Samples at an existing timestamp with a different value, rejected.
    pub duplicate_conflicts: u64,
    /// Samples older than the retention cutoff, rejected.
    pub too_old: u64,
    /// Series created by this append.
    pub new_series: u64,
    /// The reference of each entry of the request's `series`, in order.
    pub refs: Vec<SeriesRef>,
}

impl AppendOutcome {
    /// Samples rejected for any reason (duplicates are not rejections).
    pub fn rejected(&self) -> u64 {
        self.out_of_order + self.duplicate_conflicts + self.too_old
    }
}

/// What start-up found in the write-ahead log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Series recreated from the log.
    pub series: u64,
    /// Samples loaded into the head.
    pub samples: u64,
    /// Records read after the checkpoint.
    pub records: u64,
    /// Whether a checkpoint was loaded.
    pub checkpoint: bool,
    /// Bytes cut from a torn or corrupt tail (0 when the log was whole).
    pub truncated_bytes: u64,
    /// Where the log was cut (`segment:offset`), if it was.
    pub truncated_at: Option<String>,
    /// How long replay took.
    pub duration: Duration,
}

/// Handle to the metrics store; cheap to clone.
#[derive(Clone)]
pub struct MetricsStore {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Command>,
    db_tx: mpsc::Sender<DbCommand>,
    readers: Mutex<Vec<Connection>>,
    reader_template: Mutex<Connection>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    retention: Option<Duration>,
    max_head_series: Option<usize>,
    replay: ReplayReport,
}

impl MetricsStore {
    /// Opens (or creates) the store in `options.data_dir`: loads the series registry
    /// and block list from DuckDB, upgrades a directory of an older format, and
    /// replays the write-ahead log into the head. Blocking: call it before serving,
    /// or from `spawn_blocking`.
    pub fn open(options: StoreOptions, metrics_registry: &mut MetricsRegistry) -> Result<Self> {
        let found = format::check(&options.data_dir)?;
        let path = options.data_dir.join("metrics.duckdb");
        if !path.exists() {
            create_database(&path)?;
        }
        let conn = Connection::open(&path)?;
        writer::create_schema(&conn)?;
        if found.is_some_and(|v| v < format::FORMAT_VERSION) {
            let started = Instant::now();
            let n = crate::compact::upgrade(&conn)?;
            conn.execute_batch("CHECKPOINT")?;
            tracing::info!(
                dir = %options.data_dir.display(),
                from = found,
                to = format::FORMAT_VERSION,
                blocks_rewritten = n,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "upgraded the data directory"
            );
        }
        if found != Some(format::FORMAT_VERSION) {
            format::write_current(&options.data_dir)?;
        }
        let mut registry = Registry::default();
        let blocks = writer::load(&conn, &mut registry)?;
        let persisted = registry.len() as u64;
        let metrics = StoreMetrics::new(metrics_registry);
        let shared = Arc::new(Shared {
            registry: RwLock::new(registry),
            head: Head::new(),
            blocks: RwLock::new(blocks),
            metrics,
            persisted_series: AtomicU64::new(persisted),
        });
        let (wal, replayed) = writer::replay(&shared, &options.data_dir.join("wal"))?;
        if replayed.log.records > 0 || replayed.log.checkpoint {
            tracing::info!(
                series = replayed.series,
                samples = replayed.samples,
                already_in_blocks = replayed.already_flushed,
                records = replayed.log.records,
                bytes = replayed.log.bytes,
                truncated_bytes = replayed.log.truncated_bytes,
                elapsed_ms = replayed.log.duration.as_millis() as u64,
                "replayed the metrics write-ahead log into the head"
            );
        }
        if let Some(at) = &replayed.log.truncated_at {
            tracing::warn!(
                at = %at,
                bytes = replayed.log.truncated_bytes,
                "the metrics write-ahead log had a torn or corrupt tail; what followed it was not loaded"
            );
        }
        shared.metrics.series.set(shared.registry().len() as i64);
        shared.metrics.observe_head(&shared.head);

        let (tx, rx) = mpsc::channel(options.max_queued_requests.max(1));
        let (db_tx, db_rx) = mpsc::channel(64);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|source| Error::Io {
                    context: format!("starting the {name} thread"),
                    source,
                })
        };
        let head_writer = HeadWriter::new(shared.clone(), wal);
        let block_writer = BlockWriter::new(conn.try_clone()?, shared.clone(), tx.clone())?;
        let threads = vec![
            spawn("head-writer", Box::new(move || head_writer.run(rx)))?,
            spawn("block-writer", Box::new(move || block_writer.run(db_rx)))?,
        ];
        let readers = (0..options.reader_connections.max(1))
            .map(|_| conn.try_clone())
            .collect::<duckdb::Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                tx,
                db_tx,
                readers: Mutex::new(readers),
                reader_template: Mutex::new(conn),
                threads: Mutex::new(threads),
                retention: options.retention,
                max_head_series: options.max_head_series,
                replay: ReplayReport {
                    series: replayed.series,
                    samples: replayed.samples,
                    records: replayed.log.records,
                    checkpoint: replayed.log.checkpoint,
                    truncated_bytes: replayed.log.truncated_bytes,
                    truncated_at: replayed.log.truncated_at.clone(),
                    duration: replayed.log.duration,
                },
            }),
        })
    }

    /// Appends, waiting for room in the write queue, and resolves once the samples are
    /// durable. Use for producers that should slow down under load (scrapes).
    pub async fn append(&self, req: AppendRequest) -> Result<AppendOutcome> {
        let req = self.resolve(req)?;
        let (reply, rx) = oneshot::channel();
        let cmd = self.append_command(req, reply);
        self.inner.tx.send(cmd).await.map_err(|_| Error::Closed)?;
        let (result, request) = rx.await.map_err(|_| Error::Closed)?;
        drop(request);
        result
    }

    /// Appends, failing at once with [`Error::Overloaded`] when the write queue is full,
    /// and resolves once the samples are durable. Use for clients that retry (remote_write).
    pub async fn try_append(&self, req: AppendRequest) -> Result<AppendOutcome> {
        let req = self.resolve(req)?;
        let (reply, rx) = oneshot::channel();
        let cmd = self.append_command(req, reply);
        self.inner.tx.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Overloaded(self.inner.tx.max_capacity()),
            mpsc::error::TrySendError::Closed(_) => Error::Closed,
        })?;
        let (result, request) = rx.await.map_err(|_| Error::Closed)?;
        drop(request);
        result
    }

    /// Looks every series up in the registry and validates the ones it does not know,
    /// rejecting the whole request before anything is written if one is invalid.
    fn resolve(&self, req: AppendRequest) -> Result<ResolvedAppend> {
        let reg = self.read_registry();
        let labeled = req.series.len();
        let mut series = Vec::with_capacity(labeled + req.by_ref.len());
        for s in req.series {
            let hash = s.labels.hash64();
            let id = reg.id_of(&s.labels, hash);
            if id.is_none() {
                validate(&s.labels)?;
            }
            series.push(ResolvedSeries {
                id,
                hash,
                labels: s.labels,
                samples: s.samples,
            });
        }
        if let Some(limit) = self.inner.max_head_series {
            let new = series.iter().filter(|s| s.id.is_none()).count();
            let active = self
                .inner
                .shared
                .head
                .active_series
                .load(std::sync::atomic::Ordering::Relaxed);
            if new > 0 && active as usize + new > limit {
                self.inner.shared.metrics.series_limit_refusals.inc();
                return Err(Error::SeriesLimit { limit, new });
            }
        }
        for (r, samples) in req.by_ref {
            if r.0 as usize >= reg.len() {
                return Err(Error::InvalidSeries {
                    series: format!("reference {}", r.0),
                    reason: "no such series in this store".into(),
                });
            }
            series.push(ResolvedSeries {
                id: Some(r.0),
                hash: 0,
                labels: Labels::empty(),
                samples,
            });
        }
        let known = reg.len() as u64;
        // One branch-free pass over what is usually the whole request; the offender is
        // looked for only when there is one.
        let unknown = req
            .samples_by_ref
            .iter()
            .fold(false, |bad, (r, _)| bad | (r.0 >= known));
        if let Some((r, _)) = unknown
            .then(|| req.samples_by_ref.iter().find(|(r, _)| r.0 >= known))
            .flatten()
        {
            return Err(Error::InvalidSeries {
                series: format!("reference {}", r.0),
                reason: "no such series in this store".into(),
            });
        }
        Ok(ResolvedAppend {
            series,
            labeled,
            singles: req.samples_by_ref,
            metadata: req.metadata,
        })
    }

    fn append_command(&self, req: ResolvedAppend, reply: writer::AppendReply) -> Command {
        let cutoff_ms = self
            .inner
            .retention
            .map(|r| sextant_model::time::now_ms() - r.as_millis() as i64)
            .unwrap_or(i64::MIN);
        Command::Append {
            req,
            cutoff_ms,
            arrived: Instant::now(),
            reply,
        }
    }

    /// Drops blocks entirely older than the retention period; returns how many.
    pub async fn enforce_retention(&self) -> Result<usize> {
        let Some(retention) = self.inner.retention else {
            return Ok(0);
        };
        self.drop_blocks_before(sextant_model::time::now_ms() - retention.as_millis() as i64)
            .await
    }

    /// Drops blocks that ended before `cutoff_ms`, as retention does; returns how many
    /// (for retention at a time of the caller's choosing: tests and benchmarks).
    pub async fn drop_blocks_before(&self, cutoff_ms: i64) -> Result<usize> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .db_tx
            .send(DbCommand::Retention { cutoff_ms, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Flushes the head's closed blocks (those that ended more than an hour ago) to
    /// DuckDB's compacted layout; returns how many. Samples may still arrive for a
    /// flushed block (a new series backfilled, say); they wait in the head and are
    /// merged into the block at the next flush.
    pub async fn compact(&self) -> Result<usize> {
        self.compact_before(sextant_model::time::now_ms() - FLUSH_GRACE_MS)
            .await
    }

    /// Flushes every head block that ended before `before_ms` (for imports of old
    /// data, and tests).
    pub async fn compact_before(&self, before_ms: i64) -> Result<usize> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .db_tx
            .send(DbCommand::Flush { before_ms, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Appends SLO slices and records how far their revisions are computed, in one
    /// transaction; resolves once durable.
    pub async fn append_slices(&self, rows: Vec<crate::SliceRow>, progress: Vec<crate::RevisionRow>) -> Result<()> {
        if rows.is_empty() && progress.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .db_tx
            .send(DbCommand::AppendSlices { rows, progress, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Deletes SLO slices ending at or before `cutoff_ms`; returns how many.
    pub async fn drop_slices_before(&self, cutoff_ms: i64) -> Result<usize> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .db_tx
            .send(DbCommand::SliceRetention { cutoff_ms, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// The ends of each SLI's oldest and newest stored slices.
    pub async fn slice_bounds(&self) -> Result<HashMap<String, (i64, i64)>> {
        self.with_reader(crate::slices::bounds).await
    }

    /// Window sums over SLO slices ending at `end_ms` (see [`crate::WindowSum`]), for
    /// the SLIs of `filter`; `slice_target` counts time slices below it.
    pub async fn slice_sums(
        &self,
        end_ms: i64,
        windows_ms: Vec<i64>,
        filter: crate::SliceFilter,
        slice_target: Option<f64>,
    ) -> Result<HashMap<String, Vec<crate::WindowSum>>> {
        self.with_reader(move |c| crate::slices::sums(c, end_ms, &windows_ms, &filter, slice_target))
            .await
    }

    /// Records SLO revisions (inserted or replaced by key); resolves once durable.
    pub async fn put_slo_revisions(&self, rows: Vec<crate::RevisionRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .db_tx
            .send(DbCommand::PutRevisions { rows, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Every recorded SLO revision.
    pub async fn slo_revisions(&self) -> Result<Vec<crate::RevisionRow>> {
        self.with_reader(crate::slices::revisions).await
    }

    /// The slices of `sli` in `(from_ms, to_ms]`.
    pub async fn slice_range(&self, sli: String, from_ms: i64, to_ms: i64) -> Result<Vec<crate::SliceRow>> {
        self.with_reader(move |c| crate::slices::range(c, &sli, from_ms, to_ms))
            .await
    }

    /// Runs `f` on a reader connection off the async executor.
    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = store.reader()?;
            let out = f(&conn);
            store.inner.readers.lock().expect("poisoned").push(conn);
            out
        })
        .await
        .map_err(|e| Error::CommitFailed(format!("slice query task: {e}")))?
    }

    /// Lets a running flush finish and checkpoints DuckDB, then commits what is
    /// queued, checkpoints the write-ahead log (so the next start loads the head
    /// instead of replaying records) and stops the writers. Appends after this fail
    /// with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        if self.inner.db_tx.send(DbCommand::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
        let (reply, rx) = oneshot::channel();
        if self.inner.tx.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
        let handles: Vec<_> = self.inner.threads.lock().expect("poisoned").drain(..).collect();
        for h in handles {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        Ok(())
    }

    /// `(file_bytes, used_bytes)` of the database: the file's size, and the part in use.
    /// Blocks freed by dropped raw tables stay in the file and are reused by later
    /// writes, so `used_bytes` is what the data occupies.
    pub async fn disk_usage(&self) -> Result<(u64, u64)> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = store.reader()?;
            let r = conn.query_row(
                "SELECT block_size::BIGINT, total_blocks::BIGINT, used_blocks::BIGINT FROM pragma_database_size()",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
            );
            store.inner.readers.lock().expect("poisoned").push(conn);
            let (block, total, used) = r?;
            Ok(((block * total) as u64, (block * used) as u64))
        })
        .await
        .map_err(|e| Error::CommitFailed(format!("reader task failed: {e}")))?
    }

    /// The reference of the stored series whose label set is `pairs` (names and values
    /// as bytes, sorted by name, no empty values) with `Labels::hash_pairs` equal to
    /// `hash`, found without building a label set: receivers use it to append known
    /// series by reference. Bytes that equal a stored series' labels are valid UTF-8,
    /// so callers need not validate them first.
    pub fn lookup(&self, hash: u64, pairs: &[(&[u8], &[u8])]) -> Option<SeriesRef> {
        self.read_registry().id_of_pairs(hash, pairs).map(SeriesRef)
    }

    /// What start-up found in the write-ahead log.
    pub fn replay_report(&self) -> &ReplayReport {
        &self.inner.replay
    }

    /// Number of series known.
    pub fn series_count(&self) -> usize {
        self.read_registry().len()
    }

    fn read_registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner.shared.registry()
    }

    /// Ids of series matching any of `matcher_sets` with samples in `[start, end]`.
    fn matching_ids(&self, reg: &Registry, matcher_sets: &[Vec<Matcher>], start: i64, end: i64) -> Vec<u64> {
        let mut ids: Vec<u64> = if matcher_sets.is_empty() {
            (0..reg.len() as u64).collect()
        } else {
            matcher_sets.iter().flat_map(|m| reg.select(m)).collect()
        };
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|id| reg.overlaps(*id, start, end));
        ids
    }

    /// Label sets of series matching any of `matcher_sets` (all series when empty) with
    /// samples in `[start, end]`, sorted.
    pub fn series(&self, matcher_sets: &[Vec<Matcher>], start: i64, end: i64) -> Vec<Arc<Labels>> {
        let reg = self.read_registry();
        let mut out: Vec<Arc<Labels>> = self
            .matching_ids(&reg, matcher_sets, start, end)
            .into_iter()
            .map(|id| reg.entry(id).labels.clone())
            .collect();
        out.sort();
        out
    }

    /// Label names used by the matching series, sorted.
    pub fn label_names(&self, matcher_sets: &[Vec<Matcher>], start: i64, end: i64) -> Vec<String> {
        let reg = self.read_registry();
        let names: BTreeSet<&str> = self
            .matching_ids(&reg, matcher_sets, start, end)
            .into_iter()
            .flat_map(|id| reg.entry(id).labels.iter().map(|l| l.name.as_str()))
            .collect();
        names.into_iter().map(str::to_owned).collect()
    }

    /// Values of label `name` in the matching series, sorted.
    pub fn label_values(&self, name: &str, matcher_sets: &[Vec<Matcher>], start: i64, end: i64) -> Vec<String> {
        let reg = self.read_registry();
        let values: BTreeSet<&str> = self
            .matching_ids(&reg, matcher_sets, start, end)
            .into_iter()
            .filter_map(|id| reg.entry(id).labels.get(name))
            .collect();
        values.into_iter().map(str::to_owned).collect()
    }

    /// Metadata per metric family, optionally for one `metric`, at most `limit` families.
    pub fn metadata(&self, metric: Option<&str>, limit: Option<usize>) -> BTreeMap<String, Vec<MetricMetadata>> {
        let reg = self.read_registry();
        reg.metadata
            .iter()
            .filter(|(name, _)| metric.is_none_or(|m| m == name.as_str()))
            .map(|(name, m)| (name.clone(), vec![m.clone()]))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .collect()
    }

    /// Samples in `[start, end]` of every series matching `matchers`, series sorted by
    /// labels, samples by time.
    pub async fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<SeriesData>> {
        self.select_many(std::slice::from_ref(&matchers.to_vec()), start, end)
            .await
    }

    /// Samples in `[start, end]` of every series matching any of `matcher_sets`, in one
    /// read (callers that evaluate many queries over the same recent data fetch it
    /// once), series sorted by labels, samples by time.
    pub async fn select_many(&self, matcher_sets: &[Vec<Matcher>], start: i64, end: i64) -> Result<Vec<SeriesData>> {
        let (ids, labels): (Vec<u64>, Vec<Arc<Labels>>) = {
            let reg = self.read_registry();
            let mut ids: Vec<u64> = matcher_sets.iter().flat_map(|m| reg.select(m)).collect();
            ids.sort_unstable();
            ids.dedup();
            // The reader wants ids sorted.
            ids.into_iter()
                .filter(|id| reg.overlaps(*id, start, end))
                .map(|id| (id, reg.entry(id).labels.clone()))
                .unzip()
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.clone();
        let rows = tokio::task::spawn_blocking(move || {
            // The head first, then the blocks: a block flushed in between is read from
            // both (merged below), never from neither.
            let shared = &store.inner.shared;
            let head: Vec<Vec<Sample>> = ids
                .iter()
                .map(|id| {
                    let mut v = Vec::new();
                    shared.head.read(*id, start, end, &mut v);
                    v
                })
                .collect();
            let blocks = shared.blocks.read().expect("poisoned").clone();
            let mut rows = if blocks.compacted.iter().any(|b| writer::block_overlaps(*b, start, end)) {
                let conn = store.reader()?;
                let rows = writer::read_samples(&conn, &blocks, &ids, start, end);
                store.inner.readers.lock().expect("poisoned").push(conn);
                rows?
            } else {
                vec![Vec::new(); ids.len()]
            };
            for (stored, recent) in rows.iter_mut().zip(head) {
                merge(stored, recent);
            }
            Ok::<_, Error>(rows)
        })
        .await
        .map_err(|e| Error::CommitFailed(format!("reader task failed: {e}")))??;
        let mut out: Vec<SeriesData> = rows
            .into_iter()
            .zip(labels)
            .filter(|(samples, _)| !samples.is_empty())
            .map(|(samples, labels)| SeriesData { labels, samples })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn reader(&self) -> Result<Connection> {
        if let Some(c) = self.inner.readers.lock().expect("poisoned").pop() {
            return Ok(c);
        }
        Ok(self.inner.reader_template.lock().expect("poisoned").try_clone()?)
    }
}

/// Adds `recent` (from the head) to `stored` (from blocks), both in time order. They
/// overlap only when a block was flushed between the two reads, or the head holds
/// late samples of a flushed block; a timestamp in both is the same sample.
fn merge(stored: &mut Vec<Sample>, recent: Vec<Sample>) {
    if recent.is_empty() {
        return;
    }
    if stored.last().is_none_or(|l| l.t_ms < recent[0].t_ms) {
        if stored.is_empty() {
            *stored = recent;
        } else {
            stored.extend(recent);
        }
        return;
    }
    let old = std::mem::take(stored);
    let mut out = Vec::with_capacity(old.len() + recent.len());
    let (mut a, mut b) = (old.into_iter().peekable(), recent.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.t_ms == y.t_ms => {
                b.next();
                a.next()
            }
            (Some(x), Some(y)) if x.t_ms < y.t_ms => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    *stored = out;
}

/// Rejects a series the store cannot hold.
fn validate(labels: &Labels) -> Result<()> {
    let invalid = |reason: String| Error::InvalidSeries {
        series: labels.to_string(),
        reason,
    };
    if labels.metric_name().is_none() {
        return Err(invalid("missing metric name".into()));
    }
    labels.validate().map_err(|e| invalid(e.to_string()))
}

/// DuckDB's allocation unit for a new database file, in bytes (its default is
/// 256 KiB). Each block's table ends in a partly filled allocation block, so with the
/// default a small store wasted much of its file: on the node_exporter data of
/// BENCHMARKS.md §3 (507 series) the file took 2.18 bytes a sample with 256 KiB,
/// 0.83 with 64 KiB, 0.65 with 32 KiB and 0.54 with 16 KiB. Smaller blocks fill less
/// of each with encoded rows, though: 2,000 series under retention churn took 3.23
/// bytes a sample with 64 KiB or more, 3.35 with 32 KiB and 3.86 with 16 KiB.
const DUCKDB_BLOCK_SIZE: u64 = 32 * 1024;

/// Creates an empty database file at `path` with [`DUCKDB_BLOCK_SIZE`] blocks (the
/// size is fixed when a file is created; files of earlier formats keep theirs).
fn create_database(path: &std::path::Path) -> Result<()> {
    let conn = Connection::open_in_memory()?;
    let quoted = path.display().to_string().replace('\'', "''");
    conn.execute_batch(&format!(
        "ATTACH '{quoted}' AS new_store (BLOCK_SIZE {DUCKDB_BLOCK_SIZE}); DETACH new_store;"
    ))?;
    Ok(())
}
